"""The interface every PDE of piddm implements.

A PDE couples three things that must agree exactly (the *consistency principle*):

* ``sample_input(rng)``: draws the random input (coefficient field or initial condition);
* ``solve(input)``: the numerical solver, which solves the discrete equations *exactly*;
* ``residual(x)``: the same discrete equations, applied to a field tensor in torch.

Fields are tensors ``x`` of shape ``(B, C, S, S)`` in physical units; channel 0 is the
coefficient (or, for time-dependent problems, the whole space-time field). The residual map
has shape ``(B, S, S)``; ``equation_mask`` marks the nodes that carry an equation, and the
*mean squared residual* of a sample is the mean of ``R**2`` over those nodes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import numpy as np
import torch

from piddm.errors import PiddmError
from piddm.pdes.frozen_solve import LinearSolver, frozen_solve

#: The physics terms of :meth:`PDE.physics_term`.
ResidualNorm = Literal["plain", "preconditioned"]
RESIDUAL_NORMS: tuple[str, ...] = get_args(ResidualNorm)
#: The downstream tasks (:meth:`PDE.observation_mask`, :mod:`piddm.tasks`).
Task = Literal["forward", "inverse", "reconstruct"]

#: The largest supported grid (``S x S`` nodes): 16.7 M nodes per field.
MAX_RESOLUTION = 4096

#: Solver draws of :meth:`PDE.prior_mean` (its Monte Carlo error adds ``1/64`` of the prior
#: variance to the squared error of the prior-mean yardstick: under 1 % of the error).
PRIOR_MEAN_DRAWS = 64
#: Seed of those draws: far from the data's ``sample_seed`` values and the demo's seeds.
PRIOR_MEAN_SEED = 7_000_000_000


def observed_count(fraction: float, size: int) -> int:
    """Nodes of a random subset of ``size`` nodes: ``max(1, round(fraction * size))`` (halves
    round up), all ``size`` of them for ``fraction >= 1``."""
    return size if fraction >= 1.0 else min(size, max(1, math.floor(fraction * size + 0.5)))


def random_nodes(size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """Bool ``(size,)`` with ``count`` ``True`` entries at random positions (without
    replacement, from ``generator``)."""
    chosen = torch.zeros(size, dtype=torch.bool)
    chosen[torch.randperm(size, generator=generator)[:count]] = True
    return chosen


@dataclass(frozen=True)
class Normalisation:
    """Per-channel affine map to roughly ``[-1, 1]``: ``x_norm = (x - shift) / scale``."""

    shift: tuple[float, ...]
    scale: tuple[float, ...]

    def _view(self, values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Physical ``(B, C, S, S)`` -> normalised ``(B, C, S, S)``."""
        return (x - self._view(self.shift, x)) / self._view(self.scale, x)

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B, C, S, S)`` -> physical ``(B, C, S, S)``."""
        return x * self._view(self.scale, x) + self._view(self.shift, x)


class PDE(ABC):
    """A PDE on an ``S x S`` node grid: input sampler, solver and residual operator.

    Subclasses set the class attributes and implement the four abstract methods (and
    :meth:`manufactured_solution`, which the test suite runs on every registered PDE). Register
    a subclass with :func:`piddm.pdes.registry.register_pde` to make it available by name.
    Everything else that differs between PDEs is a hook below with a default (``time_dependent``,
    ``axis_labels``, ``threshold``, ``diffusionpde_zeta_obs``, ...): the layers above read
    these, never a PDE's name (docs/adding-a-pde.md).
    """

    name: ClassVar[str]
    channels: ClassVar[tuple[str, ...]]
    #: Index of the channel holding the coefficient / input (observed in forward problems).
    coefficient_channel: ClassVar[int] = 0
    #: Index of the channel holding the solution (observed in inverse problems).
    solution_channel: ClassVar[int] = 1
    #: Default values of the PDE's parameters (``k`` for Helmholtz, ``nu`` for Burgers).
    default_params: ClassVar[dict[str, float]] = {}
    #: Fixed per-channel normalisation.
    normalisation: ClassVar[Normalisation]
    #: Squared scale of the equation's right-hand side in physical units (Darcy ``f**2 = 1``,
    #: Poisson / Helmholtz ``E[a**2] ~ 0.1``, Burgers ``E[u_t**2] ~ 0.025``); the training term is
    #: ``Rn = mean squared residual / residual_scale``, so one ``lambda`` transfers between PDEs.
    residual_scale: ClassVar[float] = 1.0
    #: True when the input is the GRF of ``grf_alpha, grf_tau`` and the solution is linear in
    #: it, so the fields are jointly Gaussian (:mod:`piddm.tasks.gaussian_posterior`).
    linear_gaussian: ClassVar[bool] = False
    #: Lower bounds of parameters, ``name -> (low, open)``: ``value > low`` if ``open`` else
    #: ``value >= low`` (every parameter must also be a finite number).
    param_bounds: ClassVar[dict[str, tuple[float, bool]]] = {}

    # Hooks for the layers above (tasks, metrics, figures, baselines): per-PDE facts with
    # defaults that fit a steady problem on the unit square, overridden in the PDE's own file.
    #: True when the ``S x S`` image is space-time: rows are time levels (row 0 the initial
    #: condition, the input), columns space. What the tasks observe is
    #: :meth:`observation_mask`'s, overridden by such a PDE (Burgers).
    time_dependent: ClassVar[bool] = False
    #: Names of the image's axes ``(rows, columns)``, for figures: ``("x", "y")`` on the unit
    #: square (``field[i, j] = f(x_i, y_j)``), ``("t", "x")`` for a space-time image.
    axis_labels: ClassVar[tuple[str, str]] = ("x", "y")
    #: Threshold of a two-valued coefficient (``None``: not two-valued): the task metrics count
    #: the nodes that an estimate puts on the wrong side of it (:func:`piddm.metrics.error_rate`).
    threshold: ClassVar[float | None] = None
    #: DiffusionPDE guidance (:func:`piddm.baselines.diffusionpde_settings`): the published
    #: observation weight per channel, tuned at 128^2 with 500 observed nodes per field;
    #: ``None``: none published (the caller passes ``zeta_obs``).
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...] | None] = None

    def __init__(self, resolution: int, **params: float) -> None:
        if int(resolution) != resolution or resolution < 8:
            raise PiddmError(f"resolution must be an integer >= 8, got {resolution}")
        if resolution > MAX_RESOLUTION:
            raise PiddmError(f"resolution must be at most {MAX_RESOLUTION}, got {resolution}")
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise PiddmError(
                f"unknown parameter(s) {sorted(unknown)} for PDE '{self.name}'; "
                f"known: {sorted(self.default_params)}"
            )
        self.resolution = int(resolution)
        self.params: dict[str, float] = {
            **self.default_params,
            **{k: _param_value(self.name, k, v) for k, v in params.items()},
        }
        for key, (low, low_open) in self.param_bounds.items():
            value = self.params[key]
            if value < low or (low_open and value == low):
                raise PiddmError(
                    f"parameter {key} of PDE '{self.name}' must be "
                    f"{'>' if low_open else '>='} {low:g}, got {value:g}"
                )
        self.check_params()
        self._mask_cache: dict[torch.device, torch.Tensor] = {}

    def check_params(self) -> None:
        """Cross-parameter checks of a subclass (raise :class:`PiddmError`); none by default."""
        return None

    # ------------------------------------------------------------- observations
    def observation_mask(
        self, task: Task, fraction: float, generator: torch.Generator
    ) -> torch.Tensor:
        """What a ``task`` observes of one field: bool ``(C, S, S)``, ``True`` where observed
        (:mod:`piddm.tasks.masks`; docs/observations.md, "What each task observes").

        Default, a steady problem: ``forward`` observes a random ``fraction`` of the
        coefficient channel's nodes, ``inverse`` of the solution channel's, ``reconstruct`` of
        every channel's (:func:`observed_count` nodes each, drawn from ``generator``).
        A PDE whose field is not "input + solution on the unit square" overrides it
        (Burgers: the initial condition, sensors).
        """
        size = self.resolution
        mask = torch.zeros(self.num_channels, size, size, dtype=torch.bool)
        if task == "reconstruct":
            observed = list(range(self.num_channels))
        else:
            observed = [self.coefficient_channel if task == "forward" else self.solution_channel]
        count = observed_count(fraction, size * size)
        for c in observed:
            mask[c] = random_nodes(size * size, count, generator).view(size, size)
        return mask

    def observation_label(self, task: Task, fraction: float) -> str:
        """What :meth:`observation_mask` observes, in a few words (tables, figure titles):
        ``"3 % of a"``."""
        if task == "reconstruct":
            names = ", ".join(self.channels)
        else:
            names = self.channels[
                self.coefficient_channel if task == "forward" else self.solution_channel
            ]
        return f"{100 * fraction:g} % of {names}"

    def prior_mean(self) -> np.ndarray:
        """The mean field ``(C, S, S)`` float64 of the PDE's data: the estimate of a method that
        knows the prior but ignores the observations (the *prior-mean yardstick* of the tasks,
        :mod:`piddm.tasks.yardstick`). Default: the mean of :data:`PRIOR_MEAN_DRAWS` solver
        fields (seeds from :data:`PRIOR_MEAN_SEED`); a PDE whose mean is known exactly
        overrides it."""
        draws = [self.generate(PRIOR_MEAN_SEED + i) for i in range(PRIOR_MEAN_DRAWS)]
        return np.mean(draws, axis=0)

    # ------------------------------------------------------------------ grid
    @property
    def h(self) -> float:
        """Node spacing ``1 / (S - 1)`` of the unit square (boundary nodes included)."""
        return 1.0 / (self.resolution - 1)

    @property
    def num_channels(self) -> int:
        return len(self.channels)

    # ------------------------------------------------------------------ data
    @abstractmethod
    def sample_input(self, rng: np.random.Generator) -> np.ndarray:
        """Draw the random input of one sample (coefficient field or initial condition)."""

    @abstractmethod
    def solve(self, inputs: np.ndarray) -> np.ndarray:
        """Solve the discrete equations for one input; returns the field ``(C, S, S)`` float64."""

    def generate(self, seed: int) -> np.ndarray:
        """One sample ``(C, S, S)`` float64, a deterministic function of ``seed`` alone."""
        return self.solve(self.sample_input(np.random.default_rng(int(seed))))

    def inputs_of(self, field: np.ndarray) -> np.ndarray:
        """Extract the solver input from a field ``(C, S, S)`` (inverse of ``solve``'s packing)."""
        return np.asarray(field[self.coefficient_channel], dtype=np.float64)

    def admissible_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Map a generated input to one the solver accepts (identity unless overridden)."""
        return inputs

    def admissible_field(self, x: torch.Tensor) -> torch.Tensor:
        """Fields ``x`` ``(B, C, S, S)`` with their input replaced by :meth:`admissible_inputs`
        (torch, differentiable where the PDE says how): the field whose residual the relative
        residual and the preconditioned residual measure. ``x`` itself unless overridden."""
        return x

    def solve_own_input(self, field: np.ndarray) -> np.ndarray:
        """The solver's field ``(C, S, S)`` for ``field``'s own input, made admissible:
        ``solve(admissible_inputs(inputs_of(field)))``."""
        return self.solve(self.admissible_inputs(self.inputs_of(field)))

    def solution_of(self, field: np.ndarray) -> np.ndarray:
        """The part of a field ``(C, S, S)`` that the solver determines, as ``(S, S)``."""
        return np.asarray(field[self.solution_channel], dtype=np.float64)

    def with_solver_solution(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, S, S)`` (physical units) with its solution replaced by the solver's
        solution for its own input (:meth:`solve_own_input`), every other channel kept: the
        field whose solver consistency is 0. Solved in float64 on the CPU, returned in
        ``x``'s dtype and device."""
        fields = x.detach().to("cpu", torch.float64).numpy()
        solved = np.stack([self.solution_of(self.solve_own_input(f)) for f in fields])
        out = x.clone()
        out[:, self.solution_channel] = torch.from_numpy(solved).to(x.device, x.dtype)
        return out

    # -------------------------------------------------------------- residual
    @abstractmethod
    def residual(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        """Residual map ``(B, S, S)`` of fields ``x`` ``(B, C, S, S)`` in physical units.

        ``source`` (broadcastable to ``(B, S, S)``) replaces the PDE's own right-hand side;
        it exists for manufactured-solution tests and is ``None`` in normal use.
        """

    @abstractmethod
    def equation_mask_numpy(self) -> np.ndarray:
        """``(S, S)`` bool: the nodes that carry an equation (and enter the mean)."""

    def equation_mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """``(S, S)`` bool tensor on ``device``; see :meth:`equation_mask_numpy`."""
        device = torch.device(device)
        if device not in self._mask_cache:
            self._mask_cache[device] = torch.from_numpy(self.equation_mask_numpy()).to(device)
        return self._mask_cache[device]

    def mean_squared_residual(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample mean of ``R**2`` over the equation nodes: ``(B, C, S, S) -> (B,)``."""
        r = self.residual(x)
        mask = self.equation_mask(x.device).to(r.dtype)
        return (r.square() * mask).sum(dim=(-2, -1)) / mask.sum()

    def normalised_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``Rn(x) = mean_squared_residual(x) / residual_scale``, ``(B,)``; the training term."""
        return self.mean_squared_residual(x) / self.residual_scale

    # ------------------------------------------------- scale-free physics measures
    def without_solution(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, S, S)`` with its solution set to zero and its input kept: the field
        whose residual is the equation's own right-hand side (the *zero field*)."""
        out = x.clone()
        out[:, self.solution_channel] = 0
        return out

    def relative_residual(self, x: torch.Tensor) -> torch.Tensor:
        """``|R(x')| / |R(x0)|`` per sample, ``(B,)``, over the equation nodes, with ``x' =
        admissible_field(x)`` and ``x0 = without_solution(x')``: 1 for the zero field, 0 for
        the solver's (docs/concepts.md)."""
        x = self.admissible_field(x)
        zero = self.residual_norm(self.without_solution(x))
        return self.residual_norm(x) / zero.clamp_min(torch.finfo(x.dtype).tiny)

    def residual_norm(self, x: torch.Tensor) -> torch.Tensor:
        """``|R(x)|``, the 2-norm of the residual map over the equation nodes: ``(B,)``."""
        mask = self.equation_mask(x.device).to(x.dtype)
        return (self.residual(x).square() * mask).sum(dim=(-2, -1)).sqrt()

    def linearised_operator(self, x: torch.Tensor) -> LinearSolver:
        """``P = dR/du`` at the (detached) fields ``x``, as ``P^-1`` / ``P^-T`` on residual maps
        ``(B, S, S)``; see :mod:`piddm.pdes.frozen_solve`. A PDE without it has no
        preconditioned residual."""
        raise PiddmError(f"PDE '{self.name}' defines no preconditioned residual")

    def solution_error(self, x: torch.Tensor) -> torch.Tensor:
        """``e = P^-1 R(x')`` ``(B, S, S)``, ``x' = admissible_field(x)``, zero off the equation
        nodes: for linear PDEs exactly ``u - u*``, ``u*`` the solver's solution for ``x``'s own
        input made admissible (:meth:`solve_own_input`). Differentiable with ``P`` held fixed
        (the gradient of ``|e|**2 / 2`` to ``u`` is ``e``)."""
        self.check_fields(x)
        e = frozen_solve(
            self.residual(self.admissible_field(x)), self.linearised_operator(x.detach())
        )
        return e * self.equation_mask(x.device).to(e.dtype)

    def preconditioned_residual(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``(P^-1 R(x))**2`` over the equation nodes, ``(B,)``, physical units: the
        mean squared solution error (exact for linear PDEs, to first order for Burgers)."""
        mask = self.equation_mask(x.device).to(x.dtype)
        return self.solution_error(x).square().sum(dim=(-2, -1)) / mask.sum()

    def physics_term(self, x: torch.Tensor, norm: str = "plain") -> torch.Tensor:
        """The training / inference physics term of physical fields ``x``, ``(B,)``.

        ``plain``: :meth:`normalised_residual` (the paper's ``Rn``); ``preconditioned``:
        :meth:`preconditioned_residual` over the squared normalisation scale of the solution,
        i.e. the solution's squared error in the normalised units of the pair regression.
        """
        if norm == "plain":
            return self.normalised_residual(x)
        if norm == "preconditioned":
            scale = self.normalisation.scale[self.solution_channel]
            return self.preconditioned_residual(x) / scale**2
        raise PiddmError(f"residual norm must be one of {', '.join(RESIDUAL_NORMS)}, got {norm!r}")

    # ------------------------------------------------------------------ testing
    def manufactured_solution(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A smooth exact solution of the *continuous* PDE on this grid, float64, for the
        ``O(h^2)`` convergence test (``tests/pdes/test_convergence.py``): ``(x, source)`` with
        fields ``x`` ``(1, C, S, S)`` and the right-hand side ``source`` (``(S, S)``, passed to
        :meth:`residual`; ``None`` when the PDE's own right-hand side, held in ``x``, is exact).
        The discrete residual ``R_h(x)`` is then the truncation error, ``C h^2``."""
        raise NotImplementedError(f"PDE '{self.name}' defines no manufactured solution")

    def check_fields(self, x: torch.Tensor) -> None:
        """Raise :class:`PiddmError` unless ``x`` has shape ``(B, C, S, S)`` for this PDE."""
        expected = (self.num_channels, self.resolution, self.resolution)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise PiddmError(
                f"{self.name} fields must have shape (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(x.shape)}"
            )

    def describe(self) -> dict[str, Any]:
        """Metadata stored with datasets and checkpoints."""
        return {
            "pde": self.name,
            "resolution": self.resolution,
            "h": self.h,
            "params": dict(self.params),
            "channels": list(self.channels),
            "norm_shift": list(self.normalisation.shift),
            "norm_scale": list(self.normalisation.scale),
        }


def _param_value(pde: str, key: str, value: Any) -> float:
    """``value`` as a finite float, else :class:`PiddmError` naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not np.isfinite(number):
        raise PiddmError(f"parameter {key} of PDE '{pde}' must be a finite number, got {value!r}")
    return number


def neighbours(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interior views of ``u`` ``(..., S, S)``: ``(u[i+1,j], u[i-1,j], u[i,j+1], u[i,j-1])``.

    Each has shape ``(..., S-2, S-2)`` and is aligned with ``u[..., 1:-1, 1:-1]``.
    """
    return u[..., 2:, 1:-1], u[..., :-2, 1:-1], u[..., 1:-1, 2:], u[..., 1:-1, :-2]


def dirichlet_residual_map(
    interior: torch.Tensor, u: torch.Tensor, boundary_weight: torch.Tensor | float
) -> torch.Tensor:
    """Assemble a ``(..., S, S)`` map: PDE residual inside, ``weight * (u - 0)`` on the boundary.

    ``interior`` is ``(..., S-2, S-2)``; ``u`` is the solution on the full grid. The boundary
    weight (``1/h**2`` times a coefficient) gives the Dirichlet violation the units and the
    magnitude of the interior residual, as the 5-point stencil next to the boundary feels it.
    """
    frame = torch.ones(u.shape[-2:], dtype=u.dtype, device=u.device)
    frame[1:-1, 1:-1] = 0
    return torch.nn.functional.pad(interior, (1, 1, 1, 1)) + frame * boundary_weight * u
