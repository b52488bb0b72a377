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

from typing import ClassVar

import numpy as np
import scipy.linalg as sla
import torch

from piddm.pdes.base import PDE, Normalisation
from piddm.pdes.grf import grf1d_periodic
from piddm.pdes.registry import register_pde


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
