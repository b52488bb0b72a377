"""Observation masks for the downstream tasks (SPEC section 3.6).

A mask ``M`` is a bool tensor ``(N, C, S, S)``, ``True`` where a value is observed:

* ``forward``: the coefficient channel (the initial-condition row for Burgers);
* ``inverse``: the solution channel (sensor columns at all times for Burgers);
* ``reconstruct``: random subsets of every channel.

Random subsets hold ``max(1, round(fraction * n_nodes))`` nodes (halves round up), drawn
without replacement from a ``torch.Generator`` (deterministic given its seed); ``fraction ==
1`` observes all of them. SPEC's benchmark default is 500 of 128^2 nodes, about 3 %.

Burgers ``inverse`` follows SPEC's "5 random sensor columns observed at all times" at 128^2
and scales the number of columns with the grid: ``max(2, round(5 * S / 128))`` columns
(2 at 16^2 and 32^2, 3 at 64^2, 5 at 128^2), so that a coarse grid keeps the same sensor
density per unit length as far as an integer count allows, with at least two sensors. The
observation fraction does not enter this mask (it is still validated).

Mask modes (:func:`task_masks`, ``piddm solve --masks``, bench ``tasks.masks``): ``random``
is the above; ``diffusionpde`` reproduces DiffusionPDE's fixed point sets
(:mod:`piddm.tasks.diffusionpde`, docs/diffusionpde.md), which ignore the fraction and the
generator.
"""

from __future__ import annotations

import math
from typing import Literal, cast

import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.tasks.diffusionpde import diffusionpde_masks

Task = Literal["forward", "inverse", "reconstruct"]
TASKS: tuple[str, ...] = ("forward", "inverse", "reconstruct")

#: How the observed nodes are chosen (:func:`task_masks`).
MASK_MODES: tuple[str, ...] = ("random", "diffusionpde")

#: Burgers sensor columns at the reference resolution 128 (SPEC section 3).
BURGERS_SENSORS_AT_128 = 5


