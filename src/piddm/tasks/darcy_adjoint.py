"""The Darcy solver as a differentiable function, and the Darcy pieces of the classical
references (:mod:`piddm.tasks.classical`).

* :class:`DarcySolve`: ``u = A(a)^-1 f`` for a batch of coefficients with the adjoint gradient.
  ``A(a) = -div(a grad .)`` on the interior (:func:`piddm.pdes.stencil.neg_div_a_grad_matrix`,
  the package's own solver, factorised by SuperLU) is symmetric, so for a loss ``J(u)``

      lam = A(a)^-1 dJ/du,      dJ/da = -d/da [lam^T A(a) u]   (u held fixed),

  one extra solve with the same factorisation, and the bilinear form comes from the torch
  stencil :func:`~piddm.pdes.stencil.div_a_grad` (no second copy of the discretisation).
* :class:`MapConfig` and :func:`darcy_map_phase`: PDE-constrained MAP of the thresholded GRF
  (module doc of :mod:`~piddm.tasks.classical`).
* :func:`darcy_forward_posterior`: elliptical slice sampling (Murray, Adams & MacKay 2010) of
  the GRF's white noise given the observed phases, vectorised over instances and chains.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.pdes.elliptic import factorise
from piddm.pdes.grf import grf2d_modes
from piddm.pdes.stencil import div_a_grad, neg_div_a_grad_matrix


@dataclass(frozen=True)
class MapConfig:
    """Settings of the Darcy MAP (module doc). The defaults are the setting with the lowest
    error rate on 20 training instances of the 32^2 inverse problem
    (benchmarks/results/darcy-32-inverse-map-sweep.json: 7.2 % against 7.7 % at 300 steps)."""

    sigma: float = 0.01  # observation scale, relative to the rms of each channel's observations
    t0: float = 1.0  # initial temperature of the relaxed threshold (x the std of g)
    t1: float = 0.05  # final temperature
    steps: int = 600  # Adam steps per start
    lr: float = 0.05  # Adam learning rate on the white noise
    starts: int = 4  # optimisations per instance; the lowest final objective wins
    candidates: int = 64  # prior draws screened for the starts (the best `starts` by J at t0)

    def __post_init__(self) -> None:
        for name in ("sigma", "t0", "t1", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise PiddmError(f"MAP setting {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise PiddmError(f"MAP setting {name} must be positive and finite, got {value!r}")
        for name in ("steps", "starts", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PiddmError(f"MAP setting {name} must be a positive integer, got {value!r}")
        if self.candidates < self.starts:
            raise PiddmError(
                f"MAP setting candidates ({self.candidates}) must be at least starts "
                f"({self.starts})"
            )


class DarcySolve(torch.autograd.Function):
    """``u = A(a)^-1 f``: ``a`` ``(B, S, S)`` float64 on the CPU -> ``u`` ``(B, S, S)`` with
    ``u = 0`` on the boundary, and the adjoint gradient (module doc). A hand-written Function:
    scipy's sparse LU has no autograd."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, forcing: float, h: float) -> torch.Tensor:  # type: ignore[override]
        size = a.shape[-1]
        rhs = np.full((size - 2) ** 2, forcing)
        factors = [factorise(neg_div_a_grad_matrix(c, h)) for c in a.detach().numpy()]
        u = torch.zeros_like(a)
        interior = np.stack([factor.solve(rhs) for factor in factors])
        u[:, 1:-1, 1:-1] = torch.from_numpy(interior.reshape(len(a), size - 2, size - 2))
        ctx.factors, ctx.h = factors, h
        ctx.save_for_backward(a, u)
        return u

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):  # type: ignore[override]
        a, u = ctx.saved_tensors
        size = a.shape[-1]
        flat = grad_u[:, 1:-1, 1:-1].detach().reshape(len(a), -1).numpy()
        lam = np.stack([f.solve(g.copy()) for f, g in zip(ctx.factors, flat, strict=True)])
        lam_t = torch.from_numpy(lam.reshape(len(a), size - 2, size - 2))
        with torch.enable_grad():
            a_ = a.detach().requires_grad_(True)
            bilinear = (lam_t * -div_a_grad(a_, u, ctx.h)).sum()
            (grad_a,) = torch.autograd.grad(bilinear, a_)
        return -grad_a, None, None


