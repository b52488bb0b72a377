"""CoCoGen (Jacobsen, Zhuang, Duraisamy, *CoCoGen: Physically-Consistent and Conditioned
Score-based Generative Models for Forward and Inverse Problems*, arXiv 2312.10527).

Physically-consistent sampling: the teacher's ODE is integrated as usual, and late in
sampling the *sample itself* (not the posterior mean) is pushed down the residual:

1. Heun step ``x_i -> x_{i+1}`` (as :func:`piddm.diffusion.sample_heun`);
2. if ``i > start_fraction * N``: ``inner_steps`` corrections
   ``x_{i+1} <- x_{i+1} - eta grad_x Rn(denormalise(x_{i+1}))``;
3. after the last step: ``final_steps`` more corrections of the clean sample ``x_N``.

The corrections need no network evaluation (only the residual's gradient), so the cost is the
teacher's: ``2N - 1`` network evaluations per sample. ``eta`` must stay below the explicit
stability limit ``2 / L`` of the residual (``L`` from
:func:`~piddm.baselines.utils.residual_stiffness`); :func:`cocogen_settings` sets it to
``0.5 / L``.

Tasks: generation only. The paper conditions with separately trained conditional models;
piddm implements no observation terms for CoCoGen, and :func:`sample_cocogen` rejects
observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from piddm.baselines.utils import (
    GridSettings,
    check_fraction,
    check_nonnegative,
    detached,
    is_late,
    physical_residual,
    prepare_sampling,
    residual_stiffness,
)
from piddm.diffusion.samplers import Callback, count_nfe, heun_step
from piddm.diffusion.utils import Denoiser
from piddm.errors import PiddmError
from piddm.pdes import PDE

#: Default correction step as a fraction of the stability limit ``1 / L``.
COCOGEN_STEP_FRACTION = 0.5


@dataclass(frozen=True)
class CoCoGenSettings(GridSettings):
    """Settings of :func:`sample_cocogen`: corrections after step ``i > start_fraction * N``
    (``inner_steps`` each) and ``final_steps`` after the last step, step size ``step_size``
    (``0`` = plain Heun). Per-PDE defaults: :func:`cocogen_settings`."""

    num_steps: int = 18
    start_fraction: float = 0.8
    step_size: float = 0.0
    inner_steps: int = 1
    final_steps: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction("start_fraction", self.start_fraction)
        check_nonnegative(step_size=self.step_size)
        for name in ("inner_steps", "final_steps"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise PiddmError(f"{name} must be an integer >= 0, got {value}")


def cocogen_settings(pde: PDE, **overrides: Any) -> CoCoGenSettings:
    """Defaults at ``pde``'s resolution: ``step_size = 0.5 / residual_stiffness(pde)``."""
    values: dict[str, Any] = {}
    if "step_size" not in overrides:
        values["step_size"] = COCOGEN_STEP_FRACTION / residual_stiffness(pde)
    values.update(overrides)
    return CoCoGenSettings(**values)


def cocogen_nfe(settings: CoCoGenSettings) -> int:
    """Network evaluations per sample: ``2 N - 1``, the corrections cost none."""
    return count_nfe(settings.num_steps, "heun")


def residual_descent(pde: PDE, x: torch.Tensor, step_size: float, steps: int) -> torch.Tensor:
    """``steps`` gradient steps ``x <- x - step_size grad Rn(denormalise(x))``, per sample."""
    if step_size == 0.0 or steps == 0:
        return x
    for _ in range(steps):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(physical_residual(pde, xr).sum(), xr)
        x = (xr - step_size * grad).detach()
    return x


def sample_cocogen(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
    pde: PDE,
    settings: CoCoGenSettings | None = None,
    mask: torch.Tensor | None = None,
    obs: torch.Tensor | None = None,
) -> torch.Tensor:
    """CoCoGen sampling (Jacobsen et al.): Heun with residual-gradient corrections of ``x_t``.

    ``x`` ``(B, C, S, S)`` is ``sigmas[0] * noise``; returns ``(B, C, S, S)`` (normalised).
    Generation only: passing ``mask``/``obs`` raises :class:`PiddmError`.
    """
    if mask is not None or obs is not None:
        raise PiddmError("cocogen supports generation only (no observations)")
    settings = settings or CoCoGenSettings()
    grid, counter = prepare_sampling(denoiser, x, sigmas, pde)
    num_steps, callback = len(grid) - 1, detached(callback)
    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=False)):
        x, _ = heun_step(counter, x, t_cur, t_next, i, callback)
        # Residual correction of x_{i+1}.
        if is_late(i, num_steps, settings.start_fraction):
            x = residual_descent(pde, x, settings.step_size, settings.inner_steps)
    # Final corrections of the clean sample.
    return residual_descent(pde, x, settings.step_size, settings.final_steps)
