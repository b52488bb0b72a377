"""Estimate the Bayes floor of the Darcy forward problem from sparse coefficient observations.

Usage: python benchmarks/darcy_forward_floor.py [--n 100] [--samples 100] [--fraction 0.03]
(writes benchmarks/results/darcy-32-forward-floor.json, at another fraction F
darcy-32-forward-floor-F.json)

Darcy's coefficient is ``a = 12`` where ``g >= 0`` else ``3``, with ``g = Phi diag(s) xi`` the
Neumann GRF of white noise ``xi`` (:mod:`piddm.pdes.grf`). Observing ``a`` at nodes ``o``
observes the signs of ``g_o = A_o xi``: the posterior of ``xi`` is the standard normal
restricted to a polyhedral cone. Elliptical slice sampling (Murray, Adams & MacKay 2010)
samples it exactly, with an indicator likelihood (a hand-written loop: scipy has no ESS).
Each posterior sample is solved with the package's Darcy solver; the posterior mean of ``u``
minimises the expected squared error given the observations, and the posterior majority
vote of ``a > 7.5`` minimises the expected error rate.

The instances and masks are those of ``piddm bench`` (first N held-out samples of
``data/darcy-32-test.h5``, mask seed ``sample_seed(0, 0)``). Two independent chains per
instance are run; their disagreement bounds the Monte Carlo error of the estimate, which can
only make it worse than the true floor (a finite-sample posterior mean is a noisier
estimator), so the reported errors are upper estimates of the floor.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from piddm.data import read_dataset
from piddm.data.generate import sample_seed
from piddm.metrics import error_rate, relative_l2
from piddm.pdes import get_pde
from piddm.pdes.grf import grf2d_modes
from piddm.tasks import make_mask


def feasible_start(rows: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """A white-noise vector whose field has the observed signs: the minimum-norm ``xi`` with
    ``rows @ xi = signs * scale`` (scale = the field's typical value)."""
    scale = np.sqrt((rows**2).sum(axis=1)).mean()
    return np.linalg.lstsq(rows, signs * scale, rcond=None)[0]


def elliptical_slice_chain(
    rows: np.ndarray,
    signs: np.ndarray,
    rng: np.random.Generator,
    burn_in: int,
    draws: int,
    thin: int,
) -> np.ndarray:
    """Samples ``(draws, d)`` of ``xi ~ N(0, I)`` restricted to ``sign(rows @ xi) == signs``."""
    xi = feasible_start(rows, signs)
    assert np.all(np.sign(rows @ xi) == signs)
    out = []
    for step in range(burn_in + draws * thin):
        nu = rng.standard_normal(xi.shape)
        theta = rng.uniform(0.0, 2.0 * np.pi)
        lo, hi = theta - 2.0 * np.pi, theta
        while True:  # shrink the bracket until the proposal satisfies every constraint
            proposal = xi * np.cos(theta) + nu * np.sin(theta)
            if np.all(np.sign(rows @ proposal) == signs):
                xi = proposal
                break
            if theta < 0:
                lo = theta
            else:
                hi = theta
            theta = rng.uniform(lo, hi)
        if step >= burn_in and (step - burn_in) % thin == thin - 1:
            out.append(xi.copy())
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100, help="posterior draws per chain")
    parser.add_argument("--thin", type=int, default=10)
    parser.add_argument("--burn-in", type=int, default=500)
    parser.add_argument("--fraction", type=float, default=0.03)
    args = parser.parse_args()
    pde = get_pde("darcy", 32)
    size = pde.resolution
    truth = np.asarray(read_dataset("data/darcy-32-test.h5").fields[: args.n], dtype=np.float64)
    mask_rng = torch.Generator().manual_seed(sample_seed(0, 0))  # bench: task index 0
    mask = make_mask(pde, "forward", args.fraction, mask_rng, n=len(truth)).numpy()
    basis = grf2d_modes(size, pde.grf_alpha, pde.grf_tau).reshape(size * size, -1).T  # g = B xi
    high, low = pde.params["a_high"], pde.params["a_low"]
    start = time.perf_counter()
    chains = []
    for chain in range(2):
        means_u, means_a, votes = [], [], []
        for i in range(len(truth)):
            observed = np.flatnonzero(mask[i, 0].ravel())
            signs = np.where(truth[i, 0].ravel()[observed] > pde.threshold, 1.0, -1.0)
            rng = np.random.default_rng([chain, i])
            xis = elliptical_slice_chain(
                basis[observed], signs, rng, args.burn_in, args.samples, args.thin
            )
            g = (xis @ basis.T).reshape(-1, size, size)
            coefficients = np.where(g >= 0.0, high, low)
            fields = np.stack([pde.solve(a) for a in coefficients])
            means_u.append(fields[:, 1].mean(axis=0))
            means_a.append(fields[:, 0].mean(axis=0))
            majority = (coefficients > pde.threshold).mean(axis=0) >= 0.5
            votes.append(np.where(majority, high, low))
        chains.append((np.stack(means_u), np.stack(means_a), np.stack(votes)))
    seconds = time.perf_counter() - start
    rows = []
    for k, (mean_u, mean_a, vote) in enumerate(chains):
        rows.append(
            {
                "chain": k,
                "rel_l2_solution": float(relative_l2(mean_u[:, None], truth[:, 1:2]).mean()),
                "rel_l2_coefficient": float(relative_l2(mean_a[:, None], truth[:, 0:1]).mean()),
                "error_rate": float(error_rate(vote, truth[:, 0], pde.threshold).mean()),
            }
        )
    pooled_u = 0.5 * (chains[0][0] + chains[1][0])
    payload = {
        "pde": "darcy",
        "resolution": size,
        "task": "forward",
        "obs_fraction": args.fraction,
        "observed_nodes": int(mask[0].sum()),
        "n": len(truth),
        "draws_per_chain": args.samples,
        "thin": args.thin,
        "burn_in": args.burn_in,
        "chains": rows,
        "rel_l2_solution_pooled": float(relative_l2(pooled_u[:, None], truth[:, 1:2]).mean()),
        # |mean_chain0 - mean_chain1| / |u|: the Monte Carlo error of one chain's mean, x sqrt(2)
        "chain_disagreement_solution": float(
            relative_l2(chains[0][0][:, None], chains[1][0][:, None]).mean()
        ),
        "seconds": seconds,
    }
    print(json.dumps(payload, indent=1))
    suffix = "" if args.fraction == 0.03 else f"-{args.fraction:g}"
    out = Path(f"benchmarks/results/darcy-32-forward-floor{suffix}.json")
    out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