def darcy_solve(pde: PDE, a: torch.Tensor) -> torch.Tensor:
    """:class:`DarcySolve` with ``pde``'s forcing and spacing: ``(B, S, S) -> (B, S, S)``."""
    return DarcySolve.apply(a, pde.params["forcing"], pde.h)


def adjoint_gap(pde: PDE, rng: np.random.Generator, eps: float = 1e-6) -> float:
    """Relative gap between the adjoint gradient of ``sum(w * u(a))`` along a random direction
    and its central finite difference, at a random coefficient in ``[a_low, a_high]``."""
    low, high = pde.params["a_low"], pde.params["a_high"]
    shape = (2, pde.resolution, pde.resolution)
    a = torch.from_numpy(low + (high - low) * rng.random(shape)).requires_grad_(True)
    weights = torch.from_numpy(rng.standard_normal(shape))
    direction = torch.from_numpy(rng.standard_normal(shape))
    (darcy_solve(pde, a) * weights).sum().backward()
    assert a.grad is not None
    with torch.no_grad():
        plus = (darcy_solve(pde, a + eps * direction) * weights).sum()
        minus = (darcy_solve(pde, a - eps * direction) * weights).sum()
    numeric = float((plus - minus) / (2 * eps))
    analytic = float((a.grad * direction).sum())
    return abs(numeric - analytic) / abs(numeric)


def grf_basis(pde: PDE) -> tuple[torch.Tensor, float]:
    """``(B, std_g)``: the GRF's white-noise map ``g = B xi`` as ``(S^2 nodes, S^2 modes)``
    float64 and the pointwise std of ``g`` averaged over the nodes."""
    size = pde.resolution
    modes = grf2d_modes(size, pde.grf_alpha, pde.grf_tau)
    basis = torch.from_numpy(modes.reshape(size * size, size * size).T.copy())
    return basis, float(torch.sqrt((basis**2).sum(dim=1)).mean())


@dataclass(frozen=True)
class PhaseData:
    """The observations of one Darcy instance: flat node indices and values per channel
    (``index_a`` ``(K_a,)``, ``y_a`` ``(K_a,)``; ``index_u``, ``y_u`` likewise)."""

    index_a: torch.Tensor
    y_a: torch.Tensor
    index_u: torch.Tensor
    y_u: torch.Tensor


