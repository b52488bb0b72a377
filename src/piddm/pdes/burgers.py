"""Viscous Burgers: ``u_t + (u**2 / 2)_x = nu u_xx``, ``x`` periodic on ``[0, 1)``, ``t in [0, 1]``.

The field is one ``S x S`` image ``u[n, j] = u(x_j, t_n)`` with ``t_n = n / (S - 1)`` (rows,
``dt = 1/(S-1)``; row 0 is the initial condition) and ``x_j = j / S`` (columns, periodic,
``dx = 1/S``). The initial condition is ``u0 = ic_scale * g`` with ``g ~ GRF1d(2.5, 7)``.

Discretisation (Crank-Nicolson in time, central conservative differences in space), for
``n = 0 .. S-2``:

    R[n+1, j] = (u[n+1, j] - u[n, j]) / dt + (N(u[n+1]) + N(u[n]))_j / 2 - (s[n] + s[n+1])_j / 2
    N(v)_j    = (v_{j+1}**2 - v_{j-1}**2) / (4 dx) - nu (v_{j+1} - 2 v_j + v_{j-1}) / dx**2

second order in ``dt`` and ``dx``. The solver performs exactly these steps (Newton per step,
to machine precision), so the residual of solver data is at round-off. Row 0 carries no
equation. Resolution: central differences stay oscillation-free while the cell Peclet number
``|u| dx / nu`` stays below about 2 across the steepest front; ``ic_scale = 0.5`` keeps the
solutions resolved at 64^2 and above and mildly under-resolved (but stable) at 32^2.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import scipy.linalg as sla
import torch

from piddm.pdes.base import PDE, Normalisation, Task, observed_count, random_nodes
from piddm.pdes.grf import grf1d_periodic
from piddm.pdes.registry import register_pde

#: Sensor columns at 128^2: DiffusionPDE's Burgers setting (``random_sensor(5, 128)`` in its
#: ``scripts/generate_burgers.py``; docs/observations.md, "What each task observes").
SENSORS_AT_128 = 5


def sensor_count(resolution: int) -> int:
    """Sensor columns of the inverse problem at ``resolution``: ``max(2, round(5 S / 128))``
    (2 at 16^2 and 32^2, 3 at 64^2, 5 at 128^2): DiffusionPDE's sensor density per unit
    length as far as an integer count allows, at least two. Halves round up."""
    return max(2, math.floor(SENSORS_AT_128 * resolution / 128 + 0.5))


def spatial_operator(v: torch.Tensor, dx: float, nu: float) -> torch.Tensor:
    """``N(v) = (v**2/2)_x - nu v_xx``, periodic central differences: ``(..., S) -> (..., S)``."""
    right = torch.roll(v, -1, -1)  # v_{j+1}
    left = torch.roll(v, 1, -1)  # v_{j-1}
    return (right.square() - left.square()) / (4.0 * dx) - nu * (right - 2.0 * v + left) / dx**2


def spatial_jacobian(v: torch.Tensor, dx: float, nu: float) -> torch.Tensor:
    """``dN/dv`` of :func:`spatial_operator`, dense and periodic: ``(..., S) -> (..., S, S)``."""
    size = v.shape[-1]
    eye = torch.eye(size, dtype=v.dtype, device=v.device)
    ahead = torch.roll(eye, 1, -1)  # ahead[j, j+1] = 1 (periodic)
    right, left = torch.roll(v, -1, -1), torch.roll(v, 1, -1)
    upper = right / (2.0 * dx) - nu / dx**2  # dN_j / dv_{j+1}
    lower = -left / (2.0 * dx) - nu / dx**2  # dN_j / dv_{j-1}
    return (
        (2.0 * nu / dx**2) * eye
        + torch.diag_embed(upper) @ ahead
        + torch.diag_embed(lower) @ ahead.transpose(-1, -2)
    )


class BurgersOperator:
    """``P = dR/du`` of the Crank-Nicolson residual with respect to the rows ``u[1..S-1]``
    (row 0 is the input), at fixed fields ``u`` ``(B, S, S)``: block lower bidiagonal, with
    ``J_m = dR[m]/du[m] = I/dt + N'(u[m])/2`` on the diagonal and
    ``C_m = dR[m]/du[m-1] = -I/dt + N'(u[m-1])/2`` below it. ``P^-1`` is forward substitution
    in time (one linearised implicit step per row), ``P^-T`` backward substitution."""

    def __init__(self, pde: Burgers, u: torch.Tensor) -> None:
        self.u = u.detach()
        self.dt, self.dx, self.nu = pde.dt, pde.dx, pde.params["nu"]

    def _blocks(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(J_m, C_m)``, each ``(B, S, S)``."""
        eye = torch.eye(self.u.shape[-1], dtype=self.u.dtype, device=self.u.device)
        j_m = eye / self.dt + 0.5 * spatial_jacobian(self.u[:, m], self.dx, self.nu)
        c_m = -eye / self.dt + 0.5 * spatial_jacobian(self.u[:, m - 1], self.dx, self.nu)
        return j_m, c_m

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        e = torch.zeros_like(r)
        for m in range(1, r.shape[-2]):
            j_m, c_m = self._blocks(m)
            rhs = r[:, m] if m == 1 else r[:, m] - (c_m @ e[:, m - 1, :, None])[..., 0]
            e[:, m] = torch.linalg.solve(j_m, rhs)
        return e

    def solve_transpose(self, g: torch.Tensor) -> torch.Tensor:
        y = torch.zeros_like(g)
        last = g.shape[-2] - 1
        below = None  # C_{m+1} of the row after m
        for m in range(last, 0, -1):
            j_m, c_m = self._blocks(m)
            rhs = g[:, m]
            if below is not None:
                rhs = rhs - (below.transpose(-1, -2) @ y[:, m + 1, :, None])[..., 0]
            y[:, m] = torch.linalg.solve(j_m.transpose(-1, -2), rhs)
            below = c_m
        return y


