"""Darcy flow: ``-div(a grad u) = f`` on the unit square, ``u = 0`` on the boundary.

``a = 12`` where ``g >= 0`` and ``3`` elsewhere, ``g ~ GRF(alpha=2, tau=3)``; ``f = 1``.
Discretisation: conservative 5-point stencil with arithmetic-mean face coefficients
(:mod:`piddm.pdes.stencil`); the boundary rows of the residual are ``a u / h**2``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from piddm.errors import PiddmError
from piddm.pdes.base import Normalisation
from piddm.pdes.elliptic import PI, DirichletPDE, factorise, unit_square_grid
from piddm.pdes.registry import register_pde
from piddm.pdes.stencil import div_a_grad, neg_div_a_grad_matrix


@register_pde
class Darcy(DirichletPDE):
    """Darcy flow with a binary (two-phase) permeability."""

    name: ClassVar[str] = "darcy"
    default_params: ClassVar[dict[str, float]] = {"forcing": 1.0, "a_high": 12.0, "a_low": 3.0}
    normalisation: ClassVar[Normalisation] = Normalisation(shift=(7.5, 0.0), scale=(4.5, 0.012))
    residual_scale: ClassVar[float] = 1.0  # f**2 with f = 1
    #: DiffusionPDE's weights (coefficient: forward problem, solution: inverse problem).
    diffusionpde_zeta_obs: ClassVar[tuple[float, ...]] = (5.0, 3000.0)
    #: Both phases must be positive (an elliptic operator).
    param_bounds: ClassVar[dict[str, tuple[float, bool]]] = {
        "a_high": (0.0, True),
        "a_low": (0.0, True),
    }

    @property
    def threshold(self) -> float:  # type: ignore[override]
        """The midpoint of the two phases (7.5 by default): classifies a generated ``a``."""
        return 0.5 * (self.params["a_low"] + self.params["a_high"])

    def check_params(self) -> None:
        if self.params["a_low"] > self.params["a_high"]:
            raise PiddmError(
                f"parameter a_low of PDE 'darcy' ({self.params['a_low']:g}) must not exceed "
                f"a_high ({self.params['a_high']:g})"
            )

    def sample_input(self, rng: np.random.Generator) -> np.ndarray:
        g = self.sample_grf(rng)
        return np.where(g >= 0.0, self.params["a_high"], self.params["a_low"])

    def solve(self, inputs: np.ndarray) -> np.ndarray:
        a = np.asarray(inputs, dtype=np.float64)
        n_unknowns = (self.resolution - 2) ** 2
        rhs = np.full(n_unknowns, self.params["forcing"])
        u = factorise(neg_div_a_grad_matrix(a, self.h)).solve(rhs)
        return self.pack(a, u)

    def admissible_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """The two-phase medium a generated permeability stands for: each node takes the
        nearer phase (``a_high`` at or above the midpoint of the phases, ``a_low`` below), as
        the error rate classifies it. A sample whose coefficient lies between the phases is
        held to the medium it represents, not to a blurred one (docs/concepts.md)."""
        a = np.asarray(inputs, dtype=np.float64)
        return np.where(a >= self.threshold, self.params["a_high"], self.params["a_low"])

    def operator_coefficient(self, a: torch.Tensor) -> torch.Tensor:
        """:meth:`admissible_inputs` in torch, with the gradient of ``a`` clipped to
        ``[a_low, a_high]`` (straight-through: the projection's own gradient is zero)."""
        low, high = self.params["a_low"], self.params["a_high"]
        clipped = a.clamp(low, high)
        phases = torch.where(a >= self.threshold, high, low).to(a.dtype)
        return clipped + (phases - clipped).detach()

    def interior_solver(self, a: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """``-div(a grad .)`` factorised once per sample (sparse LU, on the CPU)."""
        coefficients = a.detach().cpu().double().numpy()
        factors = [factorise(neg_div_a_grad_matrix(c, self.h)) for c in coefficients]

        def solve(rhs: torch.Tensor) -> torch.Tensor:
            flat = rhs.detach().cpu().double().numpy().reshape(len(factors), -1)
            out = np.stack([f.solve(v) for f, v in zip(factors, flat, strict=True)])
            return torch.from_numpy(out.reshape(rhs.shape)).to(rhs)

        return solve

    def boundary_weight(self, a: torch.Tensor) -> torch.Tensor:
        return a / self.h**2

    def interior_residual(
        self, a: torch.Tensor, u: torch.Tensor, source: torch.Tensor | None
    ) -> torch.Tensor:
        forcing = self.params["forcing"] if source is None else source
        return -div_a_grad(a, u, self.h) - forcing

    def manufactured_solution(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``u = sin(pi x) sin(pi y)``, ``a = 2 + cos(pi x + 0.3) cos(pi y)`` and the source
        ``s = -div(a grad u) = -(a_x u_x + a_y u_y + a lap u)``: ``x`` ``(1, 2, S, S)``,
        ``s`` ``(S, S)``."""
        x, y = unit_square_grid(self.resolution)
        u = torch.sin(PI * x) * torch.sin(PI * y)
        a = 2.0 + torch.cos(PI * x + 0.3) * torch.cos(PI * y)
        a_x = -PI * torch.sin(PI * x + 0.3) * torch.cos(PI * y)
        a_y = -PI * torch.cos(PI * x + 0.3) * torch.sin(PI * y)
        u_x = PI * torch.cos(PI * x) * torch.sin(PI * y)
        u_y = PI * torch.sin(PI * x) * torch.cos(PI * y)
        source = -(a_x * u_x + a_y * u_y + a * (-2.0 * PI**2 * u))
        return torch.stack([a, u])[None], source