def darcy_map_phase(
    pde: PDE,
    data: PhaseData,
    basis: torch.Tensor,
    std_g: float,
    config: MapConfig,
    rng: np.random.Generator,
    on_step: Callable[[], None] | None = None,
) -> tuple[np.ndarray, float]:
    """The MAP high phase ``g >= 0`` ``(S, S)`` bool of one instance and its lowest objective.

    The ``config.candidates`` prior draws of ``xi`` come from ``rng``; the best ``starts`` by
    their objective at ``t0`` are optimised together by Adam (one batch: Adam is elementwise,
    so this equals separate runs); the lowest final objective at ``t1`` wins."""
    sigma, t0, t1, starts = config.sigma, config.t0, config.t1, config.starts
    size = pde.resolution
    low, high = pde.params["a_low"], pde.params["a_high"]
    scale_a = sigma * float(torch.sqrt((data.y_a**2).mean())) if len(data.y_a) else 1.0
    scale_u = sigma * float(torch.sqrt((data.y_u**2).mean())) if len(data.y_u) else 1.0
    scale_u = scale_u if scale_u > 0 else sigma  # only boundary values of u observed

    def objective(xi: torch.Tensor, t: float) -> torch.Tensor:
        """``J`` of each row of ``xi`` ``(B, S^2)``: ``(B,)``."""
        g = xi @ basis.T
        a = low + (high - low) * torch.sigmoid(g / (t * std_g))
        value = 0.5 * (xi**2).sum(dim=1)
        if len(data.index_a):
            value = value + 0.5 * (((a[:, data.index_a] - data.y_a) / scale_a) ** 2).sum(dim=1)
        if len(data.index_u):
            u = darcy_solve(pde, a.reshape(-1, size, size)).reshape(len(xi), -1)
            value = value + 0.5 * (((u[:, data.index_u] - data.y_u) / scale_u) ** 2).sum(dim=1)
        return value

    draws = torch.from_numpy(rng.standard_normal((config.candidates, basis.shape[1])))
    # Screening: the objective at t0 of every draw (in chunks: one solve per draw).
    with torch.no_grad():
        first = torch.cat([objective(chunk, t0) for chunk in draws.split(16)])
    xi = draws[torch.argsort(first)[:starts]].clone().requires_grad_(True)
    optimiser = torch.optim.Adam([xi], lr=config.lr)
    steps = config.steps
    for step in range(steps):
        # Geometric annealing of the temperature from t0 to t1.
        t = t0 * (t1 / t0) ** (step / max(1, steps - 1))
        optimiser.zero_grad()
        objective(xi, t).sum().backward()
        optimiser.step()
        if on_step is not None:
            on_step()
    with torch.no_grad():
        final = objective(xi, t1)
        best = int(torch.argmin(final))
        g = (basis @ xi[best]).reshape(size, size).numpy()
    return g >= 0.0, float(final[best])


@dataclass(frozen=True)
class ForwardPosterior:
    """Per-chain posterior summaries of the Darcy forward problem, each ``(chains, N, S, S)``:
    the mean of ``u``, the mean of ``a`` and the probability of the high phase."""

    mean_u: np.ndarray
    mean_a: np.ndarray
    high_probability: np.ndarray


