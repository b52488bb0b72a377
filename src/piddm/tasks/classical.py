"""Classical references of the tasks: PDE-constrained MAP and the Bayes floor
(docs/concepts.md, "Classical references: MAP and Bayes floor").

Neither uses a network. Both need what PIDDM does not: the data's prior in closed form (the
GRF of the coefficient) and, for the MAP, a solver with an adjoint.

* :func:`map_estimate`, the MAP, direct optimisation in data space through the solver.
  Darcy: the coefficient is parametrised by the white noise ``xi`` of its own prior,
  ``g = Phi xi`` (:func:`piddm.pdes.grf.grf2d_modes`), relaxed to
  ``a_t(xi) = a_low + (a_high - a_low) sigmoid(g / (t std(g)))`` with the temperature ``t``
  annealed geometrically from ``t0`` to ``t1``, and

      J(xi) = 1/2 sum_{c, o} ((x_c(xi)_o - y_{c,o}) / (sigma rms(y_c)))^2 + 1/2 |xi|^2,
      x_a(xi) = a_t(xi),  x_u(xi) = u(a_t(xi))   (the package's solver, adjoint gradient)

  summed over the observed nodes ``o`` of each observed channel ``c``, is minimised by Adam
  (:func:`piddm.tasks.darcy_adjoint.darcy_map_phase`). The estimate's coefficient is
  ``a_high`` where ``g >= 0``, its solution ``solve(a_hat)``. Poisson, Helmholtz: the
  posterior is Gaussian, so its MAP is its mean, computed exactly
  (:func:`piddm.tasks.gaussian_posterior.gaussian_posterior`).
* :func:`floor_estimate`, the Bayes floor, the estimate with the least expected squared
  error given the observations. Poisson, Helmholtz: the exact posterior mean. Darcy forward:
  the posterior of ``xi`` given the observed phases (a standard normal restricted to a cone)
  sampled by elliptical slice sampling, each draw solved; the posterior mean of ``u`` and the
  posterior majority phase of ``a``.

Every estimate is ``(N, C, S, S)`` float64 on the observations' device, equal to them at
observed nodes, and deterministic given ``seed``: instance ``i`` draws from
``np.random.default_rng([seed, i])`` (MAP) or ``[seed, i, chain]`` (floor), so it does not
depend on the other instances.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.pdes.darcy import Darcy
from piddm.tasks.darcy_adjoint import (
    MapConfig,
    PhaseData,
    darcy_forward_posterior,
    darcy_map_phase,
    grf_basis,
)
from piddm.tasks.gaussian_posterior import MAX_RESOLUTION, gaussian_posterior
from piddm.tasks.masks import check_task, validate_mask, validate_observations

#: Slice steps discarded before the floor's draws, and steps between kept draws (the
#: settings of benchmarks/results/darcy-32-forward-floor.json).
FLOOR_BURN_IN = 1000
FLOOR_THIN = 20
#: Independent chains of the Darcy forward floor (their disagreement is its Monte Carlo error).
FLOOR_CHAINS = 2


def _gaussian_supported(pde: PDE) -> tuple[bool, str | None]:
    if pde.resolution > MAX_RESOLUTION:
        return False, (
            f"the exact Gaussian posterior is dense: resolution at most {MAX_RESOLUTION}, "
            f"got {pde.resolution}"
        )
    return True, None


def _supported(
    pde: PDE, task: str, darcy_note: str | None, other_note: str
) -> tuple[bool, str | None]:
    """Support of an estimator: exact on linear-Gaussian PDEs (:func:`_gaussian_supported`);
    on Darcy unless ``darcy_note`` says why not; elsewhere never (``other_note``)."""
    check_task(task)
    if pde.linear_gaussian:
        return _gaussian_supported(pde)
    note = darcy_note if isinstance(pde, Darcy) else other_note
    return note is None, note


def map_supports(pde: PDE, task: str) -> tuple[bool, str | None]:
    """``(True, None)`` if :func:`map_estimate` handles ``task`` on ``pde``, else ``(False,
    note)`` with a one-line reason."""
    other = f"no MAP for {pde.name} in the package"
    if pde.name == "burgers":
        other = (
            "no MAP for burgers in the package: its linearised adjoint exists "
            "(BurgersOperator.solve_transpose) but no initial-condition fit uses it"
        )
    return _supported(pde, task, None, other)


def floor_supports(pde: PDE, task: str) -> tuple[bool, str | None]:
    """``(True, None)`` if :func:`floor_estimate` handles ``task`` on ``pde``, else ``(False,
    note)`` with a one-line reason."""
    darcy = None
    if task != "forward":
        darcy = (
            f"no Bayes floor of the darcy {task} problem in the package: the posterior given "
            f"values of u is not sampled (the MAP is the reference)"
        )
    other = f"no Bayes floor for {pde.name} in the package (no posterior sampler)"
    return _supported(pde, task, darcy, other)


def _inputs(
    pde: PDE, obs: torch.Tensor, mask: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """Validated observations and mask as float64 / bool numpy ``(N, C, S, S)`` (zeros at
    unobserved nodes) and the mask as a tensor on ``obs``' device."""
    mask_t = validate_mask(mask, pde)
    validate_observations(obs, mask_t, pde)
    mask_t = mask_t.expand(obs.shape).to(obs.device)
    mask_np = mask_t.cpu().numpy()
    obs_np = np.where(mask_np, obs.detach().cpu().double().numpy(), 0.0)
    return obs_np, mask_np, mask_t


