"""Observation masks for the downstream tasks (docs/observations.md, "What each task observes").

A mask ``M`` is a bool tensor ``(N, C, S, S)``, ``True`` where a value is observed. What a
task observes is the PDE's own observation model, :meth:`piddm.pdes.PDE.observation_mask`:

* steady problems (Darcy, Poisson, Helmholtz): ``forward`` a random ``fraction`` of the
  coefficient's nodes, ``inverse`` of the solution's, ``reconstruct`` of every channel's;
* Burgers (:meth:`piddm.pdes.burgers.Burgers.observation_mask`): ``forward`` the whole initial
  condition, ``inverse`` sensor columns at all times (DiffusionPDE's setting),
  ``reconstruct`` random space-time nodes.

Random subsets hold ``max(1, round(fraction * n_nodes))`` nodes (halves round up), drawn
without replacement from a ``torch.Generator`` (deterministic given its seed); ``fraction ==
1`` observes all of them. The benchmark default is DiffusionPDE's: 500 of 128^2, about 3 %.

Mask modes (:func:`task_masks`, ``piddm solve --masks``, bench ``tasks.masks``): ``random``
is the above; ``diffusionpde`` reproduces DiffusionPDE's fixed point sets
(:mod:`piddm.tasks.diffusionpde`, docs/diffusionpde.md), which ignore the fraction and the
generator.
"""

from __future__ import annotations

from typing import cast

import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.pdes.base import Task
from piddm.pdes.burgers import sensor_count
from piddm.tasks.diffusionpde import diffusionpde_masks

TASKS: tuple[str, ...] = ("forward", "inverse", "reconstruct")

#: How the observed nodes are chosen (:func:`task_masks`).
MASK_MODES: tuple[str, ...] = ("random", "diffusionpde")


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


#: The 0.1 name of :func:`piddm.pdes.burgers.sensor_count` (Burgers' sensor columns).
burgers_sensor_count = sensor_count


def make_mask(
    pde: PDE, task: str, fraction: float, generator: torch.Generator, n: int = 1
) -> torch.Tensor:
    """Observation masks for ``n`` instances of ``task``: bool ``(n, C, S, S)`` on the CPU.

    Each instance draws its own mask from the PDE's observation model
    (:meth:`~piddm.pdes.PDE.observation_mask`, in order, from ``generator``). Raises
    :class:`PiddmError` for a fraction outside ``(0, 1]``, an unknown task, or a mask that
    would observe every node (``reconstruct`` with ``fraction == 1``: nothing to estimate).
    """
    value = check_fraction(fraction)
    name = check_task(task)
    if int(n) != n or n < 1:
        raise PiddmError(f"number of instances must be a positive integer, got {n!r}")
    masks = torch.stack([pde.observation_mask(name, value, generator) for _ in range(int(n))])
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
