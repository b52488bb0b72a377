"""Small pieces shared by the baselines: an NFE counter, observation checks, misfits and the
stiffness of the residual (which sets stable step sizes for residual-gradient steps).

Conventions of :mod:`piddm.baselines`: fields ``x`` are ``(B, C, S, S)`` in the PDE's
*normalised* space; ``pde.normalisation.denormalise(x)`` gives physical units, in which the
residual ``Rn = pde.normalised_residual`` is computed. Observations are a bool ``mask``
(True where observed) and values ``obs``, both broadcastable to ``x`` (normalised space).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from piddm.diffusion.samplers import Callback, noise_grid
from piddm.diffusion.schedules import RHO, SIGMA_MAX, SIGMA_MIN, STEPS, karras_sigmas
from piddm.diffusion.utils import Denoiser
from piddm.errors import PiddmError
from piddm.pdes import PDE


# ----------------------------------------------------------------------------- NFE counter
class CountingDenoiser:
    """Wrap a denoiser ``D(x, sigma)`` and count its evaluations.

    ``calls`` counts forward calls; one call evaluates the whole batch, so it is the number of
    network evaluations (NFE) *per sample*. ``samples`` adds up the batch sizes. Backward
    passes are not counted (guidance and D-Flow back-propagate through some evaluations, at
    roughly twice the cost of a forward each). Wrapping a :class:`CountingDenoiser` again is
    avoided by :func:`counting`.
    """

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self.calls = 0
        self.samples = 0

    @property
    def nfe(self) -> int:
        """Network evaluations per sample so far (``calls``)."""
        return self.calls

    def reset(self) -> None:
        self.calls = 0
        self.samples = 0

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.samples += int(x.shape[0])
        return self.denoiser(x, sigma)


def counting(denoiser: Denoiser) -> CountingDenoiser:
    """``denoiser`` itself if it already counts, else a new :class:`CountingDenoiser`.

    The samplers call this, so a caller that passes a :class:`CountingDenoiser` reads the
    NFE of the run from it afterwards.
    """
    return denoiser if isinstance(denoiser, CountingDenoiser) else CountingDenoiser(denoiser)


# ----------------------------------------------------------------------------- set-up
def prepare_sampling(
    denoiser: Denoiser, x: torch.Tensor, sigmas: torch.Tensor, pde: PDE
) -> tuple[list[float], CountingDenoiser]:
    """The checks and set-up every baseline sampler starts with, in this order: validate the
    grid (:func:`piddm.diffusion.noise_grid`), check ``x`` against ``pde``
    (``pde.check_fields``), wrap the denoiser (:func:`counting`). Returns ``(grid, counter)``;
    raises :class:`PiddmError`."""
    try:
        grid = noise_grid(sigmas)
    except ValueError as err:
        raise PiddmError(str(err)) from None
    pde.check_fields(x)
    return grid, counting(denoiser)


def detached(callback: Callback | None) -> Callback | None:
    """``callback`` fed detached tensors: a guided step's ``x`` and ``D(x; t)`` carry the
    graph of the guidance gradient, which a callback that keeps them must not hold on to."""
    if callback is None:
        return None

    def call(info: dict[str, Any]) -> None:
        callback({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in info.items()})

    return call


# ----------------------------------------------------------------------------- settings base
@dataclass(frozen=True)
class GridSettings:
    """The Karras noise grid a baseline runs on (``num_steps`` steps, ending at 0).

    Samplers run on the ``sigmas`` they are given; :meth:`sigmas` builds the grid these
    settings describe, and the NFE formulas assume it.
    """

    num_steps: int = STEPS
    sigma_min: float = SIGMA_MIN
    sigma_max: float = SIGMA_MAX
    rho: float = RHO

    def __post_init__(self) -> None:
        if int(self.num_steps) != self.num_steps or self.num_steps < 1:
            raise PiddmError(f"num_steps must be an integer >= 1, got {self.num_steps}")
        if not 0 < self.sigma_min <= self.sigma_max:
            raise PiddmError(
                f"need 0 < sigma_min <= sigma_max, got {self.sigma_min}, {self.sigma_max}"
            )
        if not self.rho > 0:
            raise PiddmError(f"rho must be positive, got {self.rho}")

    def sigmas(
        self, *, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """``karras_sigmas(num_steps, sigma_min, sigma_max, rho)``: ``(num_steps + 1,)``."""
        return karras_sigmas(
            self.num_steps, self.sigma_min, self.sigma_max, self.rho, device=device, dtype=dtype
        )


def check_nonnegative(**values: float) -> None:
    """Raise :class:`PiddmError` unless every value is finite and ``>= 0``."""
    for name, value in values.items():
        if not (math.isfinite(value) and value >= 0):
            raise PiddmError(f"{name} must be a finite number >= 0, got {value}")


def check_fraction(name: str, value: float) -> None:
    """Raise :class:`PiddmError` unless ``0 <= value <= 1``."""
    if not 0.0 <= value <= 1.0:
        raise PiddmError(f"{name} must be in [0, 1], got {value}")


def is_late(i: int, num_steps: int, start_fraction: float) -> bool:
    """Step ``i`` (0-based) of ``num_steps`` is in the late phase: ``i > start_fraction * N``.

    DiffusionPDE's convention (its code switches the PDE term on when ``i > 0.8 N``).
    """
    return i > start_fraction * num_steps


# ----------------------------------------------------------------------------- observations
@dataclass(frozen=True)
class Observations:
    """Validated observations broadcast to the batch: ``mask`` bool and ``values``.

    Both are ``(B, C, S, S)``; ``values`` is in ``x``'s dtype (normalised space) and holds
    zeros where ``mask`` is False.
    """

    mask: torch.Tensor
    values: torch.Tensor
    counts: torch.Tensor = field(repr=False)  # (B,) observed entries per sample

    @property
    def any(self) -> bool:
        return bool(self.mask.any())


def observations(
    pde: PDE, x: torch.Tensor, mask: torch.Tensor | None, obs: torch.Tensor | None
) -> Observations | None:
    """Check ``mask``/``obs`` against ``x`` ``(B, C, S, S)`` and broadcast them; ``None`` if
    no observations were given. Raises :class:`PiddmError` on inconsistent input."""
    if mask is None and obs is None:
        return None
    if mask is None or obs is None:
        raise PiddmError("observations need both 'mask' and 'obs' (or neither)")
    pde.check_fields(x)
    mask = torch.as_tensor(mask, device=x.device)
    if mask.dtype != torch.bool:
        raise PiddmError(f"mask must be a bool tensor (True where observed), got {mask.dtype}")
    obs = torch.as_tensor(obs, device=x.device).to(x.dtype)
    try:
        mask = mask.expand(x.shape)
        obs = obs.expand(x.shape)
    except RuntimeError as err:
        raise PiddmError(
            f"mask {tuple(mask.shape)} and obs {tuple(obs.shape)} must broadcast to the "
            f"fields' shape {tuple(x.shape)}"
        ) from err
    values = torch.where(mask, obs, torch.zeros_like(obs))
    if not torch.isfinite(values).all():
        raise PiddmError("observed values must be finite")
    counts = mask.flatten(1).sum(1)
    return Observations(mask=mask, values=values, counts=counts)


def channel_misfit_norms(
    pde: PDE, x: torch.Tensor, ob: Observations, space: Literal["physical", "normalised"]
) -> torch.Tensor:
    """``|M_c (x_c - x'_c)|_2`` per sample and channel, ``(B, C)`` (norm, not squared).

    ``space="physical"`` measures it after de-normalising both (as DiffusionPDE's code does),
    ``"normalised"`` in the model's space.
    """
    diff = x - ob.values
    if space == "physical":
        scale = torch.tensor(pde.normalisation.scale, dtype=x.dtype, device=x.device)
        diff = diff * scale.view(1, -1, 1, 1)  # denormalise(x) - denormalise(x') exactly
    diff = torch.where(ob.mask, diff, torch.zeros_like(diff))
    return torch.linalg.vector_norm(diff.flatten(2), dim=2)


def mean_squared_misfit(x: torch.Tensor, ob: Observations) -> torch.Tensor:
    """``|M (x - x')|^2 / |M|`` per sample, ``(B,)`` (normalised space; 0 if nothing observed)."""
    diff = torch.where(ob.mask, x - ob.values, torch.zeros_like(x))
    return diff.square().flatten(1).sum(1) / ob.counts.clamp_min(1).to(x.dtype)


def physical_residual(pde: PDE, x: torch.Tensor) -> torch.Tensor:
    """``Rn(denormalise(x))``, ``(B,)``: the normalised mean squared residual
    (docs/method.md, "Residual and Rn")."""
    return pde.normalised_residual(pde.normalisation.denormalise(x))


def residual_norm(pde: PDE, x: torch.Tensor) -> torch.Tensor:
    """``|R(denormalise(x))|_2 / n_eq`` per sample, ``(B,)``: DiffusionPDE's PDE loss (the norm
    of the residual over the equation nodes, divided by their number)."""
    r = pde.residual(pde.normalisation.denormalise(x))
    eq = pde.equation_mask(x.device)
    r = torch.where(eq, r, torch.zeros_like(r))
    return torch.linalg.vector_norm(r.flatten(1), dim=1) / eq.sum().to(x.dtype)


# ----------------------------------------------------------------------------- stiffness
def residual_stiffness(
    pde: PDE, x: torch.Tensor | None = None, *, iters: int = 30, seed: int = 0
) -> float:
    """Largest eigenvalue ``L`` of the Hessian of ``x -> Rn(denormalise(x))`` (normalised space).

    Explicit gradient steps ``x <- x - eta grad Rn`` are stable only for ``eta < 2 / L``, and
    ``L`` grows like ``1/h**2`` (e.g. about 2.3e3 for Darcy, 4.6e2 for Poisson at 32^2), so the
    step sizes of residual guidance are set as fractions of ``1 / L``. Power iteration with
    Hessian-vector products (double back-propagation, no network), at ``x`` ``(B, C, S, S)``
    or, by default, at the normalised solver sample ``pde.generate(0)``; max over the batch.
    """
    if x is None:
        return _default_stiffness(pde)
    gen = torch.Generator().manual_seed(seed)
    x = x.detach()
    v = torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
    lam = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for _ in range(iters):
        with torch.enable_grad():
            xr = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(physical_residual(pde, xr).sum(), xr, create_graph=True)
            (hv,) = torch.autograd.grad((grad * v).sum(), xr)
        lam = (hv * v).flatten(1).sum(1) / v.flatten(1).square().sum(1)
        norm = hv.flatten(1).norm(dim=1).clamp_min(1e-30)
        v = hv / norm.view(-1, *([1] * (x.ndim - 1)))
    return float(lam.abs().max())


_STIFFNESS_CACHE: dict[tuple[Any, ...], float] = {}


def _default_stiffness(pde: PDE) -> float:
    """:func:`residual_stiffness` at the normalised ``pde.generate(0)``, cached per PDE setup."""
    key = (type(pde), pde.resolution, tuple(sorted(pde.params.items())))
    if key not in _STIFFNESS_CACHE:
        field0 = torch.from_numpy(np.asarray(pde.generate(0), dtype=np.float64))[None]
        x0 = pde.normalisation.normalise(field0)
        _STIFFNESS_CACHE[key] = residual_stiffness(pde, x0)
    return _STIFFNESS_CACHE[key]
