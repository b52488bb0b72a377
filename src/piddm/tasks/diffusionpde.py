"""DiffusionPDE's evaluation protocol: its observed point sets and its Darcy error rate.

DiffusionPDE (``scripts/generate_{darcy,poisson,helmholtz}.py``, see docs/diffusionpde.md)
observes ``k = 500`` of the ``128 x 128`` nodes of a field, drawn by its ``random_index``:
seed numpy's global legacy generator with a fixed seed, draw ``k`` distinct flat indices
with ``choice(128**2, k, replace=False)`` and unravel them in C order to ``[i, j]``. The
coefficient uses seed 1 and the solution seed 0, for every test instance alike (the seed
does not depend on the instance). :func:`random_index` repeats exactly these calls on a
private ``numpy.random.RandomState`` (the same generator and stream as the global one after
``numpy.random.seed``), so the point sets are DiffusionPDE's bit for bit.

Other resolutions (piddm's 32^2 CPU setting) use the same generator and seeds with the count
scaled to keep the observed fraction: :func:`observed_count` ``= max(1, round(500 S^2 /
128^2))`` (halves round up): 31 at 32^2, 125 at 64^2, 500 at 128^2.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE

#: DiffusionPDE's observed points per field at its resolution.
COUNT_AT_128 = 500
REFERENCE_RESOLUTION = 128
#: ``random_index`` seeds: the coefficient's mask and the solution's.
COEFFICIENT_SEED = 1
SOLUTION_SEED = 0
#: DiffusionPDE's decoding of a generated Darcy coefficient: 12 above 7.5, else 3.
DARCY_THRESHOLD, DARCY_LOW, DARCY_HIGH = 7.5, 3.0, 12.0


def observed_count(resolution: int) -> int:
    """Points observed per field at ``resolution``: ``max(1, round(500 * S^2 / 128^2))``,
    halves up (500 at 128^2, exactly DiffusionPDE's count)."""
    scaled = COUNT_AT_128 * resolution**2 / REFERENCE_RESOLUTION**2
    return max(1, math.floor(scaled + 0.5))


def random_index_order(count: int, resolution: int, seed: int) -> np.ndarray:
    """The ``count`` flat node indices ``(count,)`` int64 in the order DiffusionPDE's
    ``random_index(count, resolution, seed)`` draws them (legacy ``RandomState(seed)``,
    ``choice(resolution**2, count, replace=False)``)."""
    nodes = resolution * resolution
    if not 1 <= count <= nodes:
        raise PiddmError(f"cannot observe {count} of {nodes} nodes")
    rng = np.random.RandomState(seed)
    return np.asarray(rng.choice(nodes, count, replace=False), dtype=np.int64)


def random_index(count: int, resolution: int, seed: int) -> np.ndarray:
    """DiffusionPDE's ``random_index`` as a bool mask ``(S, S)``: ``True`` at the ``count``
    drawn nodes, each flat index unravelled in C order to ``[i, j]``."""
    rows, cols = np.unravel_index(random_index_order(count, resolution, seed), (resolution,) * 2)
    mask = np.zeros((resolution, resolution), dtype=bool)
    mask[rows, cols] = True
    return mask


def diffusionpde_masks(pde: PDE, task: str, n: int = 1) -> torch.Tensor:
    """DiffusionPDE's observation masks for ``n`` instances of ``task``: bool
    ``(n, C, S, S)``, the same for every instance.

    ``forward``: the coefficient at ``random_index(k, S, 1)``; ``inverse``: the solution at
    ``random_index(k, S, 0)``; ``reconstruct``: both (DiffusionPDE's ``darcy.yaml`` setting),
    with ``k = observed_count(S)``. Raises :class:`PiddmError` for Burgers (DiffusionPDE
    observes its sensors differently) and for an unknown task.
    """
    if pde.coefficient_channel == pde.solution_channel:
        raise PiddmError(
            f"DiffusionPDE's point masks are defined for fields [a, u] (darcy, poisson, "
            f"helmholtz), not {pde.name}"
        )
    if task not in ("forward", "inverse", "reconstruct"):
        raise PiddmError(f"unknown task '{task}'; expected one of: forward, inverse, reconstruct")
    if int(n) != n or n < 1:
        raise PiddmError(f"number of instances must be a positive integer, got {n!r}")
    size, count = pde.resolution, observed_count(pde.resolution)
    mask = torch.zeros(pde.num_channels, size, size, dtype=torch.bool)
    if task in ("forward", "reconstruct"):
        mask[pde.coefficient_channel] = torch.from_numpy(
            random_index(count, size, COEFFICIENT_SEED)
        )
    if task in ("inverse", "reconstruct"):
        mask[pde.solution_channel] = torch.from_numpy(random_index(count, size, SOLUTION_SEED))
    return mask.expand(int(n), -1, -1, -1).clone()


def diffusionpde_error_rate(estimate_a: np.ndarray, truth_a: np.ndarray) -> np.ndarray:
    """Darcy's coefficient error rate as DiffusionPDE computes it, per instance: ``(N, S, S)
    x 2 -> (N,)`` (docs/diffusionpde.md, "Metrics").

    The estimate (physical units) is decoded to ``12`` where it exceeds ``7.5`` and to ``3``
    elsewhere; the rate is the fraction of nodes where the decoded value differs from the
    truth (``1 - sum(decoded == truth) / S^2``, exact comparison). For a truth of exactly 3 /
    12 (DiffusionPDE's and piddm's Darcy data) this equals piddm's thresholded
    :func:`piddm.metrics.error_rate`; a truth with other values counts as wrong wherever it
    is neither 3 nor 12.
    """
    estimate = np.asarray(estimate_a, dtype=np.float64)
    truth = np.asarray(truth_a, dtype=np.float64)
    if estimate.shape != truth.shape or estimate.ndim != 3:
        raise PiddmError(
            f"error rate needs two arrays (N, S, S), got {estimate.shape} and {truth.shape}"
        )
    decoded = np.where(estimate > DARCY_THRESHOLD, DARCY_HIGH, DARCY_LOW)
    right = (decoded == truth).reshape(len(truth), -1).sum(axis=1)
    return 1.0 - right / truth[0].size
