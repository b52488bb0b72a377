"""The shifted-Laplacian family (:class:`piddm.pdes.elliptic.ShiftedLaplacianPDE`): Poisson and
Helmholtz are one solver, residual and manufactured solution with their own ``shift``."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from piddm.pdes import get_pde
from piddm.pdes.elliptic import ShiftedLaplacianPDE


class NegativeShift(ShiftedLaplacianPDE):
    """``lap u - 3 u = a``: a member of the family that no registered PDE is (not registered)."""

    name: ClassVar[str] = "negative-shift"

    @property
    def shift(self) -> float:
        return -3.0


@pytest.mark.parametrize(("name", "shift"), [("poisson", 0.0), ("helmholtz", 4.0)])
def test_poisson_and_helmholtz_are_the_family_with_their_shift(name: str, shift: float) -> None:
    params = {"k": 2.0} if name == "helmholtz" else {}
    pde = get_pde(name, 16, **params)
    assert isinstance(pde, ShiftedLaplacianPDE) and pde.shift == shift


def test_helmholtz_with_k_zero_is_poisson() -> None:
    poisson, helmholtz = get_pde("poisson", 16), get_pde("helmholtz", 16, k=0.0)
    fields = np.stack([poisson.generate(seed) for seed in range(2)])
    np.testing.assert_array_equal(np.stack([helmholtz.generate(s) for s in range(2)]), fields)
    x = torch.from_numpy(fields)
    x[:, 1] *= 1.01  # off the solution: a non-zero residual
    torch.testing.assert_close(helmholtz.residual(x), poisson.residual(x), rtol=0, atol=0)


@pytest.mark.parametrize("resolution", [16, 33])
def test_a_new_member_solves_its_own_equation(resolution: int) -> None:
    pde = NegativeShift(resolution)
    x = torch.from_numpy(np.stack([pde.generate(seed) for seed in range(2)]))
    off = x.clone()
    off[:, 1] *= 1.01  # 1 % off the solution: the residual is 1 % of the source
    scale = pde.mean_squared_residual(off).sqrt()
    assert float((pde.mean_squared_residual(x).sqrt() / scale).max()) < 1e-8
    manufactured, _ = pde.manufactured_solution()
    interior = pde.residual(manufactured)[..., 1:-1, 1:-1]
    assert float(interior.abs().max()) < 0.2 * float(manufactured[:, 0].abs().max())  # O(h^2)
