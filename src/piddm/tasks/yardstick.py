"""The yardstick of a task: what good is for these observations (docs/concepts.md, "Tasks").

Every task result (``piddm solve --json``, ``piddm demo``) carries the error of a reference
estimate under the *same* observations, computed with the same metrics
(:func:`piddm.metrics.task_metrics`):

* ``bayes_floor`` (linear-Gaussian PDEs, Poisson and Helmholtz, up to
  :data:`~piddm.tasks.gaussian_posterior.MAX_RESOLUTION`): the exact posterior mean
  (:func:`~piddm.tasks.gaussian_posterior.gaussian_posterior`). No method has a lower
  expected squared error, so it is a floor: a method is good when it comes close to it.
* ``prior_mean_error`` (every other PDE, or a grid too large for the dense posterior): the
  data's mean field :meth:`~piddm.pdes.PDE.prior_mean` with the observed values put in,
  ``M x' + (1 - M) mean``. It is what an estimate that uses the observations only where they
  are gets: a method must be well below it to have learnt anything from the physics and the
  prior (Burgers' mean is 0, so its prior-mean error is that of guessing zero).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from piddm.metrics import task_metrics
from piddm.pdes import PDE
from piddm.tasks.gaussian_posterior import MAX_RESOLUTION, gaussian_posterior

Yardstick = Literal["bayes_floor", "prior_mean_error"]
#: The task metrics a yardstick reports (``residual_mean`` is left out: a reference, not a
#: physics measure).
YARDSTICK_METRICS: tuple[str, ...] = ("rel_l2_coefficient", "rel_l2_solution", "error_rate")


def yardstick_kind(pde: PDE) -> Yardstick:
    """``bayes_floor`` where the exact posterior is available for ``pde``, else
    ``prior_mean_error``."""
    if pde.linear_gaussian and pde.resolution <= MAX_RESOLUTION:
        return "bayes_floor"
    return "prior_mean_error"


def yardstick_estimate(
    pde: PDE, observations: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor
) -> tuple[Yardstick, np.ndarray]:
    """The reference estimate ``(N, C, S, S)`` float64 of ``observations`` (physical units,
    only their values at ``mask`` are read) and its kind (module doc)."""
    obs = np.asarray(torch.as_tensor(observations).detach().cpu(), dtype=np.float64)
    observed = np.asarray(torch.as_tensor(mask).detach().cpu(), dtype=bool)
    observed = np.array(np.broadcast_to(observed, obs.shape))  # writable, for torch
    kind = yardstick_kind(pde)
    if kind == "bayes_floor":
        mean, _ = gaussian_posterior(pde, np.where(observed, obs, 0.0), observed)
        return kind, mean
    return kind, prior_mean_estimate(pde, obs, observed)


def prior_mean_estimate(pde: PDE, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``M x' + (1 - M) mean`` ``(N, C, S, S)`` float64: the observed values where observed,
    the data's mean field :meth:`~piddm.pdes.PDE.prior_mean` elsewhere."""
    observed = np.broadcast_to(np.asarray(mask, dtype=bool), observations.shape)
    return np.where(observed, observations, pde.prior_mean()[None])


def prior_mean_error(
    pde: PDE,
    observations: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor,
) -> dict[str, float | None]:
    """The task metrics (:data:`YARDSTICK_METRICS`) of :func:`prior_mean_estimate` against
    ``truth`` (all ``(N, C, S, S)``): the error a method must be well below, reported for
    every PDE next to the Bayes floor where that is the yardstick."""
    obs = np.asarray(torch.as_tensor(observations).detach().cpu(), dtype=np.float64)
    observed = np.asarray(torch.as_tensor(mask).detach().cpu(), dtype=bool)
    truth_np = np.asarray(torch.as_tensor(truth).detach().cpu(), dtype=np.float64)
    metrics = task_metrics(pde, prior_mean_estimate(pde, obs, observed), truth_np)
    return {key: metrics[key] for key in YARDSTICK_METRICS}


def yardstick(
    pde: PDE,
    observations: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor | None,
) -> tuple[Yardstick, dict[str, float | None]]:
    """``(kind, metrics)``: the task metrics (:data:`YARDSTICK_METRICS`) of the reference
    estimate of ``observations`` at ``mask`` against ``truth`` (all ``(N, C, S, S)``; every
    metric ``None`` without a truth)."""
    if truth is None:
        return yardstick_kind(pde), dict.fromkeys(YARDSTICK_METRICS)
    kind, estimate = yardstick_estimate(pde, observations, mask)
    truth_np = np.asarray(torch.as_tensor(truth).detach().cpu(), dtype=np.float64)
    metrics = task_metrics(pde, estimate, truth_np)
    return kind, {key: metrics[key] for key in YARDSTICK_METRICS}


def yardstick_entries(
    pde: PDE,
    observations: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor | None,
) -> dict[str, object]:
    """The yardstick keys of a task result: ``yardstick`` (the kind), the kind's metrics
    (:func:`yardstick`) and ``prior_mean_error`` always, the error a method must beat (every
    metric ``None`` without a truth)."""
    kind, reference = yardstick(pde, observations, mask, truth)
    entries: dict[str, object] = {"yardstick": kind, kind: reference}
    if kind != "prior_mean_error":
        entries["prior_mean_error"] = (
            dict.fromkeys(YARDSTICK_METRICS)
            if truth is None
            else prior_mean_error(pde, observations, mask, truth)
        )
    return entries


__all__ = [
    "YARDSTICK_METRICS",
    "Yardstick",
    "prior_mean_error",
    "prior_mean_estimate",
    "yardstick",
    "yardstick_entries",
    "yardstick_estimate",
    "yardstick_kind",
]
