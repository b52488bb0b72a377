"""How the PIDDM task errors fall as more of the field is observed.

Usage:
    python benchmarks/observation_count.py PDE [--fractions 0.1 0.3] [--model PATH]
        [--tasks forward] [--solver-members]
(writes benchmarks/results/PDE-32-observation-count[-solver-members].json)

The issue's task targets (5 % forward, 6 % Darcy inverse error rate) are DiffusionPDE's 128^2
figures with 500 observed points; at 32^2 the bench observes 3 % of the nodes (31 points).
This runs the bench itself (:func:`piddm.bench.runner.run_bench`, configs/bench-PDE-32-cpu.yaml)
with only the ``piddm-1`` rows of the tasks (no variants) at other observation fractions:
the same 100 held-out instances, the same mask seeds (:func:`piddm.bench.bench_masks`, so the
masks are those of ``benchmarks/bayes_bound.py`` and ``benchmarks/darcy_forward_floor.py`` at
that fraction) and
the same latent-optimisation settings, which were chosen at 3 % on training instances and are
not re-tuned here. ``--solver-members`` re-solves every ensemble member's own input with the
numerical solver (``tasks.solver_members``). Each fraction's rows are written as soon as they
are measured.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from piddm.bench.config import TASK_NAMES as TASKS
from piddm.bench.config import bench_config_from_dict
from piddm.bench.runner import run_bench
from piddm.config import read_yaml


def task_rows(raw: dict, fraction: float, n: int, out_dir: Path) -> list[dict]:
    """The bench's ``piddm-1`` task rows at ``fraction`` on ``n`` instances."""
    config = {
        **raw,
        "methods": ["piddm-1"],
        "variants": {},
        "generate": {**raw["generate"], "n": 2, "n_per_method": {}},  # the bench always generates
        "tasks": {**raw["tasks"], "n": n, "n_per_method": {}, "obs_fraction": fraction},
    }
    result = run_bench(
        bench_config_from_dict(config), out_dir=out_dir, progress=False, figures=False
    )
    keys = ("task", "n", "nfe", "seconds_per_sample", "rel_l2_coefficient", "rel_l2_solution")
    rows = []
    for row in result.rows:
        if row["task"] != "generate":
            rows.append(
                {
                    "obs_fraction": fraction,
                    "observed_nodes": int(result.instances[row["task"]][1][0].sum()),
                    **{k: row[k] for k in keys},
                    "error_rate": row["error_rate"],
                    "residual_mean": row["residual_mean"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pde")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--model", help="the PIDDM student (default: the bench config's)")
    parser.add_argument("--config", type=Path, help="default: configs/bench-PDE-32-cpu.yaml")
    parser.add_argument("--tasks", nargs="+", choices=TASKS)
    parser.add_argument(
        "--solver-members", action="store_true", help="re-solve every member (tasks.solver_members)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    config_path = args.config or Path(f"configs/bench-{args.pde}-32-cpu.yaml")
    suffix = "-solver-members" if args.solver_members else ""
    out = args.out or Path(f"benchmarks/results/{args.pde}-32-observation-count{suffix}.json")
    raw = read_yaml(config_path, "bench config")
    if args.model:
        raw["models"] = {"piddm": args.model}
    if args.tasks:
        raw["tasks"]["run"] = args.tasks
    if args.solver_members:
        raw["tasks"]["solver_members"] = True
    tasks = bench_config_from_dict(raw).tasks  # validated before the first run
    torch.set_num_threads(1)
    payload = {
        "pde": args.pde,
        "config": str(config_path),
        "model": raw["models"]["piddm"],
        "n": args.n,
        "latent_settings": {task: tasks.latent_settings(task) for task in tasks.run},
        "rows": [],
    }
    start = time.perf_counter()
    for fraction in args.fractions:
        rows = task_rows(raw, fraction, args.n, Path(f"/tmp/observation-count-{args.pde}"))
        for row in rows:
            print(json.dumps(row), flush=True)
        payload["rows"] += rows
        payload["seconds"] = time.perf_counter() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
