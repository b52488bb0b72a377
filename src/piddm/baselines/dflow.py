"""D-Flow (Ben-Hamu et al., *D-Flow: Differentiating through Flows for Controlled
Generation*, ICML 2024, arXiv 2402.14017): optimise the initial noise through the solver.

With ``Phi(eps)`` the teacher's deterministic ODE solve from ``x_T = t_0 eps`` on a short grid
(``num_steps`` Heun or Euler steps, differentiable end to end), minimise over the noise

    J(eps) = |M (Phi(eps) - x')|^2 / |M| + lambda_pde Rn(denormalise(Phi(eps)))

(observation misfit in normalised space, optional residual term) by L-BFGS (the paper's
choice) or Adam, back-propagating through every network evaluation of the solve, and return
``Phi(eps*)``. The noise is kept typical of ``N(0, I)`` by optimising on the sphere of radius
``sqrt(d)`` (``regulariser="sphere"``): ``eps = sqrt(d) z / |z|`` per sample, ``z``
initialised with the given noise. This projection-by-parametrisation stands in for the paper's
implicit regularisation by the flow (and its optional ``chi^2`` norm penalty).

The batch objective is the sum over samples, so Adam optimises each sample independently;
L-BFGS shares its step length and curvature pairs across the batch (use batch 1 for fully
independent runs).

Cost: ``(iterations + 1) * nfe(solve)`` network evaluations per sample, with
``nfe(solve) = 2 num_steps - 1`` (Heun) or ``num_steps`` (Euler): one solve per objective
evaluation plus the final one, each evaluation also back-propagated; exact for Adam and for
L-BFGS without line search. With ``line_search=True`` (strong Wolfe, the default) L-BFGS's
evaluations are capped at ``iterations`` but a line search may finish with one more, so the
count is at most ``(iterations + 2) * nfe(solve)``. Without observations and with
``lambda_pde = 0`` there is nothing to optimise: one plain solve (``nfe(solve)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from piddm.baselines.utils import (
    GridSettings,
    check_nonnegative,
    mean_squared_misfit,
    observations,
    physical_residual,
    prepare_sampling,
)
from piddm.diffusion.samplers import SAMPLERS, Callback, count_nfe
from piddm.diffusion.utils import Denoiser
from piddm.errors import PiddmError
from piddm.pdes import PDE


@dataclass(frozen=True)
class DFlowSettings(GridSettings):
    """Settings of :func:`sample_dflow`.

    ``num_steps``/``solver``: the differentiated solve; ``iterations``: optimiser steps
    (L-BFGS: ``max_iter`` of one ``step``), ``line_search``: strong Wolfe for L-BFGS;
    ``lr``: ``None`` = 1.0 for L-BFGS, 0.05 for Adam;
    ``lambda_pde``: weight of ``Rn`` (``0`` = observations only, as in the paper).
    """

    num_steps: int = 6
    solver: Literal["heun", "euler"] = "heun"
    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    iterations: int = 20
    lr: float | None = None
    line_search: bool = True
    history_size: int = 10
    lambda_pde: float = 0.0
    regulariser: Literal["sphere", "none"] = "sphere"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.solver not in SAMPLERS:
            raise PiddmError(f"solver must be one of {sorted(SAMPLERS)}, got {self.solver}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise PiddmError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer}")
        if self.regulariser not in ("sphere", "none"):
            raise PiddmError(f"regulariser must be 'sphere' or 'none', got {self.regulariser}")
        for name in ("iterations", "history_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise PiddmError(f"{name} must be an integer >= 1, got {value}")
        check_nonnegative(lambda_pde=self.lambda_pde)
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise PiddmError(f"lr must be a positive number, got {self.lr}")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default (L-BFGS 1.0, Adam 0.05)."""
        if self.lr is not None:
            return float(self.lr)
        return 1.0 if self.optimizer == "lbfgs" else 0.05


#: Default residual weight for :func:`dflow_settings` (``Rn`` is normalised per PDE, so one
#: value transfers); it makes D-Flow usable for generation (residual as the only objective).
DFLOW_LAMBDA_PDE = 1e-3


