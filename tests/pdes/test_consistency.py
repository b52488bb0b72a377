"""The consistency principle: solver output satisfies the residual operator to round-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piddm.pdes import PDE_REGISTRY, available_pdes, get_pde
from piddm.pdes.elliptic import DirichletPDE

RESOLUTIONS = (16, 33)
#: The PDEs on the unit square with ``u = 0`` on the boundary (fields ``[a, u]``).
DIRICHLET = [name for name in available_pdes() if issubclass(PDE_REGISTRY[name], DirichletPDE)]


def relative_residual(name: str, resolution: int, n: int = 4) -> float:
    """max over samples of |R(solver data)| / |R(data + 1 % noise)| (RMS norms), float64."""
    pde = get_pde(name, resolution)
    x = torch.from_numpy(np.stack([pde.generate(seed) for seed in range(n)]))
    noise = (
        0.01
        * x.std(dim=(0, 2, 3), keepdim=True)
        * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    )
    exact = pde.mean_squared_residual(x).sqrt()
    perturbed = pde.mean_squared_residual(x + noise).sqrt()
    return float((exact / perturbed).max())


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("name", available_pdes())
def test_solver_data_has_residual_at_solver_tolerance(name: str, resolution: int) -> None:
    assert relative_residual(name, resolution) <= 1e-8


def test_the_package_registers_its_pdes() -> None:
    assert set(available_pdes()) >= {"darcy", "poisson", "helmholtz", "burgers"}


@pytest.mark.parametrize("name", DIRICHLET)
def test_dirichlet_violation_is_part_of_the_residual(name: str) -> None:
    pde = get_pde(name, 16)
    x = torch.from_numpy(pde.generate(1))[None]
    shifted = x.clone()
    shifted[:, 1, 0, 5] += 1e-3  # one boundary value off
    r = pde.residual(shifted)
    assert r[0, 0, 5].abs() > 1e-3 / pde.h**2 * 0.99
    assert pde.mean_squared_residual(shifted) > 1e6 * pde.mean_squared_residual(x)


def test_burgers_first_row_is_the_free_initial_condition() -> None:
    pde = get_pde("burgers", 16)
    x = torch.from_numpy(pde.generate(3))[None]
    assert not pde.equation_mask()[0].any()
    assert torch.equal(pde.residual(x)[0, 0], torch.zeros(16, dtype=x.dtype))
    np.testing.assert_array_equal(pde.inputs_of(x[0].numpy()), x[0, 0, 0].numpy())


@pytest.mark.parametrize("name", available_pdes())
def test_solver_is_deterministic_and_seed_sensitive(name: str) -> None:
    pde = get_pde(name, 16)
    np.testing.assert_array_equal(pde.generate(7), pde.generate(7))
    assert not np.allclose(pde.generate(7), pde.generate(8))


@pytest.mark.parametrize("name", available_pdes())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_residual_is_batched_in_any_dtype(name: str, dtype: torch.dtype) -> None:
    pde = get_pde(name, 16)
    batch = torch.from_numpy(np.stack([pde.generate(s) for s in range(5)])).to(dtype)
    together = pde.residual(batch)
    apart = torch.cat([pde.residual(batch[i : i + 1]) for i in range(5)])
    assert together.shape == (5, 16, 16) and together.dtype == dtype
    torch.testing.assert_close(together, apart)


def test_darcy_coefficient_is_two_phase_from_the_grf_sign() -> None:
    pde = get_pde("darcy", 32)
    a = pde.sample_input(np.random.default_rng(0))
    g = pde.sample_grf(np.random.default_rng(0))
    np.testing.assert_array_equal(a, np.where(g >= 0, 12.0, 3.0))


def test_helmholtz_wave_number_enters_the_solution() -> None:
    a = get_pde("helmholtz", 16, k=1.0).generate(0)
    b = get_pde("helmholtz", 16, k=3.0).generate(0)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])


def test_residual_rejects_wrong_shapes() -> None:
    from piddm.errors import PiddmError

    pde = get_pde("darcy", 16)
    with pytest.raises(PiddmError, match="shape"):
        pde.residual(torch.zeros(2, 1, 16, 16))
