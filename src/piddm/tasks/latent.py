"""Latent optimisation of a one-step generator: one algorithm (docs/method.md, "Tasks").

A one-step generator ``G(eps (R, C, S, S)) -> x (R, C, S, S)`` maps standard normal latents to
fields in the PDE's normalised space. Given observations ``x'`` (physical units) and a bool
mask ``M`` (``True`` where observed), each latent minimises

    J(eps) = |M * (G(eps) - n(x'))|^2 / |M|  +  lambda_infer * Rn(x_mix)  +  reg(eps),
    x_mix  = M * x' + (1 - M) * denormalise(G(eps)),

with ``n`` the PDE's normalisation (the data term lives in normalised space), ``Rn`` the
PDE's physics term of the physical ``x_mix`` (computed in float64; ``residual_norm``: the
normalised mean squared residual, or the preconditioned residual), and
``reg`` keeping ``eps`` typical of ``N(0, I)`` in dimension ``d = C S S``:

* projection (default): after every optimiser step each latent is rescaled onto the sphere
  ``|eps| = sqrt(d)``, where almost all of the Gaussian's mass lies;
* penalty (``penalty = gamma > 0``): ``gamma * ((|eps|^2 - d) / d)^2`` is added to ``J``.

Tasks (forward, inverse, reconstruction) optimise ``B = ensemble`` latents per instance and
report the ensemble mean of ``x_mix`` as the estimate and its standard deviation as the
uncertainty. With ``candidates = K > B`` the ``B`` starting latents are the ones with the
lowest initial ``J`` among ``K`` prior draws per instance (screened without gradients).
With an amortised start network ``E`` (:mod:`piddm.tasks.start`; docs/method.md, "Amortised
start") the ``B`` latents of an instance start instead at ``eps0 + start_spread * xi_b``,
``eps0 = E(y, M)`` and ``xi_b ~ N(0, I)`` (projected onto the sphere with ``projection``),
and nothing is screened.
With ``solver_members`` every optimised member is then replaced by the numerical solver's
field for its own input, ``x_m <- M * x' + (1 - M) * solve(admissible(input of x_m))``: the
members satisfy the discrete PDE to solver tolerance wherever the solution is not observed
(a forward problem: everywhere), and the student's own solution error is gone.
Refinement (PIDDM-ref) is the same loop with an empty mask: only the residual and the
regulariser remain.

``optimizer = "gauss-newton"`` replaces the loop by frozen-Jacobian (chord) Gauss-Newton on the
data term alone (``lambda_infer = 0``): with ``r = M (G(eps) - n(x'))`` on the ``K`` observed
nodes and ``J`` ``(K, d)`` the Jacobian of those outputs at the instance's first starting
latent (``K`` backward passes, shared by its ``B`` members), every step is the minimum-norm
correction

    eps <- eps - J^T (J J^T + mu I)^-1 r,        mu = damping,

one forward pass per member and step, no projection (the step already moves ``eps`` as little
as the fit allows). From prior draws ``eps0 ~ N(0, I)`` this is randomise-then-optimise
(Bardsley et al. 2014): for a linear ``G`` and noise-free observations its fixed point
``argmin |eps - eps0|`` subject to the fit is an exact draw of the latent posterior, so the
ensemble mean tends to the posterior mean as ``B`` grows (docs/method.md, "Tasks").

Bookkeeping: ``N`` instances x ``B`` latents are flattened instance-major to ``R = N B`` rows
(row ``i B + b``), optimised in chunks of ``batch_size`` rows (each chunk has its own
optimiser; the rows' objectives are independent, so chunking changes nothing but memory and
floating-point reduction order), and reshaped back to ``(N, B, C, S, S)``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from piddm.diffusion.utils import randn
from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.pdes.base import RESIDUAL_NORMS, ResidualNorm
from piddm.tasks.masks import check_fraction, make_mask, validate_mask, validate_observations
from piddm.tasks.start import start_latents

#: A one-step generator: latents ``(R, C, S, S)`` -> normalised fields ``(R, C, S, S)``.
LatentGenerator = Callable[[torch.Tensor], torch.Tensor]

OPTIMIZERS: tuple[str, ...] = ("adam", "lbfgs", "gauss-newton")
#: Largest float32: torch's optimisers take the step size as a float32 scalar.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


@dataclass(frozen=True)
class LatentOptConfig:
    """Settings of the latent optimisation.

    * ``steps``: optimiser steps per latent (0 evaluates ``G`` at the initial latents).
    * ``lr``: Adam learning rate; for L-BFGS the initial step length of its strong-Wolfe line
      search (which then adapts it).
    * ``lambda_infer``: weight of the physics term ``Rn(x_mix)``.
    * ``residual_norm``: which physics term: ``plain`` (the paper's normalised mean squared
      residual) or ``preconditioned`` (the squared solution error ``P^-1 R``; see
      :meth:`piddm.pdes.PDE.physics_term`).
    * ``ensemble``: latents ``B`` per instance (estimate = mean, uncertainty = std).
    * ``optimizer``: ``"adam"`` or ``"lbfgs"`` (history 10, one line-searched step per step;
      it treats a chunk's summed, separable objective as one problem, and the projection
      slightly perturbs its curvature pairs: ``projection=False, penalty>0`` avoids that).
      A step whose line search cannot lower ``J`` restarts L-BFGS from steepest descent; if
      the restart cannot move either, that chunk stops early. Or ``"gauss-newton"``
      (module docstring): the data term only, so it needs ``lambda_infer = 0`` and
      ``penalty = 0``; ``lr`` and ``projection`` do not enter (:data:`GAUSS_NEWTON_CONFIG`).
    * ``damping``: ``mu`` of the Gauss-Newton system ``J J^T + mu I``, in squared normalised
      units (about the squared misfit it leaves per observed node).
    * ``projection``: rescale every latent to norm ``sqrt(d)`` after each Adam / L-BFGS step.
    * ``penalty``: ``gamma`` of the penalty ``gamma ((|eps|^2 - d)/d)^2`` (0 disables it).
    * ``batch_size``: rows (latents) per chunk through ``G``; bounds memory.
    * ``candidates``: prior draws ``K`` per instance. With ``K > B`` every draw's initial
      ``J`` is evaluated (``K`` forward evaluations, no gradient) and the ``B`` lowest start
      the optimisation; with ``K <= B`` (e.g. 0) the ``B`` latents are not screened.
    * ``solver_members``: replace each optimised member by the PDE solver's field for its
      own input (one solve per member, milliseconds at 32^2), the observations kept.
    * ``start_spread``: with a start network, the standard deviation of the perturbations
      that make the ``B`` members' starting latents differ (ignored without one).

    The defaults are ``piddm solve``'s, chosen on training instances of the 32^2 Darcy and
    Poisson tasks (``benchmarks/RESULTS.md``, "task settings"); the Poisson forward problem
    is better without screening (``candidates=0``).
    """

    steps: int = 100
    lr: float = 0.05
    lambda_infer: float = 0.1
    ensemble: int = 8
    optimizer: str = "adam"
    projection: bool = True
    penalty: float = 0.0
    batch_size: int = 64
    candidates: int = 256
    solver_members: bool = False
    residual_norm: ResidualNorm = "plain"
    start_spread: float = 0.3
    damping: float = 1e-5

    def __post_init__(self) -> None:
        def integer(name: str, value: object, low: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise PiddmError(f"{name} must be an integer >= {low}, got {value!r}")

        integer("steps", self.steps, 0)
        integer("ensemble", self.ensemble, 1)
        integer("batch_size", self.batch_size, 1)
        integer("candidates", self.candidates, 0)
        if not isinstance(self.solver_members, bool):
            raise PiddmError(f"solver_members must be true or false, got {self.solver_members!r}")
        if not math.isfinite(self.lr) or not 0 < self.lr <= FLOAT32_MAX:
            raise PiddmError(f"lr must be positive and at most 3.4e38, got {self.lr!r}")
        if not math.isfinite(self.lambda_infer) or self.lambda_infer < 0:
            raise PiddmError(f"lambda_infer must be >= 0, got {self.lambda_infer!r}")
        if not math.isfinite(self.start_spread) or self.start_spread < 0:
            raise PiddmError(f"start_spread must be >= 0, got {self.start_spread!r}")
        if not math.isfinite(self.penalty) or self.penalty < 0:
            raise PiddmError(f"penalty must be >= 0, got {self.penalty!r}")
        if not math.isfinite(self.damping) or self.damping <= 0:
            raise PiddmError(f"damping must be positive, got {self.damping!r}")
        if self.residual_norm not in RESIDUAL_NORMS:
            raise PiddmError(
                f"unknown residual norm '{self.residual_norm}'; expected one of: "
                f"{', '.join(RESIDUAL_NORMS)}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise PiddmError(
                f"unknown optimizer '{self.optimizer}'; expected one of: {', '.join(OPTIMIZERS)}"
            )
        if self.optimizer == "gauss-newton" and (self.lambda_infer > 0 or self.penalty > 0):
            raise PiddmError(
                "optimizer gauss-newton fits the observations only: it needs lambda_infer 0 "
                f"and penalty 0, got {self.lambda_infer:g} and {self.penalty:g}"
            )


#: PIDDM-ref's refinement (:func:`refine`): its one set of defaults, different from the task
#: solver's. ``piddm sample --refine K`` and the bench's ``piddm-ref`` rows
#: (``generate.refine_steps``) run it with ``K`` steps and the student's physics term.
#: L-BFGS, not Adam: Adam's per-coordinate steps (about ``lr`` in every coordinate, whatever
#: the gradient) moved the fields of the shipped students far from their samples and
#: multiplied their SMSE by 7-30x even at lr 0.003, where 3 line-searched L-BFGS steps kept
#: it (5 already doubled Poisson's; chosen on training data: benchmarks/LOG.md, "PIDDM-ref").
REFINE_CONFIG = LatentOptConfig(steps=3, lr=1.0, lambda_infer=1.0, optimizer="lbfgs")

#: The task solver's settings from an amortised start (``piddm solve --start``; its options
#: left unset take these values): the start is near the answer, so few members and steps,
#: no screening, and the preconditioned physics term (chosen on held-out training instances
#: of the 32^2 Darcy tasks; on Poisson the screened default stays better: benchmarks/LOG.md,
#: "Amortised start").
START_CONFIG = LatentOptConfig(
    steps=10, ensemble=4, candidates=0, lambda_infer=1.0, residual_norm="preconditioned"
)

#: Tasks whose estimate from a start is best without an optimiser step: the Darcy forward
#: problem (rel. L2 of u 11.0 % at 4 x 0 against 11.6 % at 4 x 10 on held-out training
#: instances, benchmarks/results/darcy-32-forward-sweep-start.json). The start network,
#: trained on the squared error, predicts near the posterior mean of u; steps that fit 3 % of
#: the coefficient move each member towards one sample-like field instead.
START_NO_STEP_TASKS = ("forward",)


def start_config(task: str) -> LatentOptConfig:
    """``piddm solve --start``'s settings for ``task``: :data:`START_CONFIG`, with no
    optimiser step for the tasks of :data:`START_NO_STEP_TASKS`."""
    return replace(START_CONFIG, steps=0) if task in START_NO_STEP_TASKS else START_CONFIG


#: Gauss-Newton from prior draws (randomise-then-optimise, module docstring;
#: ``piddm solve --optimizer gauss-newton``: its options left unset take these values).
GAUSS_NEWTON_CONFIG = LatentOptConfig(
    optimizer="gauss-newton",
    steps=5,
    ensemble=16,
    candidates=0,
    lambda_infer=0.0,
)


@dataclass
class LatentOptResult:
    """Outcome of :func:`optimise_latents` for ``N`` instances and ``B`` latents each.

    * ``estimate`` ``(N, C, S, S)``: ensemble mean of ``x_mix`` in physical units, equal to the
      observations (bit for bit) at observed nodes.
    * ``std`` ``(N, C, S, S)``: ensemble standard deviation (``B - 1`` in the denominator;
      zeros when ``B == 1``), exactly 0 at observed nodes.
    * ``latents`` ``(N, B, C, S, S)``: the optimised latents.
    * ``samples`` ``(N, B, C, S, S)`` or ``None``: every member's ``x_mix`` (physical units).
    * ``objective``, ``data_misfit``, ``residual`` ``(N, B)``: final ``J``, data term and
      ``Rn(x_mix)`` of each latent (float64); with ``solver_members`` the residual is that of
      the solved member, the other two the optimisation's.
    * ``history`` ``(steps,)``: mean ``J`` over all latents at each step, before the update
      (after an early L-BFGS stop, the chunk's last value for the steps it did not take).
    * ``nfe``: forward evaluations of ``G`` per instance (all ``B`` latents, every step, line
      search and the final evaluation; ``B (steps + 1)`` with Adam, plus the ``K`` screened
      draws with ``candidates = K > B``; Gauss-Newton: ``B (steps + 1) + 1``).
    * ``nfe_backward``: backward passes through ``G`` per instance (``B steps`` with Adam;
      Gauss-Newton: one per observed node, for the Jacobian).
    * ``seconds_per_instance``: wall time divided by ``N``.
    """

    estimate: torch.Tensor
    std: torch.Tensor
    latents: torch.Tensor
    samples: torch.Tensor | None
    objective: torch.Tensor
    data_misfit: torch.Tensor
    residual: torch.Tensor
    history: torch.Tensor
    nfe: float
    nfe_backward: float
    seconds_per_instance: float


class _Counted:
    """Wraps ``G`` and counts the rows it evaluates (forward) and backpropagates through."""

    def __init__(self, generator: LatentGenerator) -> None:
        self.generator = generator
        self.forward_rows = 0
        self.backward_rows = 0

    def __call__(self, eps: torch.Tensor) -> torch.Tensor:
        self.forward_rows += eps.shape[0]
        return self.generator(eps)


@contextlib.contextmanager
def _eval_mode(generator: LatentGenerator) -> Iterator[None]:
    """Put a module generator in eval mode (no dropout) for the duration, then restore every
    submodule's own mode."""
    if not isinstance(generator, nn.Module):
        yield
        return
    modes = [(module, module.training) for module in generator.modules()]
    generator.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _latent_dtype(generator: LatentGenerator) -> torch.dtype:
    if isinstance(generator, nn.Module):
        param = next(generator.parameters(), None)
        if param is not None and param.is_floating_point():
            return param.dtype
    return torch.float32


def _project(eps: torch.Tensor) -> None:
    """In place: rescale each latent ``(R, ...)`` to norm ``sqrt(d)``."""
    d = eps[0].numel()
    norms = eps.detach().flatten(1).norm(dim=1).clamp_min(torch.finfo(eps.dtype).tiny)
    eps.mul_((math.sqrt(d) / norms).view(-1, *([1] * (eps.ndim - 1))))


@dataclass
class _Terms:
    objective: torch.Tensor  # (R,)
    data: torch.Tensor  # (R,)
    residual: torch.Tensor  # (R,)
    x_mix: torch.Tensor  # (R, C, S, S) physical, float64


def _terms(
    generator: LatentGenerator,
    pde: PDE,
    eps: torch.Tensor,
    obs_phys: torch.Tensor,
    obs_norm: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig,
) -> _Terms:
    """The objective ``J`` of every row of ``eps`` and its parts (see the module docstring)."""
    x = generator(eps).to(torch.float64)
    n_obs = mask.flatten(1).sum(dim=1).clamp_min(1).to(torch.float64)
    data = ((x - obs_norm).square() * mask).flatten(1).sum(dim=1) / n_obs
    x_mix = torch.where(mask, obs_phys, pde.normalisation.denormalise(x))
    residual = pde.physics_term(x_mix, config.residual_norm)
    objective = data + config.lambda_infer * residual
    if config.penalty > 0:
        d = eps[0].numel()
        sq_norm = eps.to(torch.float64).flatten(1).square().sum(dim=1)
        objective = objective + config.penalty * ((sq_norm - d) / d).square()
    return _Terms(objective, data, residual, x_mix)


def _optimise_chunk(
    generator: _Counted,
    pde: PDE,
    eps0: torch.Tensor,
    obs_phys: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig,
    on_step: Callable[[], object] | None = None,
) -> tuple[torch.Tensor, _Terms, torch.Tensor]:
    """Minimise ``J`` over the rows of ``eps0`` ``(R, C, S, S)``; ``obs_phys`` is float64.
    ``on_step`` is called after every optimiser step (a progress bar).

    Returns ``(eps (R, C, S, S), final terms, history (steps,) of the summed J)``.
    """
    obs_norm = pde.normalisation.normalise(obs_phys)
    eps = eps0.detach().clone().requires_grad_(True)
    lbfgs = config.optimizer == "lbfgs"

    def new_optimiser() -> torch.optim.Optimizer:
        if not lbfgs:
            return torch.optim.Adam([eps], lr=config.lr)
        return torch.optim.LBFGS(
            [eps], lr=config.lr, max_iter=1, history_size=10, line_search_fn="strong_wolfe"
        )

    opt = new_optimiser()

    def closure() -> torch.Tensor:
        total = _terms(generator, pde, eps, obs_phys, obs_norm, mask, config).objective.sum()
        (grad,) = torch.autograd.grad(total, eps)
        generator.backward_rows += eps.shape[0]
        eps.grad = grad
        return total.detach()

    history = torch.zeros(config.steps, dtype=torch.float64)
    restarted = False
    for step in range(config.steps):
        before = eps.detach().clone() if lbfgs else None
        history[step] = opt.step(closure)  # the objective before this step's update
        if before is not None and torch.equal(before, eps):
            # The line search found no decrease (step length 0). torch's L-BFGS would retry
            # the same direction forever, so start afresh from steepest descent; a fresh
            # start that cannot move either means J is stationary to float precision.
            if restarted:
                history[step:] = history[step]
                break
            opt, restarted = new_optimiser(), True
            continue
        restarted = False
        if config.projection:
            with torch.no_grad():
                _project(eps)
        if on_step is not None:
            on_step()
    with torch.no_grad():
        final = _terms(generator, pde, eps, obs_phys, obs_norm, mask, config)
    return eps.detach(), final, history


def _run(
    generator: LatentGenerator,
    pde: PDE,
    eps0: torch.Tensor,
    obs_phys: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig,
    progress: bool = False,
    members: int = 1,
) -> tuple[torch.Tensor, _Terms, torch.Tensor, _Counted]:
    """Optimise all rows of ``eps0`` in chunks of ``config.batch_size``; concatenate results.
    ``progress``: a progress bar of the optimiser steps on stderr. Gauss-Newton chunks hold
    whole instances of ``members`` consecutive rows (at least one instance per chunk)."""
    counted = _Counted(generator)
    eps_out, terms, history = [], [], torch.zeros(config.steps, dtype=torch.float64)
    gauss_newton = config.optimizer == "gauss-newton"
    chunk = members * max(1, config.batch_size // members) if gauss_newton else config.batch_size
    chunks = math.ceil(eps0.shape[0] / chunk)
    bar = tqdm(
        total=chunks * config.steps, desc="latent optimisation", unit="step", disable=not progress
    )
    with _eval_mode(generator), bar:
        for start in range(0, eps0.shape[0], chunk):
            rows = slice(start, start + chunk)
            args = (counted, pde, eps0[rows], obs_phys[rows], mask[rows], config)
            if gauss_newton:
                eps, final, hist = _gauss_newton_chunk(*args, members, bar.update)
            else:
                eps, final, hist = _optimise_chunk(*args, bar.update)
            eps_out.append(eps)
            terms.append(final)
            history += hist
    fields = ("objective", "data", "residual", "x_mix")
    merged = _Terms(*(torch.cat([getattr(t, f) for t in terms]) for f in fields))
    return torch.cat(eps_out), merged, history / eps0.shape[0], counted


def _observed_index(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices ``(m, K)`` of the observed nodes of each mask ``(m, C, S, S)``, in node
    order, padded with ``-1`` to the largest count ``K``."""
    flat = mask.flatten(1)
    index = torch.full((flat.shape[0], int(flat.sum(dim=1).max())), -1, dtype=torch.long)
    for row, observed in enumerate(flat.cpu()):
        positions = torch.nonzero(observed).squeeze(1)
        index[row, : len(positions)] = positions
    return index.to(mask.device)


def _observed_jacobian(generator: _Counted, eps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The Jacobian ``(m, K, d)`` float64 of the outputs ``G(eps).flatten(1)[i, index[i]]``
    of each row of ``eps`` ``(m, C, S, S)`` (zero rows where ``index`` is ``-1``): one
    backward pass per observed node, batched over the rows and the ``K`` nodes by
    ``is_grads_batched`` (the rows of ``G`` are independent)."""
    leaf = eps.detach().clone().requires_grad_(True)
    out = generator(leaf).flatten(1)
    valid = index >= 0
    node, row = torch.nonzero(valid.T, as_tuple=True)
    cotangents = torch.zeros((index.shape[1], *out.shape), dtype=out.dtype, device=out.device)
    cotangents[node, row, index[row, node]] = 1.0
    (jacobian,) = torch.autograd.grad(out, leaf, cotangents, is_grads_batched=True)
    generator.backward_rows += int(valid.sum())
    return jacobian.flatten(2).transpose(0, 1).to(torch.float64)


def _gauss_newton_chunk(
    generator: _Counted,
    pde: PDE,
    eps0: torch.Tensor,
    obs_phys: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig,
    members: int,
    on_step: Callable[[], object] | None = None,
) -> tuple[torch.Tensor, _Terms, torch.Tensor]:
    """Frozen-Jacobian Gauss-Newton (module docstring) on whole instances: rows
    ``i members ... (i + 1) members - 1`` of ``eps0`` ``(R, C, S, S)`` are instance ``i``'s
    members and share its mask and Jacobian. Returns what :func:`_optimise_chunk` does."""
    obs_norm = pde.normalisation.normalise(obs_phys)
    instances = eps0.shape[0] // members
    index = _observed_index(mask[::members])  # (m, K)
    valid = (index >= 0).to(torch.float64)
    gather = index.clamp_min(0).repeat_interleave(members, dim=0)  # (R, K)
    target = obs_norm.flatten(1).gather(1, gather)
    jacobian = _observed_jacobian(generator, eps0[::members], index)  # (m, K, d)
    eye = torch.eye(index.shape[1], dtype=torch.float64, device=eps0.device)
    factor = torch.linalg.cholesky(jacobian @ jacobian.transpose(1, 2) + config.damping * eye)
    eps = eps0.detach().clone()
    history = torch.zeros(config.steps, dtype=torch.float64)
    for step in range(config.steps):
        with torch.no_grad():
            out = generator(eps).flatten(1).to(torch.float64)
        misfit = (out.gather(1, gather) - target).view(instances, members, -1) * valid[:, None]
        history[step] = (misfit.square().sum(dim=2) / valid.sum(dim=1)[:, None]).sum()
        weights = torch.cholesky_solve(misfit.transpose(1, 2), factor)  # (m, K, members)
        update = (jacobian.transpose(1, 2) @ weights).transpose(1, 2)  # (m, members, d)
        eps = eps - update.reshape(eps.shape).to(eps.dtype)
        if on_step is not None:
            on_step()
    with torch.no_grad():
        final = _terms(generator, pde, eps, obs_phys, obs_norm, mask, config)
    return eps, final, history


def _solved(pde: PDE, fields: torch.Tensor, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``M * obs + (1 - M) * pde.solve_own_input(x)`` for every row ``x`` of ``fields``
    ``(R, C, S, S)`` (physical, float64); ``obs`` and ``mask`` have the same shape."""
    rows = fields.detach().cpu().numpy()
    solved = np.stack([pde.solve_own_input(x) for x in rows])
    return torch.where(mask, obs, torch.from_numpy(solved).to(fields))


def _screened_latents(
    generator: LatentGenerator,
    pde: PDE,
    obs: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig,
    rng: torch.Generator | None,
    like: torch.Tensor,
) -> torch.Tensor:
    """Initial latents ``(N B, C, S, S)`` (instance-major): for each instance in turn, draw
    ``K = config.candidates`` latents from ``rng`` and keep the ``B = config.ensemble`` with
    the lowest initial ``J`` (in the order drawn). ``obs`` ``(N, C, S, S)`` float64 physical,
    ``mask`` ``(N, C, S, S)``; one instance's ``K`` rows are in memory at a time."""
    k, b = config.candidates, config.ensemble
    kept = []
    with _eval_mode(generator), torch.no_grad():
        for i in range(obs.shape[0]):
            eps = randn((k, *obs.shape[1:]), rng, like)
            # One instance's observations, broadcast over its K rows inside ``_terms``.
            obs_i, mask_i = obs[i : i + 1], mask[i : i + 1]
            obs_norm = pde.normalisation.normalise(obs_i)
            objective = []
            for start in range(0, k, config.batch_size):
                rows = eps[start : start + config.batch_size]
                terms = _terms(generator, pde, rows, obs_i, obs_norm, mask_i, config)
                objective.append(terms.objective)
            best = torch.cat(objective).argsort()[:b].sort().values
            kept.append(eps[best])
    return torch.cat(kept)


def optimise_latents(
    generator: LatentGenerator,
    pde: PDE,
    obs: torch.Tensor,
    mask: torch.Tensor,
    config: LatentOptConfig | None = None,
    *,
    rng: torch.Generator | None = None,
    start: nn.Module | None = None,
    return_samples: bool = False,
    progress: bool = False,
) -> LatentOptResult:
    """Fit ``config.ensemble`` latents per instance to observations (docs/method.md, "Tasks").

    ``obs`` ``(N, C, S, S)`` holds the observed values in physical units (anything, even NaN,
    at unobserved nodes); ``mask`` is ``(N, C, S, S)`` or ``(C, S, S)`` (shared by every
    instance), ``True`` / 1 where observed. Initial latents ``(N B, C, S, S)`` are drawn from
    ``rng`` (the best of ``config.candidates`` draws per instance when that exceeds ``B``), so
    the result is deterministic given its seed; with a ``start`` network
    (:class:`piddm.nets.start.StartNet` of this generator) they start near its latent
    instead (module docstring). ``progress`` shows a progress bar of the
    optimiser steps on stderr. Raises :class:`PiddmError` for a bad mask (wrong shape, empty,
    full) or NaN observations at observed nodes.
    """
    config = config or LatentOptConfig()
    mask = validate_mask(mask, pde)
    validate_observations(obs, mask, pde)
    device = obs.device
    mask = mask.to(device).expand_as(obs)
    n, b = obs.shape[0], config.ensemble
    began = time.perf_counter()

    like = torch.empty((), dtype=_latent_dtype(generator), device=device)
    obs_phys = torch.where(mask, obs, torch.zeros((), dtype=obs.dtype, device=device))
    obs64 = obs_phys.to(torch.float64)
    screened = 0
    if start is not None:
        eps0 = start_latents(start, pde, obs64, mask).to(like).repeat_interleave(b, dim=0)
        eps0 = eps0 + config.start_spread * randn(tuple(eps0.shape), rng, like)
        if config.projection:
            _project(eps0)
    elif config.candidates > b:
        eps0 = _screened_latents(generator, pde, obs64, mask, config, rng, like)
        screened = n * config.candidates
    else:
        eps0 = randn((n * b, *obs.shape[1:]), rng, like)
    rows_obs = obs64.repeat_interleave(b, dim=0)
    rows_mask = mask.repeat_interleave(b, dim=0)
    eps, terms, history, counted = _run(
        generator, pde, eps0, rows_obs, rows_mask, config, progress, members=b
    )
    counted.forward_rows += screened
    if config.solver_members:
        terms.x_mix = _solved(pde, terms.x_mix, rows_obs, rows_mask)
        terms.residual = pde.physics_term(terms.x_mix, config.residual_norm)

    # Ensemble statistics; observed nodes are overwritten by the observations themselves (a
    # mean of B identical float64 values cast back could differ from obs in the last bit).
    shape = (n, b, *obs.shape[1:])
    members = terms.x_mix.view(shape)
    estimate = torch.where(mask, obs, members.mean(dim=1).to(obs.dtype))
    spread = members.std(dim=1) if b > 1 else torch.zeros_like(members[:, 0])
    std = torch.where(mask, torch.zeros((), dtype=obs.dtype, device=device), spread.to(obs.dtype))
    samples = None
    if return_samples:
        samples = torch.where(mask.unsqueeze(1), obs.unsqueeze(1), members.to(obs.dtype))
    seconds = time.perf_counter() - began
    return LatentOptResult(
        estimate=estimate,
        std=std,
        latents=eps.view(shape),
        samples=samples,
        objective=terms.objective.view(n, b),
        data_misfit=terms.data.view(n, b),
        residual=terms.residual.view(n, b),
        history=history,
        nfe=counted.forward_rows / n,
        nfe_backward=counted.backward_rows / n,
        seconds_per_instance=seconds / n,
    )


def solve_task(
    generator: LatentGenerator,
    pde: PDE,
    truth: torch.Tensor,
    task: str,
    fraction: float,
    config: LatentOptConfig | None = None,
    *,
    rng: torch.Generator,
    mask: torch.Tensor | None = None,
    start: nn.Module | None = None,
    return_samples: bool = False,
    progress: bool = False,
) -> tuple[torch.Tensor, LatentOptResult]:
    """Forward / inverse / reconstruction of ``truth`` ``(N, C, S, S)`` (physical units).

    Draws the masks ``(N, C, S, S)`` from ``rng`` (unless ``mask`` is given), observes
    ``truth`` there and runs :func:`optimise_latents` with the same ``rng`` (and ``start``,
    ``progress``). Returns ``(mask, result)``.
    """
    check_fraction(fraction)
    pde.check_fields(truth)
    if mask is None:
        mask = make_mask(pde, task, fraction, rng, n=truth.shape[0])
    mask = validate_mask(mask, pde).to(truth.device).expand_as(truth)
    result = optimise_latents(
        generator,
        pde,
        truth,
        mask,
        config,
        rng=rng,
        start=start,
        return_samples=return_samples,
        progress=progress,
    )
    return mask, result


def refine_counted(
    generator: LatentGenerator,
    pde: PDE,
    eps: torch.Tensor,
    config: LatentOptConfig | None = None,
) -> tuple[torch.Tensor, float]:
    """:func:`refine` and its measured cost: ``(refined latents (B, C, S, S), network passes
    per latent)``, forward and backward passes through ``G`` during the descent and its final
    evaluation of the objective (the caller's ``G(refined)`` not included). With Adam that is
    ``2 steps + 1``; with L-BFGS each step is at least four (the step's gradient and one
    line-search trial, forward and backward), more when the line search extends."""
    config = config or REFINE_CONFIG
    if config.optimizer == "gauss-newton":
        raise PiddmError(
            "refinement has no observations to fit: use adam or lbfgs, not gauss-newton"
        )
    pde.check_fields(eps)
    zeros = torch.zeros(eps.shape, dtype=torch.float64, device=eps.device)
    empty = torch.zeros(eps.shape, dtype=torch.bool, device=eps.device)
    refined, _, _, counted = _run(generator, pde, eps, zeros, empty, config)
    passes = (counted.forward_rows + counted.backward_rows) / max(eps.shape[0], 1)
    return refined.to(eps.dtype), passes


def refine(
    generator: LatentGenerator,
    pde: PDE,
    eps: torch.Tensor,
    config: LatentOptConfig | None = None,
) -> torch.Tensor:
    """PIDDM-ref (docs/method.md, "Refinement"): descend ``lambda_infer Rn(G(eps)) + reg(eps)``.

    ``eps`` ``(B, C, S, S)`` -> refined latents ``(B, C, S, S)``; the output field is
    ``G(refined)``. The same loop as :func:`optimise_latents` with an empty mask (no data
    term); ``config.ensemble`` and ``config.candidates`` are ignored. Default:
    :data:`REFINE_CONFIG` (L-BFGS: its line search treats the batch's summed objective as
    one problem, so a latent's refinement depends on the batch it is refined with).
    """
    return refine_counted(generator, pde, eps, config)[0]