def dflow_settings(pde: PDE, **overrides: Any) -> DFlowSettings:
    """Defaults (the same for every PDE): ``lambda_pde = 1e-3``; ``overrides`` replace any
    field."""
    return DFlowSettings(**{"lambda_pde": DFLOW_LAMBDA_PDE, **overrides})


def dflow_nfe(settings: DFlowSettings) -> int:
    """Network evaluations per sample: ``(iterations + 1) * nfe(solve)`` for Adam and for L-BFGS
    without line search; with L-BFGS + line search the upper bound ``(iterations + 2) *
    nfe(solve)``. (A task with nothing to optimise costs one solve, ``nfe(solve)``.)"""
    solves = settings.iterations + 1
    if settings.optimizer == "lbfgs" and settings.line_search:
        solves += 1
    return solves * count_nfe(settings.num_steps, settings.solver)


def _on_sphere(z: torch.Tensor) -> torch.Tensor:
    """``sqrt(d) z / |z|`` per sample, ``d`` = entries per sample."""
    d = z[0].numel()
    norm = z.flatten(1).norm(dim=1).clamp_min(1e-12)
    return math.sqrt(d) * z / norm.view(-1, *([1] * (z.ndim - 1)))


def sample_dflow(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
    pde: PDE,
    mask: torch.Tensor | None = None,
    obs: torch.Tensor | None = None,
    settings: DFlowSettings | None = None,
) -> torch.Tensor:
    """D-Flow (Ben-Hamu et al. 2024): noise optimisation through a few-step teacher solve.

    ``x`` ``(B, C, S, S)`` is ``sigmas[0] * noise`` (the initial noise); ``sigmas`` the short
    grid of the differentiated solve (e.g. ``settings.sigmas()``); ``mask`` (bool) / ``obs``
    (normalised) optional observations broadcastable to ``x``. Returns ``Phi(eps*)``
    ``(B, C, S, S)``, detached. ``callback`` gets ``dict(i, x, noise, loss)`` after each
    objective evaluation (``x`` the solve's output, ``loss`` the batch objective).
    """
    settings = settings or DFlowSettings()
    grid, counter = prepare_sampling(denoiser, x, sigmas, pde)
    solve = SAMPLERS[settings.solver]
    ob = observations(pde, x, mask, obs)
    has_obs = ob is not None and ob.any
    sigma_max = grid[0]

    def noise_of(z: torch.Tensor) -> torch.Tensor:
        return _on_sphere(z) if settings.regulariser == "sphere" else z

    if not has_obs and settings.lambda_pde == 0.0:
        with torch.no_grad():
            return solve(counter, sigma_max * noise_of(x / sigma_max), sigmas)

    z = (x / sigma_max).detach().clone().requires_grad_(True)
    evaluations = 0

    def objective() -> torch.Tensor:
        nonlocal evaluations
        with torch.enable_grad():
            eps = noise_of(z)
            out = solve(counter, sigma_max * eps, sigmas)
            loss = out.new_zeros(())
            if has_obs:
                assert ob is not None
                loss = loss + mean_squared_misfit(out, ob).sum()
            if settings.lambda_pde != 0.0:
                loss = loss + settings.lambda_pde * physical_residual(pde, out).sum()
            (grad,) = torch.autograd.grad(loss, z)
        z.grad = grad
        if callback is not None:
            callback(
                {"i": evaluations, "x": out.detach(), "noise": eps.detach(), "loss": loss.item()}
            )
        evaluations += 1
        return loss.detach()

    lr = settings.learning_rate
    if settings.optimizer == "lbfgs":
        lbfgs = torch.optim.LBFGS(
            [z],
            lr=lr,
            max_iter=settings.iterations,
            # Without line search one evaluation per iteration (the last one's update needs
            # none); with it, ``max_eval`` caps the evaluations of the whole run.
            max_eval=settings.iterations + (0 if settings.line_search else 1),
            history_size=settings.history_size,
            tolerance_grad=0.0,
            tolerance_change=0.0,
            line_search_fn="strong_wolfe" if settings.line_search else None,
        )
        lbfgs.step(objective)
    else:
        adam = torch.optim.Adam([z], lr=lr)
        for _ in range(settings.iterations):
            adam.zero_grad(set_to_none=True)
            objective()
            adam.step()
    with torch.no_grad():
        return solve(counter, sigma_max * noise_of(z), sigmas)
