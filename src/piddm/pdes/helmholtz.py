"""Helmholtz: ``lap u + k**2 u = a`` on the unit square, ``u = 0`` on the boundary.

``a ~ GRF(2, 3)``.

Discretisation: 5-point Laplacian (:mod:`piddm.pdes.stencil`) plus ``k**2 u`` at the node;
boundary rows ``u / h**2`` (:class:`~piddm.pdes.elliptic.ShiftedLaplacianPDE` with
``shift = k**2``). ``k`` must stay away from the Dirichlet eigenvalues
(``k**2 != pi**2 (m**2 + n**2)``; the default ``k = 1`` is far below the first, ``2 pi**2``).
"""

from __future__ import annotations

from typing import ClassVar

from piddm.pdes.elliptic import ShiftedLaplacianPDE
from piddm.pdes.registry import register_pde


@register_pde
class Helmholtz(ShiftedLaplacianPDE):
    """Helmholtz equation with a GRF source and wave number ``k``."""

    name: ClassVar[str] = "helmholtz"
    default_params: ClassVar[dict[str, float]] = {"k": 1.0}
    #: DiffusionPDE's weights (coefficient: forward problem, solution: inverse problem).
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...]] = (0.8, 60.0)

    @property
    def shift(self) -> float:
        return self.params["k"] ** 2
