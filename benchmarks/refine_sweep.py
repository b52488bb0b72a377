"""Choose PIDDM-ref's refinement settings on training data: does refining keep the spread?

Usage:
    python benchmarks/refine_sweep.py poisson --n 256 --setting none --setting steps=10 \
        --setting steps=5,lr=1,optimizer=lbfgs --out benchmarks/results/poisson-32-refine-sweep.json

The shipped student (``runs/PDE-32-piddm``, or ``--model``) draws ``--n`` samples from the
seed-3 latents; each ``--setting`` (comma-separated :class:`piddm.tasks.LatentOptConfig`
fields replacing :data:`piddm.tasks.latent.REFINE_CONFIG`'s, ``none`` for no refinement)
refines them with the physics term the student was trained with, and ``piddm eval``'s
metrics score them against the first 1,024 fields of the *training* data: MMSE / SMSE
against their noise floors, solver consistency and relative residual (medians).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from task_sweep import replace_fields  # benchmarks/, on the path when run as a script

from piddm.data.generate import sample_seed
from piddm.data.io import read_dataset
from piddm.distill import one_step_generator, residual_norm_of
from piddm.metrics import evaluate
from piddm.models import load_any
from piddm.sampling import latents, pde_of
from piddm.tasks.latent import REFINE_CONFIG, refine_counted

KEYS = (
    "mmse",
    "mmse_floor",
    "smse",
    "smse_floor",
    "solver_consistency_median",
    "relative_residual_median",
    "residual_mean",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pde")
    parser.add_argument("--model", default=None, help="default: runs/PDE-32-piddm")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--setting", action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model_path = args.model or f"runs/{args.pde}-32-piddm"
    model, metadata = load_any(model_path, torch.device("cpu"))
    model = model.eval().requires_grad_(False)
    pde = pde_of(metadata)
    generator = one_step_generator(model, metadata)
    train = read_dataset(f"data/{args.pde}-{pde.resolution}-train.h5", limit=1024)
    reference = train.fields.astype(np.float64)
    shape = (pde.num_channels, pde.resolution, pde.resolution)
    eps = latents([sample_seed(3, i) for i in range(args.n)], shape, torch.device("cpu"))
    base = replace(REFINE_CONFIG, residual_norm=residual_norm_of(metadata))
    rows = []
    for text in args.setting:
        config = replace(base, steps=0) if text == "none" else replace_fields(base, text)
        start, passes, fields = time.perf_counter(), 0.0, []
        for begin in range(0, args.n, args.batch_size):
            batch = eps[begin : begin + args.batch_size]
            if config.steps:
                batch, cost = refine_counted(generator, pde, batch, config)
                passes += cost * len(batch)
            with torch.no_grad():
                fields.append(pde.normalisation.denormalise(generator(batch).double()).numpy())
        report = evaluate(pde, np.concatenate(fields), reference).as_dict()
        row = {
            "setting": text,
            "config": {k: v for k, v in asdict(config).items() if k != "batch_size"},
            "nfe": 1.0 + passes / args.n,
            "seconds": time.perf_counter() - start,
            **{key: report[key] for key in KEYS},
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    payload = {"model": model_path, "pde": args.pde, "n": args.n, "seed": 3, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