def check_fraction(fraction: float) -> float:
    """Return ``fraction`` as a float if it lies in ``(0, 1]``, else raise :class:`PiddmError`."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise PiddmError(f"--obs-fraction must be in (0, 1], got {fraction!r}") from None
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise PiddmError(f"--obs-fraction must be in (0, 1], got {fraction!r}")
    return value


def check_task(task: str) -> Task:
    """Return ``task`` if it names a task, else raise :class:`PiddmError`."""
    if task not in TASKS:
        raise PiddmError(f"unknown task '{task}'; expected one of: {', '.join(TASKS)}")
    return cast(Task, task)


def burgers_sensor_count(resolution: int) -> int:
    """Number of Burgers sensor columns at ``resolution``: ``max(2, round(5 * S / 128))``.

    Halves round up (``5 * 64 / 128 = 2.5 -> 3``), unlike Python's banker's ``round``.
    """
    return max(2, math.floor(BURGERS_SENSORS_AT_128 * resolution / 128 + 0.5))


def _subset_count(fraction: float, size: int) -> int:
    return size if fraction >= 1.0 else min(size, max(1, math.floor(fraction * size + 0.5)))


def _random_subset(size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """Bool ``(size,)`` with ``count`` ``True`` entries at random positions."""
    chosen = torch.zeros(size, dtype=torch.bool)
    chosen[torch.randperm(size, generator=generator)[:count]] = True
    return chosen


def _one_mask(pde: PDE, task: Task, fraction: float, generator: torch.Generator) -> torch.Tensor:
    size, channels = pde.resolution, pde.num_channels
    mask = torch.zeros(channels, size, size, dtype=torch.bool)
    nodes = size * size
    if pde.name == "burgers":
        channel = pde.solution_channel
        if task == "forward":  # the initial condition u(x, 0): row 0
            mask[channel, 0] = _random_subset(size, _subset_count(fraction, size), generator)
        elif task == "inverse":  # sensor columns at all times
            cols = torch.randperm(size, generator=generator)[: burgers_sensor_count(size)]
            mask[channel, :, cols] = True
        else:
            for c in range(channels):
                mask[c] = _random_subset(nodes, _subset_count(fraction, nodes), generator).view(
                    size, size
                )
        return mask
    if task == "reconstruct":
        observed = range(channels)
    else:
        observed = [pde.coefficient_channel if task == "forward" else pde.solution_channel]
    for c in observed:
        mask[c] = _random_subset(nodes, _subset_count(fraction, nodes), generator).view(size, size)
    return mask


def make_mask(
    pde: PDE, task: str, fraction: float, generator: torch.Generator, n: int = 1
) -> torch.Tensor:
    """Observation masks for ``n`` instances of ``task``: bool ``(n, C, S, S)`` on the CPU.

    Each instance draws its own random nodes (in order, from ``generator``). Raises
    :class:`PiddmError` for a fraction outside ``(0, 1]``, an unknown task, or a mask that
    would observe every node (``reconstruct`` with ``fraction == 1``: nothing to estimate).
    """
    value = check_fraction(fraction)
    name = check_task(task)
    if int(n) != n or n < 1:
        raise PiddmError(f"number of instances must be a positive integer, got {n!r}")
    masks = torch.stack([_one_mask(pde, name, value, generator) for _ in range(int(n))])
    return validate_mask(masks, pde)


def task_masks(
    pde: PDE,
    task: str,
    fraction: float,
    generator: torch.Generator,
    n: int = 1,
    mode: str = "random",
) -> torch.Tensor:
    """Observation masks ``(n, C, S, S)`` of ``task`` in mask ``mode`` (:data:`MASK_MODES`):
    :func:`make_mask` for ``random``, :func:`piddm.tasks.diffusionpde.diffusionpde_masks`
    (which ignores ``fraction`` and ``generator``) for ``diffusionpde``."""
    if mode == "random":
        return make_mask(pde, task, fraction, generator, n=n)
    if mode == "diffusionpde":
        return validate_mask(diffusionpde_masks(pde, check_task(task), n), pde)
    raise PiddmError(f"unknown mask mode '{mode}'; expected one of: {', '.join(MASK_MODES)}")


def validate_mask(mask: torch.Tensor, pde: PDE) -> torch.Tensor:
    """Check a user-supplied mask and return it as bool ``(N, C, S, S)``.

    Accepts ``(C, S, S)`` or ``(N, C, S, S)``, bool or 0/1 numbers. Raises
    :class:`PiddmError` for a wrong shape, values other than 0/1, or an instance whose mask
    observes no node or every node.
    """
    if not isinstance(mask, torch.Tensor):
        raise PiddmError(f"mask must be a tensor, got {type(mask).__name__}")
    expected = (pde.num_channels, pde.resolution, pde.resolution)
    if mask.ndim == 3:
        mask = mask.unsqueeze(0)
    if mask.ndim != 4 or tuple(mask.shape[1:]) != expected or mask.shape[0] < 1:
        raise PiddmError(
            f"{pde.name} masks must have shape (N, {expected[0]}, {expected[1]}, "
            f"{expected[2]}), got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise PiddmError("mask values must be 0 or 1 (or bool)")
        mask = mask != 0
    counts = mask.flatten(1).sum(dim=1)
    if bool((counts == 0).any()):
        first = int(torch.nonzero(counts == 0)[0, 0])
        raise PiddmError(f"mask of instance {first} observes no node")
    total = mask[0].numel()
    if bool((counts == total).any()):
        first = int(torch.nonzero(counts == total)[0, 0])
        raise PiddmError(f"mask of instance {first} observes every node: nothing to estimate")
    return mask


def validate_observations(obs: torch.Tensor, mask: torch.Tensor, pde: PDE) -> torch.Tensor:
    """Check observations ``(N, C, S, S)`` against a bool mask ``(N or 1, C, S, S)``.

    Values at unobserved nodes are ignored (they may be NaN); a NaN or infinity at an observed
    node raises :class:`PiddmError`, as does a shape mismatch. Returns ``obs``.
    """
    if not isinstance(obs, torch.Tensor) or not obs.is_floating_point():
        raise PiddmError("observations must be a floating-point tensor")
    pde.check_fields(obs)
    if mask.shape[0] not in (1, obs.shape[0]) or mask.shape[1:] != obs.shape[1:]:
        raise PiddmError(
            f"mask shape {tuple(mask.shape)} does not match observations {tuple(obs.shape)}"
        )
    bad = ~torch.isfinite(obs) & mask.to(obs.device)
    if bool(bad.any()):
        index = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise PiddmError(
            f"observations hold {int(bad.sum())} NaN/inf value(s) at observed nodes "
            f"(first at index {index})"
        )
    return obs
