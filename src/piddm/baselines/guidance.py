"""DiffusionPDE (Huang et al., *DiffusionPDE: Generative PDE-Solving Under Partial
Observation*, NeurIPS 2024, arXiv 2406.17763): Heun sampling with observation and PDE guidance.

Algorithm (deterministic Heun on the Karras grid ``t_0 > ... > t_N = 0``), for ``i = 0..N-1``:

1. Heun step ``x_i -> x_{i+1}`` exactly as :func:`piddm.diffusion.sample_heun`; ``x0hat`` is
   the *last* denoiser output of the step: ``D(x'_{i+1}; t_{i+1})`` at the Euler prediction
   ``x'_{i+1} = x_i + (t_{i+1} - t_i) (x_i - D(x_i; t_i)) / t_i`` when ``t_{i+1} > 0`` (the
   Heun correction's evaluation), else ``D(x_i; t_i)`` (the final Euler step to 0).
2. Guidance, with gradients taken w.r.t. ``x_i`` (back-propagating through both network
   evaluations of the step, via ``x'_{i+1}``):

   * early (``i <= pde_start N``):
     ``x_{i+1} -= grad_{x_i} sum_c zeta_obs_c |M_c (x0hat_c - x'_c)|_2``;
   * late (``i > pde_start N``): ``x_{i+1} -= grad_{x_i} [late_obs_factor sum_c zeta_obs_c
     |M_c (x0hat_c - x'_c)|_2 + zeta_pde Rn(x0hat)]``.

We read ``x0hat = D(x_{i+1}; t_{i+1})`` (docs/method.md, "Baselines") as the reference code does
(``scripts/generate_*.py`` of jhhuangchloe/DiffusionPDE): there ``x_N`` is overwritten by the
Heun correction's evaluation at the *Euler prediction* (not the final ``x_{i+1}``, which would
cost a third evaluation per step), the loss is differentiated w.r.t. ``x_cur = x_i``, and in the
late phase the observation weights are multiplied by 0.1 (``late_obs_factor``). The observation
misfit is a norm (not squared) per channel, measured in physical units by default
(``obs_space="physical"``, as the reference code de-normalises before comparing); the PDE term
is ``Rn`` (docs/method.md, "Residual and Rn") by default, or the reference
code's ``|R|_2 / n_nodes`` with ``pde_loss="norm"``. Batches are guided per sample (the losses
are summed over the batch, so each sample's gradient is its own). With every weight zero no
gradient is taken and the output equals :func:`~piddm.diffusion.sample_heun`'s bit for bit.

Cost: ``2N - 1`` network evaluations per sample (``N = 2000`` in the paper), each guided step
back-propagating through two of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from piddm.baselines.utils import (
    GridSettings,
    channel_misfit_norms,
    check_fraction,
    check_nonnegative,
    detached,
    is_late,
    observations,
    physical_residual,
    prepare_sampling,
    residual_norm,
    residual_stiffness,
)
from piddm.diffusion.samplers import Callback, count_nfe, heun_step
from piddm.diffusion.utils import Denoiser
from piddm.errors import PiddmError
from piddm.pdes import PDE, PDE_REGISTRY


@dataclass(frozen=True)
class DiffusionPDESettings(GridSettings):
    """Settings of :func:`sample_diffusionpde` (all guidance off by default).

    ``zeta_obs`` is one weight for every channel or one per channel (``(zeta_a, zeta_u)``);
    ``zeta_pde`` weights ``grad Rn`` in the late phase ``i > pde_start * N``, where the
    observation weights are scaled by ``late_obs_factor``. Per-PDE defaults:
    :func:`diffusionpde_settings`.
    """

    num_steps: int = 2000
    zeta_obs: float | tuple[float, ...] = 0.0
    zeta_pde: float = 0.0
    pde_start: float = 0.8
    late_obs_factor: float = 0.1
    obs_space: Literal["physical", "normalised"] = "physical"
    pde_loss: Literal["rn", "norm"] = "rn"

    def __post_init__(self) -> None:
        super().__post_init__()
        zeta = self.zeta_obs if isinstance(self.zeta_obs, tuple) else (self.zeta_obs,)
        check_nonnegative(zeta_pde=self.zeta_pde, late_obs_factor=self.late_obs_factor)
        check_nonnegative(**{f"zeta_obs[{k}]": float(z) for k, z in enumerate(zeta)})
        check_fraction("pde_start", self.pde_start)
        if self.obs_space not in ("physical", "normalised"):
            raise PiddmError(f"obs_space must be 'physical' or 'normalised', got {self.obs_space}")
        if self.pde_loss not in ("rn", "norm"):
            raise PiddmError(f"pde_loss must be 'rn' or 'norm', got {self.pde_loss}")

    def channel_weights(self, num_channels: int) -> tuple[float, ...]:
        """``zeta_obs`` as one weight per channel."""
        if not isinstance(self.zeta_obs, tuple):
            return (float(self.zeta_obs),) * num_channels
        if len(self.zeta_obs) != num_channels:
            raise PiddmError(
                f"zeta_obs has {len(self.zeta_obs)} weights for {num_channels} channel(s)"
            )
        return tuple(float(z) for z in self.zeta_obs)


#: The PDE step as a fraction of the residual's stability limit ``1 / L`` (see
#: :func:`diffusionpde_settings`), every PDE alike. The published observation weights (the
#: reference configs ``configs/<pde>-{forward,inverse}.yaml``: coefficient weight from the
#: forward, solution weight from the inverse problem, tuned at 128^2 with 500 observed points per
#: field) are each PDE's ``diffusionpde_zeta_obs`` (:class:`piddm.pdes.PDE`).
DIFFUSIONPDE_PDE_FRACTION = 0.25
#: The registered PDEs' published defaults at import, ``{name: {"zeta_obs", "pde_fraction"}}``
#: (a listing: :func:`diffusionpde_settings` reads the PDE's own attribute, so PDEs
#: registered later count too).
DIFFUSIONPDE_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {"zeta_obs": cls.diffusionpde_zeta_obs, "pde_fraction": DIFFUSIONPDE_PDE_FRACTION}
    for name, cls in PDE_REGISTRY.items()
    if cls.diffusionpde_zeta_obs is not None
}
#: Resolution at which the published observation weights were tuned.
DIFFUSIONPDE_REFERENCE_RESOLUTION = 128


def diffusionpde_settings(pde: PDE, **overrides: Any) -> DiffusionPDESettings:
    """Per-PDE default settings at ``pde.resolution``; ``overrides`` replace any field.

    * ``zeta_obs``: the published weights times ``S / 128``. The gradient of a norm has unit
      size, spread over the ``n ~ 3% S^2`` observed points; the factor keeps the step per
      observed point at its value in the paper's setting.
    * ``zeta_pde``: ``pde_fraction / L``, ``L = residual_stiffness(pde)``: our ``Rn`` is a mean
      *square* (the reference code uses a norm), so the published ``zeta_pde`` do not transfer;
      a fixed fraction of the explicit-step stability limit does, across PDEs and resolutions.

    Raises :class:`PiddmError` for a PDE without published weights unless ``zeta_obs`` is given.
    """
    published = pde.diffusionpde_zeta_obs
    if published is None and "zeta_obs" not in overrides:
        raise PiddmError(
            f"no DiffusionPDE defaults for PDE '{pde.name}'; pass zeta_obs (and zeta_pde)"
        )
    values: dict[str, Any] = {}
    if published is not None:
        factor = pde.resolution / DIFFUSIONPDE_REFERENCE_RESOLUTION
        values["zeta_obs"] = tuple(z * factor for z in published)
    if "zeta_pde" not in overrides:
        values["zeta_pde"] = DIFFUSIONPDE_PDE_FRACTION / residual_stiffness(pde)
    values.update(overrides)
    return DiffusionPDESettings(**values)


def diffusionpde_nfe(settings: DiffusionPDESettings) -> int:
    """Network evaluations per sample: ``2 N - 1`` (Heun, last step Euler)."""
    return count_nfe(settings.num_steps, "heun")


def sample_diffusionpde(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    callback: Callback | None = None,
    pde: PDE,
    mask: torch.Tensor | None = None,
    obs: torch.Tensor | None = None,
    settings: DiffusionPDESettings | None = None,
) -> torch.Tensor:
    """DiffusionPDE guided Heun sampling (Huang et al. 2024); see the module docstring.

    ``x`` ``(B, C, S, S)`` is ``sigmas[0] * noise``; ``mask`` (bool) / ``obs`` (normalised) are
    optional observations broadcastable to ``x``; without them only the PDE term guides
    (generation). Returns the sample ``(B, C, S, S)`` in normalised space, detached when any
    guidance ran. ``callback`` gets ``dict(i, x, sigma, denoised)`` at the start of each step.
    """
    settings = settings or DiffusionPDESettings()
    grid, counter = prepare_sampling(denoiser, x, sigmas, pde)
    num_steps, callback = len(grid) - 1, detached(callback)
    ob = observations(pde, x, mask, obs)
    zeta_obs = settings.channel_weights(pde.num_channels)
    obs_on = ob is not None and ob.any and any(z > 0 for z in zeta_obs)
    weights = torch.tensor(zeta_obs, dtype=x.dtype, device=x.device)
    pde_loss = physical_residual if settings.pde_loss == "rn" else residual_norm

    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=False)):
        late = is_late(i, num_steps, settings.pde_start)
        obs_weight = (settings.late_obs_factor if late else 1.0) if obs_on else 0.0
        pde_weight = settings.zeta_pde if late else 0.0
        if obs_weight == 0.0 and pde_weight == 0.0:
            # Unguided: plain Heun, no autograd.
            x, _ = heun_step(counter, x, t_cur, t_next, i, callback)
            continue
        with torch.enable_grad():
            x_cur = x.detach().requires_grad_(True)
            x_next, x0hat = heun_step(counter, x_cur, t_cur, t_next, i, callback)
            loss = x0hat.new_zeros(())
            if obs_weight != 0.0:
                assert ob is not None
                norms = channel_misfit_norms(pde, x0hat, ob, settings.obs_space)  # (B, C)
                loss = loss + obs_weight * (norms * weights).sum()
            if pde_weight != 0.0:
                loss = loss + pde_weight * pde_loss(pde, x0hat).sum()
            (grad,) = torch.autograd.grad(loss, x_cur)
        # Guidance.
        x = (x_next - grad).detach()
    return x
