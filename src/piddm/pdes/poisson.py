"""Poisson: ``lap u = a`` on the unit square, ``u = 0`` on the boundary, ``a ~ GRF(2, 3)``.

Discretisation: 5-point Laplacian (:mod:`piddm.pdes.stencil`); boundary rows ``u / h**2``
(:class:`~piddm.pdes.elliptic.ShiftedLaplacianPDE` with ``shift = 0``). The matrix does not
depend on the sample, so its factorisation is computed once per size.
"""

from __future__ import annotations

from typing import ClassVar

from piddm.pdes.elliptic import ShiftedLaplacianPDE
from piddm.pdes.registry import register_pde


@register_pde
class Poisson(ShiftedLaplacianPDE):
    """Poisson equation with a GRF source."""

    name: ClassVar[str] = "poisson"
    #: DiffusionPDE's weights (coefficient: forward problem, solution: inverse problem).
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...]] = (0.8, 40.0)

    @property
    def shift(self) -> float:
        return 0.0