@register_pde
class Burgers(PDE):
    """1-D viscous Burgers on a periodic domain, stored as a space-time image."""

    name: ClassVar[str] = "burgers"
    channels: ClassVar[tuple[str, ...]] = ("u",)
    coefficient_channel: ClassVar[int] = 0
    solution_channel: ClassVar[int] = 0
    default_params: ClassVar[dict[str, float]] = {"nu": 0.01, "ic_scale": 0.5}
    #: Viscous Burgers: ``nu > 0``; the initial condition's amplitude ``ic_scale >= 0``.
    param_bounds: ClassVar[dict[str, tuple[float, bool]]] = {
        "nu": (0.0, True),
        "ic_scale": (0.0, False),
    }
    normalisation: ClassVar[Normalisation] = Normalisation(shift=(0.0,), scale=(0.5,))
    residual_scale: ClassVar[float] = 0.025  # E[u_t**2] of the data at 32^2
    grf_alpha: ClassVar[float] = 2.5
    grf_tau: ClassVar[float] = 7.0
    newton_tol: ClassVar[float] = 1e-13
    newton_max_iter: ClassVar[int] = 30
    #: A space-time image: rows ``t_n``, columns ``x_j`` (figure axes follow; the task masks
    #: are :meth:`observation_mask`'s).
    time_dependent: ClassVar[bool] = True
    axis_labels: ClassVar[tuple[str, str]] = ("t", "x")
    #: DiffusionPDE's weight of the one channel.
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...]] = (320.0,)

    @property
    def dt(self) -> float:
        return 1.0 / (self.resolution - 1)

    @property
    def dx(self) -> float:
        return 1.0 / self.resolution

    def sample_input(self, rng: np.random.Generator) -> np.ndarray:
        g = grf1d_periodic(rng, self.resolution, self.grf_alpha, self.grf_tau)
        return self.params["ic_scale"] * g

    def inputs_of(self, field: np.ndarray) -> np.ndarray:
        return np.asarray(field[0, 0], dtype=np.float64)

    def solution_of(self, field: np.ndarray) -> np.ndarray:
        return np.asarray(field[0], dtype=np.float64)

    def _step_residual(self, new: np.ndarray, old_term: np.ndarray) -> np.ndarray:
        """``(new - old)/dt + N(new)/2 + N(old)/2`` with ``old_term = -old/dt + N(old)/2``."""
        n_new = spatial_operator(torch.from_numpy(new), self.dx, self.params["nu"]).numpy()
        return new / self.dt + 0.5 * n_new + old_term

    def _step_jacobian(self, v: np.ndarray) -> np.ndarray:
        """Dense ``(S, S)`` Jacobian of the step residual with respect to ``u[n+1]``."""
        size, dx, nu = self.resolution, self.dx, self.params["nu"]
        jac = np.zeros((size, size))
        idx = np.arange(size)
        right, left = (idx + 1) % size, (idx - 1) % size
        jac[idx, idx] = 1.0 / self.dt + 0.5 * (2.0 * nu / dx**2)
        jac[idx, right] += 0.5 * (2.0 * v[right] / (4.0 * dx) - nu / dx**2)
        jac[idx, left] += 0.5 * (-2.0 * v[left] / (4.0 * dx) - nu / dx**2)
        return jac

    def solve(self, inputs: np.ndarray) -> np.ndarray:
        u0 = np.asarray(inputs, dtype=np.float64)
        if u0.shape != (self.resolution,):
            raise ValueError(f"initial condition must have shape ({self.resolution},)")
        field = np.empty((self.resolution, self.resolution))
        field[0] = u0
        for n in range(self.resolution - 1):
            old = field[n]
            old_n = spatial_operator(torch.from_numpy(old), self.dx, self.params["nu"]).numpy()
            old_term = -old / self.dt + 0.5 * old_n
            new = old.copy()
            scale = max(1.0, float(np.abs(old).max()) / self.dt)
            for _ in range(self.newton_max_iter):
                res = self._step_residual(new, old_term)
                if np.abs(res).max() <= self.newton_tol * scale:
                    break
                new = new - sla.solve(self._step_jacobian(new), res)
            else:
                raise RuntimeError(
                    f"Newton did not converge at step {n} (|R| = {np.abs(res).max():.2e})"
                )
            field[n + 1] = new
        return field[None]

    def observation_mask(
        self, task: Task, fraction: float, generator: torch.Generator
    ) -> torch.Tensor:
        """Burgers' tasks (docs/observations.md, "What each task observes"), bool ``(1, S, S)``:

        * ``forward``: the whole initial condition ``u(x, 0)`` (row 0), the solver's input
          (DiffusionPDE's data stores it as ``input``); ``fraction`` does not enter;
        * ``inverse``: :func:`sensor_count` random sensor columns ``x_j`` at all times
          (DiffusionPDE's ``random_sensor``); ``fraction`` does not enter;
        * ``reconstruct``: a random ``fraction`` of the space-time nodes.
        """
        size = self.resolution
        mask = torch.zeros(1, size, size, dtype=torch.bool)
        if task == "forward":
            mask[0, 0] = True
        elif task == "inverse":
            mask[0] = random_nodes(size, sensor_count(size), generator).expand(size, size)
        else:
            count = observed_count(fraction, size * size)
            mask[0] = random_nodes(size * size, count, generator).view(size, size)
        return mask

    def observation_label(self, task: Task, fraction: float) -> str:
        """``"u(x, 0), all 32 x"``, ``"2 sensors x all t"`` or ``"3 % of u(x, t)"``."""
        if task == "forward":
            return f"u(x, 0), all {self.resolution} x"
        if task == "inverse":
            return f"{sensor_count(self.resolution)} sensors x all t"
        return f"{100 * fraction:g} % of u(x, t)"

    def prior_mean(self) -> np.ndarray:
        """Exactly 0: the initial condition's GRF is stationary and symmetric (``g`` and
        ``-g(-x)`` are equally likely), and the scheme maps ``u0(x) -> -u0(-x)`` to
        ``u(x, t) -> -u(-x, t)`` (central differences are odd under the reflection), so the
        mean is constant in ``x`` and equal to its own negative."""
        return np.zeros((1, self.resolution, self.resolution))

    def equation_mask_numpy(self) -> np.ndarray:
        mask = np.ones((self.resolution, self.resolution), dtype=bool)
        mask[0] = False
        return mask

    def without_solution(self, x: torch.Tensor) -> torch.Tensor:
        """The zero field of the same initial condition: rows ``1..S-1`` set to 0."""
        out = x.clone()
        out[:, :, 1:] = 0
        return out

    def linearised_operator(self, x: torch.Tensor) -> BurgersOperator:
        return BurgersOperator(self, x[:, 0])

    def residual(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        self.check_fields(x)
        u = x[:, 0]
        nu = self.params["nu"]
        ops = spatial_operator(u, self.dx, nu)
        steps = (u[:, 1:] - u[:, :-1]) / self.dt + 0.5 * (ops[:, 1:] + ops[:, :-1])
        if source is not None:
            s = torch.as_tensor(source, dtype=x.dtype, device=x.device).expand(u.shape)
            steps = steps - 0.5 * (s[:, 1:] + s[:, :-1])
        return torch.nn.functional.pad(steps, (0, 0, 1, 0))

    def manufactured_solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``u = 0.5 sin(2 pi x) e^-t + 0.1 cos(2 pi x)`` on the space-time grid and the source
        ``s = u_t + u u_x - nu u_xx``: ``x`` ``(1, 1, S, S)``, ``s`` ``(S, S)``."""
        t = torch.linspace(0.0, 1.0, self.resolution, dtype=torch.float64)
        x = torch.arange(self.resolution, dtype=torch.float64) / self.resolution
        tt, xx = torch.meshgrid(t, x, indexing="ij")
        decay = torch.exp(-tt)
        sin, cos = torch.sin(2 * math.pi * xx), torch.cos(2 * math.pi * xx)
        u = 0.5 * sin * decay + 0.1 * cos
        u_t = -0.5 * sin * decay
        u_x = math.pi * cos * decay - 0.2 * math.pi * sin
        u_xx = -2.0 * math.pi**2 * sin * decay - 0.4 * math.pi**2 * cos
        return u[None, None], u_t + u * u_x - self.params["nu"] * u_xx
