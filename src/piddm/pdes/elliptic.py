"""Shared pieces of the Dirichlet problems on the unit square (Darcy, Poisson, Helmholtz)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from piddm.pdes.base import PDE, Normalisation, dirichlet_residual_map
from piddm.pdes.frozen_solve import LinearSolver, solve_shifted_laplacian
from piddm.pdes.grf import grf2d
from piddm.pdes.stencil import laplacian, neg_laplacian_matrix

PI = math.pi


def factorise(matrix: sp.csc_matrix) -> spla.SuperLU:
    """Sparse LU of a symmetric matrix with a symmetric fill-reducing ordering."""
    # MMD on A^T + A with symmetric mode: measured ~1.5x faster than COLAMD on 5-point systems.
    return spla.splu(
        matrix, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )


@lru_cache(maxsize=8)
def shifted_laplacian_factor(resolution: int, shift: float) -> spla.SuperLU:
    """LU of ``-lap - shift * I`` on the interior unknowns, cached per (size, shift)."""
    matrix = neg_laplacian_matrix(resolution)
    identity = sp.identity(matrix.shape[0], format="csc")
    return factorise((matrix - shift * identity).tocsc())


def unit_square_grid(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Node coordinates ``(x, y)`` of the unit square, each ``(S, S)`` float64:
    ``x[i, j] = i h``, ``y[i, j] = j h`` (boundary nodes included)."""
    nodes = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64)
    x, y = torch.meshgrid(nodes, nodes, indexing="ij")
    return x, y


