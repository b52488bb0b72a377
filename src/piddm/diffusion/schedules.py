"""Noise-level grids for the samplers; each returns ``sigmas`` ``(N + 1,)`` ending at 0."""

from __future__ import annotations

import torch

# EDM's grid (Karras et al. 2022, Table 1): the defaults of piddm.config.DiffusionConfig.
SIGMA_MIN = 0.002
SIGMA_MAX = 80.0
RHO = 7.0
STEPS = 18


def karras_sigmas(
    num_steps: int = STEPS,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The EDM time steps (Karras et al. 2022, Eq. 5) with a trailing zero: ``(N + 1,)``.

    ``t_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho`` for ``i < N``,
    ``t_N = 0``; ``N = 1`` gives ``[smax, 0]``.
    """
    if int(num_steps) != num_steps or num_steps < 1:
        raise ValueError(f"num_steps must be an integer >= 1, got {num_steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(
            f"need 0 < sigma_min <= sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}"
        )
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    n = int(num_steps)
    ramp = torch.linspace(0.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1)
    lo, hi = sigma_min ** (1.0 / rho), sigma_max ** (1.0 / rho)
    sigmas = (hi + ramp.to(torch.float64) * (lo - hi)) ** rho
    sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    return sigmas.to(device=device, dtype=dtype)