def _finish(estimate: np.ndarray, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The estimate as a float64 tensor on ``obs``' device, equal to ``obs`` where observed."""
    out = torch.from_numpy(np.ascontiguousarray(estimate)).to(obs.device)
    return torch.where(mask, obs.detach().to(torch.float64), out)


def map_estimate(
    pde: PDE,
    obs: torch.Tensor,
    mask: torch.Tensor,
    task: str,
    config: MapConfig | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """The PDE-constrained MAP estimate ``(N, C, S, S)`` float64 of ``obs`` ``(N, C, S, S)``
    (physical units, read at ``mask`` only) for ``task`` (module doc).

    Darcy: the relaxed-threshold fit of the GRF's white noise by Adam through the solver and
    its adjoint, misfit on every observed channel (``forward``: ``a``, ``inverse``: ``u``,
    ``reconstruct``: both); ``a_hat`` its thresholded field, ``u = solve(a_hat)``. Poisson
    and Helmholtz (linear-Gaussian): the MAP of a Gaussian posterior is its mean, returned
    exactly; ``config`` and ``seed`` do not enter. Raises :class:`PiddmError` where
    :func:`map_supports` says no."""
    ok, note = map_supports(pde, task)
    if not ok:
        raise PiddmError(f"map_estimate: {note}")
    config = config or MapConfig()
    obs_np, mask_np, mask_t = _inputs(pde, obs, mask)
    if pde.linear_gaussian:
        return _finish(gaussian_posterior(pde, obs_np, mask_np)[0], obs, mask_t)
    size = pde.resolution
    basis, std_g = grf_basis(pde)
    low, high = pde.params["a_low"], pde.params["a_high"]
    estimate = np.empty_like(obs_np)
    bar = tqdm(total=len(obs_np) * config.steps, desc="MAP", unit="step", disable=not progress)
    with bar:
        for i in range(len(obs_np)):
            index_a = np.flatnonzero(mask_np[i, 0].ravel())
            index_u = np.flatnonzero(mask_np[i, 1].ravel())
            data = PhaseData(
                index_a=torch.from_numpy(index_a),
                y_a=torch.from_numpy(obs_np[i, 0].ravel()[index_a]),
                index_u=torch.from_numpy(index_u),
                y_u=torch.from_numpy(obs_np[i, 1].ravel()[index_u]),
            )
            rng = np.random.default_rng([seed, i])
            phase, _ = darcy_map_phase(pde, data, basis, std_g, config, rng, bar.update)
            estimate[i] = pde.solve(np.where(phase, high, low))
    assert estimate.shape[-1] == size
    return _finish(estimate, obs, mask_t)


def floor_estimate(
    pde: PDE,
    obs: torch.Tensor,
    mask: torch.Tensor,
    task: str,
    *,
    seed: int = 0,
    samples: int = 100,
    progress: bool = False,
) -> torch.Tensor:
    """The Bayes-floor estimate ``(N, C, S, S)`` float64 of ``obs`` at ``mask`` for ``task``
    (module doc): the exact posterior mean (Poisson, Helmholtz; ``seed`` and ``samples`` do
    not enter), or for the Darcy forward problem the posterior mean of ``u`` and majority
    phase of ``a`` over :data:`FLOOR_CHAINS` slice-sampling chains of ``samples`` draws each.
    A finite-sample mean is a noisier estimator, so its error is an upper estimate of the
    floor. Raises :class:`PiddmError` where :func:`floor_supports` says no."""
    ok, note = floor_supports(pde, task)
    if not ok:
        raise PiddmError(f"floor_estimate: {note}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise PiddmError(f"floor samples must be a positive integer, got {samples!r}")
    obs_np, mask_np, mask_t = _inputs(pde, obs, mask)
    if pde.linear_gaussian:
        return _finish(gaussian_posterior(pde, obs_np, mask_np)[0], obs, mask_t)
    posterior = darcy_forward_posterior(
        pde,
        obs_np[:, 0],
        mask_np[:, 0],
        seed=seed,
        samples=samples,
        chains=FLOOR_CHAINS,
        burn_in=FLOOR_BURN_IN,
        thin=FLOOR_THIN,
        progress=progress,
    )
    low, high = pde.params["a_low"], pde.params["a_high"]
    majority = posterior.high_probability.mean(axis=0) >= 0.5
    estimate = np.stack([np.where(majority, high, low), posterior.mean_u.mean(axis=0)], axis=1)
    return _finish(estimate, obs, mask_t)


__all__ = [
    "FLOOR_BURN_IN",
    "FLOOR_CHAINS",
    "FLOOR_THIN",
    "MapConfig",
    "floor_estimate",
    "floor_supports",
    "map_estimate",
    "map_supports",
]
