"""Choose the latent-optimisation settings of the tasks on training instances, not test ones.

Usage:
    python benchmarks/task_sweep.py --model runs/darcy-32-piddm --data data/darcy-32-train.h5 \
        --task forward --n 40 --setting ensemble=4,steps=50,lr=0.05 \
        --setting ensemble=8,steps=100,lr=0.05 --out benchmarks/results/darcy-32-forward-sweep.json

Each ``--setting`` is a comma-separated list of :class:`piddm.tasks.LatentOptConfig` fields
(``ensemble``, ``candidates``, ``steps``, ``lr``, ``lambda_infer``, ``optimizer``, ``penalty``,
...; the values read as ``piddm train --set`` reads them); the others keep the first bench's
values (ensemble 4, 50 Adam steps, lr 0.05, lambda_infer 1), the rest ``LatentOptConfig``'s
(among them 256 screened draws). Every setting
solves the same first N instances of --data (the teacher's *training* data: the bench scores
the held-out instances, so settings picked here are not tuned on what they are scored on)
under the same masks, drawn as the bench draws a task's (:func:`piddm.bench.bench_masks` with
``tasks.seed = --seed``; 3 % random observations by default; sweeps recorded before
2026-12-03 seeded them with ``--seed`` itself), and the same initial latents. Reports the
metrics of ``piddm solve`` (:func:`piddm.metrics.task_metrics`) of the ensemble mean, the
mean relative L2 of the ensemble's members one by one (``member_rel_l2_*``: with a fixed
member error, the mean's error is lower the more the members differ) and the seconds per
instance. With ``--start RUN`` a setting holding ``start=true`` begins from the amortised
start network (``piddm amortise``); ``--offset -100`` then takes the last 100 instances of a
training file whose last ``data.n_holdout`` fields the start network did not see.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from piddm.bench import bench_masks
from piddm.config import parse_overrides, replace_settings
from piddm.data import read_dataset
from piddm.distill import one_step_generator
from piddm.errors import PiddmError
from piddm.metrics import task_metrics
from piddm.models import load_any
from piddm.pdes import PDE
from piddm.sampling import pde_of
from piddm.tasks import TASKS, LatentOptConfig, solve_task
from piddm.tasks.start import load_start

Settings = TypeVar("Settings")

BENCH_SETTINGS = LatentOptConfig(ensemble=4, steps=50, lr=0.05, lambda_infer=1.0, batch_size=80)


def replace_fields(defaults: Settings, text: str) -> Settings:
    """``"ensemble=8,steps=100"`` -> the dataclass ``defaults`` with those fields replaced,
    read and checked as ``--set`` values are (:func:`piddm.config.parse_overrides`)."""
    try:
        changes = parse_overrides(text.split(","), "--setting", "steps=100")
        return replace_settings(defaults, changes, "--setting")
    except PiddmError as exc:
        raise SystemExit(f"error: {exc}") from None


def parse_setting(text: str) -> tuple[LatentOptConfig, bool]:
    """``"ensemble=8,steps=100"`` -> the bench's settings with those fields replaced, and
    whether the setting starts from the amortised start network (``start=true`` in it)."""
    items = [item for item in text.split(",") if item.strip()]
    start = [item for item in items if item.replace(" ", "").startswith("start=")]
    rest = ",".join(item for item in items if item not in start)
    use_start = bool(start) and start[-1].split("=", 1)[1].strip().lower() in ("1", "true", "yes")
    return (replace_fields(BENCH_SETTINGS, rest) if rest else BENCH_SETTINGS), use_start


def member_errors(pde: PDE, samples: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean relative L2 of every ensemble member ``samples (N, B, C, S, S)`` on its own."""
    members = [task_metrics(pde, samples[:, b], truth) for b in range(samples.shape[1])]
    return {
        f"member_{key}": float(np.mean([m[key] for m in members]))
        for key in ("rel_l2_coefficient", "rel_l2_solution")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--fraction", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--setting", action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--start", help="Amortised start network for the settings with start=true (piddm amortise)."
    )
    parser.add_argument(
        "--offset",
        type=int,
        default=0,
        help="First instance (negative: from the end, e.g. -100 for the last 100 of a training "
        "file whose start network held out its last 200).",
    )
    args = parser.parse_args()
    settings = [parse_setting(text) for text in args.setting]

    torch.set_num_threads(1)
    student, meta = load_any(args.model)
    pde = pde_of(meta)
    generator = one_step_generator(student.eval().requires_grad_(False), meta)
    start_net = load_start(args.start, pde, task=args.task) if args.start else None
    fields = read_dataset(args.data).fields
    first = args.offset if args.offset >= 0 else len(fields) + args.offset
    truth = torch.from_numpy(fields[first : first + args.n].astype(np.float64))
    if len(truth) < args.n:
        raise SystemExit(f"error: {args.data} has no {args.n} instances from {first}")
    mask = bench_masks(pde, args.task, args.n, args.fraction, seed=args.seed)
    rows = []
    for config, use_start in settings:
        if use_start and start_net is None:
            raise SystemExit("error: a setting says start=true: pass --start")
        start = time.perf_counter()
        _, result = solve_task(
            generator,
            pde,
            truth,
            args.task,
            args.fraction,
            config,
            rng=torch.Generator().manual_seed(args.seed + 1),
            mask=mask,
            start=start_net if use_start else None,
            return_samples=True,
        )
        seconds = (time.perf_counter() - start) / args.n
        row = {
            "setting": {k: v for k, v in asdict(config).items() if k != "batch_size"},
            "start": use_start,
            **task_metrics(pde, result.estimate.numpy(), truth.numpy()),
            **member_errors(pde, result.samples.numpy(), truth.numpy()),
            "seconds_per_instance": seconds,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "model": args.model,
        "data": str(args.data),
        "task": args.task,
        "n": args.n,
        "offset": args.offset,
        "start": args.start,
        "fraction": args.fraction,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