def manufactured_dirichlet_solution(resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``u = sin(pi x) sin(2 pi y) exp(x)`` (zero on the boundary) and its exact Laplacian
    ``lap u = (u_xx + u_yy)``, each ``(S, S)`` float64: the manufactured solution of the
    constant-coefficient problems (Poisson, Helmholtz)."""
    x, y = unit_square_grid(resolution)
    s, c = torch.sin(PI * x), torch.cos(PI * x)
    e = torch.exp(x)
    sy = torch.sin(2.0 * PI * y)
    u = s * sy * e
    u_xx = (-(PI**2) * s + 2.0 * PI * c + s) * e * sy
    u_yy = -4.0 * PI**2 * u
    return u, u_xx + u_yy


class DirichletPDE(PDE):
    """Two channels ``[a, u]``: a GRF-based coefficient ``a``, and ``u = 0`` on the boundary.

    The residual map holds the PDE residual at interior nodes and the Dirichlet violation
    ``boundary_weight(a) * u`` at boundary nodes; every node carries an equation.
    """

    channels: ClassVar[tuple[str, ...]] = ("a", "u")
    grf_alpha: ClassVar[float] = 2.0
    grf_tau: ClassVar[float] = 3.0

    def sample_grf(self, rng: np.random.Generator) -> np.ndarray:
        """The underlying GRF ``g`` ``(S, S)`` (docs/method.md, "Gaussian random fields")."""
        return grf2d(rng, self.resolution, self.grf_alpha, self.grf_tau)

    def equation_mask_numpy(self) -> np.ndarray:
        return np.ones((self.resolution, self.resolution), dtype=bool)

    def boundary_weight(self, a: torch.Tensor) -> torch.Tensor | float:
        """Weight of the Dirichlet violation: ``1/h**2`` by default."""
        return 1.0 / self.h**2

    def interior_residual(
        self, a: torch.Tensor, u: torch.Tensor, source: torch.Tensor | None
    ) -> torch.Tensor:
        """PDE residual at interior nodes, ``(B, S-2, S-2)``."""
        raise NotImplementedError

    def residual(self, x: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        self.check_fields(x)
        a, u = x[:, 0], x[:, 1]
        if source is not None:
            source = torch.as_tensor(source, dtype=x.dtype, device=x.device)
            source = source.expand(a.shape)[..., 1:-1, 1:-1]
        return dirichlet_residual_map(
            self.interior_residual(a, u, source), u, self.boundary_weight(a)
        )

    def interior_solver(self, a: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``rhs -> L^-1 rhs`` on the interior ``(B, S-2, S-2)``, where ``L`` is the (symmetric)
        interior operator of :meth:`interior_residual` for coefficients ``a`` ``(B, S, S)``."""
        raise NotImplementedError

    def operator_coefficient(self, a: torch.Tensor) -> torch.Tensor:
        """:meth:`PDE.admissible_inputs` of coefficients ``a`` ``(B, S, S)`` in torch: the
        coefficient whose operator the physics measures use; ``a`` itself unless a PDE
        overrides it (Darcy: the two-phase medium)."""
        return a

    def admissible_field(self, x: torch.Tensor) -> torch.Tensor:
        a = x[:, 0]
        admissible = self.operator_coefficient(a)
        if admissible is a:
            return x
        return torch.cat([admissible[:, None], x[:, 1:]], dim=1)

    def linearised_operator(self, x: torch.Tensor) -> LinearSolver:
        return DirichletOperator(self, self.operator_coefficient(x[:, 0]))

    def pack(self, a: np.ndarray, u_interior: np.ndarray) -> np.ndarray:
        """``(2, S, S)`` float64 field from the coefficient and the interior solution vector."""
        u = np.zeros_like(a)
        u[1:-1, 1:-1] = u_interior.reshape(self.resolution - 2, self.resolution - 2)
        return np.stack([a, u])


class ShiftedLaplacianPDE(DirichletPDE):
    """``lap u + shift u = a`` with a GRF source ``a``, ``u = 0`` on the boundary: Poisson
    (``shift = 0``) and Helmholtz (``shift = k**2``); subclasses define :attr:`shift`.

    Discretisation: 5-point Laplacian (:mod:`piddm.pdes.stencil`) plus ``shift u`` at the node;
    boundary rows ``u / h**2``. The matrix does not depend on the sample, so its factorisation
    is computed once per (size, shift). ``shift`` must not be a Dirichlet eigenvalue
    ``pi**2 (m**2 + n**2)``.
    """

    normalisation: ClassVar[Normalisation] = Normalisation(shift=(0.0, 0.0), scale=(1.0, 0.02))
    residual_scale: ClassVar[float] = 0.1
    linear_gaussian: ClassVar[bool] = True

    @property
    def shift(self) -> float:
        """The coefficient of ``u`` in the equation."""
        raise NotImplementedError

    def sample_input(self, rng: np.random.Generator) -> np.ndarray:
        return self.sample_grf(rng)

    def solve(self, inputs: np.ndarray) -> np.ndarray:
        a = np.asarray(inputs, dtype=np.float64)
        # lap u + shift u = a  <=>  (-lap - shift I) u = -a
        u = shifted_laplacian_factor(self.resolution, self.shift).solve(-a[1:-1, 1:-1].ravel())
        return self.pack(a, u)

    def interior_solver(self, a: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The interior operator's exact inverse by the sine transform (any device)."""
        return lambda rhs: solve_shifted_laplacian(rhs, self.h, self.shift)

    def interior_residual(
        self, a: torch.Tensor, u: torch.Tensor, source: torch.Tensor | None
    ) -> torch.Tensor:
        rhs = a[..., 1:-1, 1:-1] if source is None else source
        operator = laplacian(u, self.h)
        if self.shift:  # Poisson: no ``0 * u`` term, its residual stays exactly ``lap u - a``
            operator = operator + self.shift * u[..., 1:-1, 1:-1]
        return operator - rhs

    def manufactured_solution(self) -> tuple[torch.Tensor, None]:
        """``u = sin(pi x) sin(2 pi y) exp(x)`` with the exact source ``a = lap u + shift u``
        in channel 0: ``x`` ``(1, 2, S, S)``, no separate source."""
        u, lap_u = manufactured_dirichlet_solution(self.resolution)
        source = lap_u + self.shift * u if self.shift else lap_u
        return torch.stack([source, u])[None], None


class DirichletOperator:
    """``P = dR/du`` of a :class:`DirichletPDE` for fixed coefficients ``a`` ``(B, S, S)``.

    With interior nodes ``I`` and boundary nodes ``b``, the residual map is
    ``R_I = L_II u_I + L_Ib u_b - f`` and ``R_b = W u_b`` (``W`` the boundary weight), so
    ``P = [[L_II, L_Ib], [0, W]]`` and ``P^-1 r`` is ``e_b = r_b / W``, then
    ``e_I = L_II^-1 (r_I - L_Ib e_b)``. ``L_II`` is symmetric; the coupling ``L_Ib`` and its
    transpose come from the PDE's own stencil (:meth:`DirichletPDE.interior_residual` with zero
    source, which is linear in ``u``), so no second copy of the discretisation exists.
    ``a`` is :meth:`DirichletPDE.operator_coefficient` of the field's coefficient, the one
    the solver consistency solves with (Darcy: the two-phase medium), and the residual is taken
    with the same coefficient (:meth:`PDE.admissible_field`), so ``P^-1 R`` is exactly
    ``u - u*`` for every generated coefficient.
    """

    def __init__(self, pde: DirichletPDE, a: torch.Tensor) -> None:
        self.pde, self.a = pde, a.detach()
        self.interior_solve = pde.interior_solver(self.a)
        size = a.shape[-1]
        frame = torch.ones(size, size, dtype=a.dtype, device=a.device)
        frame[1:-1, 1:-1] = 0
        self.frame = frame
        self.weight = pde.boundary_weight(self.a)
        self.zero_source = torch.zeros_like(self.a[..., 1:-1, 1:-1])

    def _coupling(self, u: torch.Tensor) -> torch.Tensor:
        """``L u`` at the interior nodes (no source): ``(B, S, S) -> (B, S-2, S-2)``."""
        return self.pde.interior_residual(self.a, u, self.zero_source)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        e_b = r * self.frame / self.weight
        e_i = self.interior_solve(r[..., 1:-1, 1:-1] - self._coupling(e_b))
        return e_b + torch.nn.functional.pad(e_i, (1, 1, 1, 1))

    def solve_transpose(self, g: torch.Tensor) -> torch.Tensor:
        y_i = self.interior_solve(g[..., 1:-1, 1:-1])
        with torch.enable_grad():
            probe = torch.zeros_like(g, requires_grad=True)
            (coupled,) = torch.autograd.grad(self._coupling(probe), probe, y_i)
        y_b = (g - coupled) * self.frame / self.weight
        return y_b + torch.nn.functional.pad(y_i, (1, 1, 1, 1))
