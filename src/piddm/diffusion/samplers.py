"""Deterministic samplers of the probability-flow ODE ``dx/ds = (x - D(x; s)) / s``.

Every sampler has the signature ``sample_x(denoiser, x, sigmas, *, callback=None) -> x0``:
``denoiser`` is any callable ``D(x (B, C, S, S), sigma (B,)) -> (B, C, S, S)``, ``x`` the
initial state already scaled by ``sigmas[0]`` (e.g. ``sigma_max * eps``), ``sigmas`` a
decreasing grid ``(N + 1,)`` (usually ending at 0), ``callback`` receives
``dict(i=i, x=x_i, sigma=t_i, denoised=D(x_i; t_i))`` at the start of each step.
Samplers do not switch off autograd: wrap the call in ``torch.no_grad()`` unless gradients
through the trajectory are needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from piddm.diffusion.utils import Denoiser, batch_sigma

Callback = Callable[[dict[str, Any]], None]


def noise_grid(sigmas: torch.Tensor) -> list[float]:
    """Validate a noise grid ``(N + 1,)`` (strictly decreasing, non-negative) and return it as
    python floats; raises :class:`ValueError` otherwise."""
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(
            f"sigmas must be a 1-D grid of >= 2 levels, got shape {tuple(sigmas.shape)}"
        )
    grid = [float(s) for s in sigmas.tolist()]
    if any(a <= b for a, b in zip(grid[:-1], grid[1:], strict=False)) or grid[-1] < 0:
        raise ValueError(f"sigmas must be strictly decreasing and non-negative, got {grid}")
    return grid


def denoise(
    denoiser: Denoiser, x: torch.Tensor, t: float, i: int, callback: Callback | None = None
) -> torch.Tensor:
    """``D(x; t)`` ``(B, C, S, S)`` at the start of step ``i``; ``callback`` (if any) receives
    ``dict(i=i, x=x, sigma=t, denoised=D(x; t))``."""
    denoised = denoiser(x, batch_sigma(t, x))
    if callback is not None:
        callback({"i": i, "x": x, "sigma": t, "denoised": denoised})
    return denoised


def heun_step(
    denoiser: Denoiser,
    x: torch.Tensor,
    t_cur: float,
    t_next: float,
    i: int,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``i`` of :func:`sample_heun`: ``(x_next, x0hat)``, both ``(B, C, S, S)``.

    With ``d(x; t) = (x - D(x; t)) / t`` and the Euler prediction
    ``x' = x + (t_next - t_cur) d(x; t_cur)``: ``x_next = x + (t_next - t_cur)
    (d(x; t_cur) + d(x'; t_next)) / 2`` if ``t_next > 0``, else ``x'``. ``x0hat`` is the last
    denoiser output of the step, ``D(x'; t_next)`` or ``D(x; t_cur)`` (guidance uses it).
    """
    denoised = denoise(denoiser, x, t_cur, i, callback)
    d_cur = (x - denoised) / t_cur
    # Euler step.
    x_next = x + (t_next - t_cur) * d_cur
    x0hat = denoised
    # Heun correction.
    if t_next > 0:
        x0hat = denoiser(x_next, batch_sigma(t_next, x))
        d_next = (x_next - x0hat) / t_next
        x_next = x + (t_next - t_cur) * (0.5 * d_cur + 0.5 * d_next)
    return x_next, x0hat


def sample_euler(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Euler's method for the probability-flow ODE (Karras et al. 2022, Alg. 1 without the
    second-order correction); ``N`` network evaluations for ``N`` steps."""
    grid = noise_grid(sigmas)
    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=False)):
        d_cur = (x - denoise(denoiser, x, t_cur, i, callback)) / t_cur
        # Euler step.
        x = x + (t_next - t_cur) * d_cur
    return x


def sample_heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Heun's second-order method for the probability-flow ODE (Karras et al. 2022, Alg. 1,
    deterministic); the last step to ``sigma = 0`` is an Euler step. ``2N - 1`` network
    evaluations for ``N`` steps ending at 0."""
    grid = noise_grid(sigmas)
    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=False)):
        x, _ = heun_step(denoiser, x, t_cur, t_next, i, callback)
    return x


def count_nfe(steps: int | torch.Tensor, method: Literal["heun", "euler"] = "heun") -> int:
    """Network evaluations of one sampler run.

    ``steps`` is either the number of steps of a grid ending at 0 (as from
    :func:`~piddm.diffusion.schedules.karras_sigmas`: Heun ``2N - 1``, Euler ``N``) or the
    grid ``sigmas`` itself (Heun: two evaluations per step, one for a step ending at 0).
    """
    if method not in ("heun", "euler"):
        raise ValueError(f"unknown sampler '{method}'; expected 'heun' or 'euler'")
    if isinstance(steps, torch.Tensor):
        grid = noise_grid(steps)
        if method == "euler":
            return len(grid) - 1
        return sum(2 if t_next > 0 else 1 for t_next in grid[1:])
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps}")
    return int(steps) if method == "euler" else 2 * int(steps) - 1


#: Samplers by name, for configs and the CLI.
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"heun": sample_heun, "euler": sample_euler}