def feasible_start(rows: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """A white-noise vector whose field has the observed signs: the minimum-norm ``xi`` with
    ``rows @ xi = signs * scale`` (scale = the field's typical value; zero rows are padding)."""
    norms = np.sqrt((rows**2).sum(axis=1))
    scale = norms[norms > 0].mean() if np.any(norms > 0) else 1.0
    return np.linalg.lstsq(rows, signs * scale, rcond=None)[0]


def elliptical_slice(
    rows: np.ndarray,
    signs: np.ndarray,
    rngs: list[np.random.Generator],
    burn_in: int,
    draws: int,
    thin: int,
    on_step: Callable[[], None] | None = None,
) -> np.ndarray:
    """Samples ``(B, draws, d)`` of ``xi ~ N(0, I)`` restricted to ``sign(rows @ xi) ==
    signs``, one chain per row of ``rows`` ``(B, K, d)`` / ``signs`` ``(B, K)``, each chain
    drawing from its own generator (so a chain does not depend on the others)."""
    chains, dim = rows.shape[0], rows.shape[2]
    xi = np.stack([feasible_start(r, s) for r, s in zip(rows, signs, strict=True)])
    if not np.all(np.sign(np.matmul(rows, xi[:, :, None])[..., 0]) == signs):
        raise RuntimeError("no white noise found with the observed signs")
    out = np.empty((chains, draws, dim))
    for step in range(burn_in + draws * thin):
        # Ellipse through xi and a prior draw nu; the observed values of g along it are
        # cos(theta) g_o(xi) + sin(theta) g_o(nu), so each proposal costs no matrix product.
        nu = np.stack([rng.standard_normal(dim) for rng in rngs])
        g_xi = np.matmul(rows, xi[:, :, None])[..., 0]
        g_nu = np.matmul(rows, nu[:, :, None])[..., 0]
        theta = np.array([rng.uniform(0.0, 2.0 * np.pi) for rng in rngs])
        lo, hi = theta - 2.0 * np.pi, theta.copy()
        pending = np.arange(chains)
        while pending.size:
            # Accept where every sign holds; shrink the bracket towards 0 elsewhere.
            t = theta[pending, None]
            g = g_xi[pending] * np.cos(t) + g_nu[pending] * np.sin(t)
            ok = np.all(np.sign(g) == signs[pending], axis=1)
            done = pending[ok]
            xi[done] = xi[done] * np.cos(theta[done, None]) + nu[done] * np.sin(theta[done, None])
            pending = pending[~ok]
            below = theta[pending] < 0
            lo[pending[below]] = theta[pending[below]]
            hi[pending[~below]] = theta[pending[~below]]
            theta[pending] = [rngs[c].uniform(lo[c], hi[c]) for c in pending]
        if step >= burn_in and (step - burn_in) % thin == thin - 1:
            out[:, (step - burn_in) // thin] = xi
        if on_step is not None:
            on_step()
    return out


def darcy_forward_posterior(
    pde: PDE,
    obs_a: np.ndarray,
    mask_a: np.ndarray,
    *,
    seed: int,
    samples: int,
    chains: int = 2,
    burn_in: int = 1000,
    thin: int = 20,
    progress: bool = False,
) -> ForwardPosterior:
    """Posterior summaries of ``N`` Darcy instances given their coefficient ``obs_a``
    ``(N, S, S)`` at ``mask_a`` ``(N, S, S)`` bool: ``samples`` draws per chain (every
    ``thin``-th after ``burn_in`` slice steps), each solved. Chain ``c`` of instance ``i``
    draws from ``np.random.default_rng([seed, i, c])``."""
    size, count = pde.resolution, len(obs_a)
    low, high = pde.params["a_low"], pde.params["a_high"]
    basis = grf_basis(pde)[0].numpy()  # (S^2 nodes, S^2 modes)
    counts, rows, signs, rngs = [], [], [], []
    for i in range(count):
        observed = np.flatnonzero(mask_a[i].ravel())
        sign = np.where(obs_a[i].ravel()[observed] > pde.threshold, 1.0, -1.0)
        for c in range(chains):
            rows.append(basis[observed])
            signs.append(sign)
            rngs.append(np.random.default_rng([seed, i, c]))
        counts.append(len(observed))
    # Ragged observation sets: pad with zero rows of sign 0, which every xi satisfies.
    most = max(counts)
    rows = [np.concatenate([r, np.zeros((most - len(r), r.shape[1]))]) for r in rows]
    signs = [np.concatenate([s, np.zeros(most - len(s))]) for s in signs]
    steps = burn_in + samples * thin
    with tqdm(total=steps, desc="slice sampling", unit="step", disable=not progress) as bar:
        xis = elliptical_slice(
            np.stack(rows), np.stack(signs), rngs, burn_in, samples, thin, lambda: bar.update()
        )
    mean_u, mean_a, high_probability = (np.empty((chains, count, size, size)) for _ in range(3))
    for i in tqdm(range(count), desc="posterior solves", disable=not progress):
        for c in range(chains):
            high_phase = (xis[i * chains + c] @ basis.T).reshape(samples, size, size) >= 0.0
            coefficients = np.where(high_phase, high, low)
            mean_u[c, i] = np.mean([pde.solve(a)[1] for a in coefficients], axis=0)
            mean_a[c, i] = coefficients.mean(axis=0)
            high_probability[c, i] = high_phase.mean(axis=0)
    return ForwardPosterior(mean_u=mean_u, mean_a=mean_a, high_probability=high_probability)


__all__ = [
    "DarcySolve",
    "ForwardPosterior",
    "PhaseData",
    "adjoint_gap",
    "darcy_forward_posterior",
    "darcy_map_phase",
    "darcy_solve",
    "elliptical_slice",
    "feasible_start",
    "grf_basis",
]
