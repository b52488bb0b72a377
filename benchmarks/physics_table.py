"""Physics of the generators of one PDE, side by side: every model draws ``--n`` samples from
the same latents (seed ``--seed``) and is scored by ``piddm eval``'s metrics against the
held-out solver data (solver consistency and relative residual, median and mean with 95 %
intervals; the raw residual; MMSE / SMSE / SFD against their noise floors).

Usage::

    python benchmarks/physics_table.py poisson \\
        teacher=poisson-32-teacher plain=runs/poisson-32-piddm preconditioned=runs/p \\
        --reference data/poisson-32-test.h5 --out benchmarks/results/poisson-32-physics.json

Each model is ``LABEL=CHECKPOINT`` (a file, run directory or pretrained name); teachers are
sampled with their own Heun sampler (18 steps), students in one step, or, with ``--refine K``
and a label ending in ``-ref``, as PIDDM-ref (``K`` refinement steps of
``piddm.tasks.latent.REFINE_CONFIG``, ``piddm sample --refine K``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from piddm.data.io import read_dataset
from piddm.distill import residual_norm_of
from piddm.metrics import evaluate
from piddm.models import load_any
from piddm.pdes import get_pde
from piddm.sampling import sample_checkpoint
from piddm.tasks.latent import REFINE_CONFIG


def score(
    pde_name: str,
    label: str,
    model_path: str,
    reference: np.ndarray,
    n: int,
    seed: int,
    refine: int = 0,
) -> dict:
    """The eval keys of ``n`` samples of ``model_path`` (``refine`` PIDDM-ref steps), with its
    label, NFE and sampling time."""
    model, metadata = load_any(model_path, torch.device("cpu"))
    run = sample_checkpoint(model, metadata, n, seed, refine=refine)
    fields = np.asarray(run.fields, dtype=np.float64)
    report = evaluate(get_pde(pde_name, fields.shape[-1]), fields, reference).as_dict()
    distill = metadata.get("distill") or {}
    return {
        "label": label,
        "model": model_path,
        "kind": metadata.get("kind"),
        "residual_norm": residual_norm_of(metadata) if distill else None,
        "lambda_train": distill.get("lambda_train"),
        "refine": refine,
        "nfe": run.nfe,
        "seconds_per_sample": run.seconds_per_sample,
        **report,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pde")
    parser.add_argument("models", nargs="+", help="LABEL=CHECKPOINT")
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--refine", type=int, default=REFINE_CONFIG.steps, help="PIDDM-ref steps (-ref labels)"
    )
    args = parser.parse_args(argv)
    reference = read_dataset(args.reference).fields.astype(np.float64)
    rows = []
    for item in args.models:
        label, _, path = item.partition("=")
        refine = args.refine if label.endswith("-ref") else 0
        rows.append(score(args.pde, label, path, reference, args.n, args.seed, refine))
        row = rows[-1]
        print(
            f"{label}: consistency median {row['solver_consistency_median']:.4f}, relative "
            f"residual median {row['relative_residual_median']:.3g}, residual "
            f"{row['residual_mean']:.3g}, SMSE {row['smse'] / row['smse_floor']:.2f}x floor",
            file=sys.stderr,
        )
    command = "python benchmarks/physics_table.py " + " ".join(argv or sys.argv[1:])
    payload = {"pde": args.pde, "n": args.n, "seed": args.seed, "command": command, "rows": rows}
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
