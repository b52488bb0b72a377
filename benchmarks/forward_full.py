"""Forward problem with the coefficient fully observed: PIDDM student vs the numerical solver.

Usage: python benchmarks/forward_full.py PDE [N]
(writes benchmarks/results/PDE-32-forward-full.json)

Runs `piddm solve forward --obs-fraction 1.0` on the first N held-out instances and times the
package's solver on the same coefficients (the physical limit: the held-out truth is the
solver's own output). Every coefficient node is observed, so the masks are the bench's at
``tasks.obs_fraction = 1`` whatever their seed (``piddm.bench.bench_masks(pde, "forward", n,
1.0)``: all of the coefficient, none of the solution).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from piddm.data import read_dataset


def main() -> None:
    pde_name = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    data = f"data/{pde_name}-32-test.h5"
    out = Path(f"runs/{pde_name}-32-forward-full.h5")
    cmd = [
        "piddm",
        "solve",
        "forward",
        "--model",
        f"runs/{pde_name}-32-piddm",
        "--data",
        data,
        "--obs-fraction",
        "1.0",
        "--n",
        str(n),
        # piddm solve's defaults of 2026-12-02, pinned so that the figures stay reproducible.
        "--ensemble",
        "8",
        "--candidates",
        "256",
        "--steps",
        "100",
        "--lambda-infer",
        "0.1",
        "--out",
        str(out),
        "--overwrite",
        "--device",
        "cpu",
        "--json",
    ]
    student = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    instances = read_dataset(data, limit=n)
    pde = instances.pde
    start = time.perf_counter()
    for field in instances.fields:
        pde.solve(pde.inputs_of(field))
    solver_seconds = (time.perf_counter() - start) / n
    result = {
        "command": " ".join(cmd),
        "n": n,
        "piddm_rel_l2_solution": student["rel_l2_solution"],
        "piddm_residual_mean": student["residual_mean"],
        "piddm_seconds_per_instance": student["seconds_per_instance"],
        "solver_seconds_per_instance": solver_seconds,
    }
    path = Path(f"benchmarks/results/{pde_name}-32-forward-full.json")
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
