"""The Bayes floor of the forward / inverse errors on the linear-Gaussian PDEs.

Usage: python benchmarks/bayes_bound.py PDE [--n 100] [--resolution 32]
(writes benchmarks/results/PDE-S-bayes-bound.json)

For Poisson and Helmholtz the exact posterior mean given the observations
(:mod:`piddm.tasks.gaussian_posterior`) minimises every node's expected squared error, so its
relative L2 on held-out solver data is the floor of every method under the same observations.
The 3 % rows use exactly the instances and masks of ``piddm bench`` (first N held-out samples
of ``data/PDE-S-test.h5``, masks ``piddm.bench.bench_masks``); the
other fractions show how many observations a 5 % error needs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from piddm.bench import bench_masks
from piddm.data import read_dataset
from piddm.metrics import relative_l2
from piddm.pdes import get_pde
from piddm.tasks.gaussian_posterior import gaussian_posterior, gaussian_prior

TASKS = ("forward", "inverse")
FRACTIONS = (0.03, 0.1, 0.3, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pde")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--resolution", type=int, default=32)
    args = parser.parse_args()
    pde = get_pde(args.pde, args.resolution)
    truth = read_dataset(f"data/{args.pde}-{args.resolution}-test.h5").fields[: args.n]
    truth = np.asarray(truth, dtype=np.float64)
    start = time.perf_counter()
    prior = gaussian_prior(pde)
    prior_seconds = time.perf_counter() - start
    rows = []
    for task in TASKS:
        for fraction in FRACTIONS:
            mask = bench_masks(pde, task, len(truth), fraction).numpy()
            start = time.perf_counter()
            mean, std = gaussian_posterior(pde, truth, mask, prior)
            seconds = time.perf_counter() - start
            err = relative_l2(mean, truth)
            rows.append(
                {
                    "task": task,
                    "obs_fraction": fraction,
                    "observed_nodes": int(mask[0].sum()),
                    "n": len(truth),
                    "rel_l2_coefficient": float(err[:, 0].mean()),
                    "rel_l2_solution": float(err[:, 1].mean()),
                    "rel_l2_solution_median": float(np.median(err[:, 1])),
                    "seconds_per_instance": seconds / len(truth),
                }
            )
            print(json.dumps(rows[-1]))
    out = Path(f"benchmarks/results/{args.pde}-{args.resolution}-bayes-bound.json")
    payload = {"pde": args.pde, "resolution": args.resolution, "prior_seconds": prior_seconds}
    out.write_text(json.dumps({**payload, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
