"""Helmholtz: ``lap u + k**2 u = a`` on the unit square, ``u = 0`` on the boundary.

``a ~ GRF(2, 3)``.

Discretisation: 5-point Laplacian (:mod:`piddm.pdes.stencil`) plus ``k**2 u`` at the node;
boundary rows ``u / h**2``. ``k`` must stay away from the Dirichlet eigenvalues
(``k**2 != pi**2 (m**2 + n**2)``; the default ``k = 1`` is far below the first, ``2 pi**2``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from piddm.pdes.base import Normalisation
from piddm.pdes.elliptic import (
    DirichletPDE,
    manufactured_dirichlet_solution,
    shifted_laplacian_factor,
)
from piddm.pdes.frozen_solve import solve_shifted_laplacian
from piddm.pdes.registry import register_pde
from piddm.pdes.stencil import laplacian


@register_pde
class Helmholtz(DirichletPDE):
    """Helmholtz equation with a GRF source and wave number ``k``."""

    name: ClassVar[str] = "helmholtz"
    default_params: ClassVar[dict[str, float]] = {"k": 1.0}
    normalisation: ClassVar[Normalisation] = Normalisation(shift=(0.0, 0.0), scale=(1.0, 0.02))
    residual_scale: ClassVar[float] = 0.1
    linear_gaussian: ClassVar[bool] = True
    #: DiffusionPDE's weights (coefficient: forward problem, solution: inverse problem).
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...]] = (0.8, 60.0)

    def sample_input(self, rng: np.random.Generator) -> np.ndarray:
        return self.sample_grf(rng)

    def solve(self, inputs: np.ndarray) -> np.ndarray:
        a = np.asarray(inputs, dtype=np.float64)
        k2 = self.params["k"] ** 2
        # lap u + k^2 u = a  <=>  (-lap - k^2 I) u = -a
        u = shifted_laplacian_factor(self.resolution, k2).solve(-a[1:-1, 1:-1].ravel())
        return self.pack(a, u)

    def interior_solver(self, a: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The interior operator's exact inverse by the sine transform (any device)."""
        return lambda rhs: solve_shifted_laplacian(rhs, self.h, self.params["k"] ** 2)

    def interior_residual(
        self, a: torch.Tensor, u: torch.Tensor, source: torch.Tensor | None
    ) -> torch.Tensor:
        rhs = a[..., 1:-1, 1:-1] if source is None else source
        k2 = self.params["k"] ** 2
        return laplacian(u, self.h) + k2 * u[..., 1:-1, 1:-1] - rhs

    def manufactured_solution(self) -> tuple[torch.Tensor, None]:
        """``u = sin(pi x) sin(2 pi y) exp(x)`` with the exact source ``a = lap u + k**2 u`` in
        channel 0: ``x`` ``(1, 2, S, S)``, no separate source."""
        u, lap_u = manufactured_dirichlet_solution(self.resolution)
        return torch.stack([lap_u + self.params["k"] ** 2 * u, u])[None], None
