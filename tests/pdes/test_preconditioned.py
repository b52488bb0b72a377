"""The preconditioned residual ``P^-1 R(x)``: zero on solver data, the solution error it
stands for on perturbed fields (exactly for the linear PDEs), and the Newton direction as
its gradient (docs/concepts.md, "Physics measures")."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE, available_pdes, get_pde
from piddm.pdes.elliptic import DirichletPDE
from piddm.pdes.frozen_solve import dst1, frozen_solve, solve_shifted_laplacian

LINEAR = [name for name in available_pdes() if issubclass(type(get_pde(name, 8)), DirichletPDE)]


def solver_fields(pde: PDE, n: int = 3) -> torch.Tensor:
    return torch.from_numpy(np.stack([pde.generate(seed) for seed in range(n)]))


def perturbed(pde: PDE, x: torch.Tensor, amplitude: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with its solution moved by ``delta`` on the equation nodes; ``(x + delta, delta)``
    with ``delta`` ``(N, S, S)`` of RMS ``amplitude`` times the solution's RMS."""
    c = pde.solution_channel
    scale = float(x[:, c].square().mean().sqrt())
    noise = torch.randn(x[:, c].shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    delta = amplitude * scale * noise * pde.equation_mask().to(x.dtype)
    out = x.clone()
    out[:, c] += delta
    return out, delta


def squared_error(pde: PDE, delta: torch.Tensor) -> torch.Tensor:
    mask = pde.equation_mask().to(delta.dtype)
    return delta.square().sum(dim=(-2, -1)) / mask.sum()


@pytest.mark.parametrize("name", available_pdes())
def test_solver_data_has_preconditioned_residual_at_round_off(name: str) -> None:
    pde = get_pde(name, 24)
    x = solver_fields(pde)
    u_scale = float(x[:, pde.solution_channel].square().mean())
    assert float(pde.preconditioned_residual(x).max()) < 1e-24 * u_scale


@pytest.mark.parametrize("name", LINEAR)
def test_linear_pdes_give_the_squared_solution_error_exactly(name: str) -> None:
    pde = get_pde(name, 24)
    x, delta = perturbed(pde, solver_fields(pde), 0.3)
    value = pde.preconditioned_residual(x)
    torch.testing.assert_close(value, squared_error(pde, delta), rtol=1e-10, atol=0)
    # ... which is the solver consistency's numerator: |u - solve(own a)|^2 per node.
    for field, v in zip(x.numpy(), value, strict=True):
        solved = pde.solution_of(pde.solve_own_input(field))
        expected = np.mean((pde.solution_of(field) - solved) ** 2)
        assert float(v) == pytest.approx(expected, rel=1e-10)


def test_a_generated_darcy_coefficient_is_held_to_its_two_phase_medium() -> None:
    """A coefficient between the phases is measured against the medium it stands for (each
    node's nearer phase), exactly: the preconditioned residual, the solver consistency's
    numerator and the relative residual all agree, and blurring the interfaces earns
    nothing."""
    pde = get_pde("darcy", 24)
    x = solver_fields(pde)
    low, high = pde.params["a_low"], pde.params["a_high"]
    noise = 2.0 * torch.randn(x[:, 0].shape, generator=torch.Generator().manual_seed(1))
    blurred = x.clone()
    blurred[:, 0] = (x[:, 0] + noise).clamp(low, high)
    phases = np.where(blurred[:, 0].numpy() >= 0.5 * (low + high), high, low)
    assert 0 < np.mean(phases != x[:, 0].numpy()) < 0.3  # some nodes changed phase
    for field, medium, value in zip(
        blurred.numpy(), phases, pde.preconditioned_residual(blurred), strict=True
    ):
        own = pde.solve(medium)
        expected = np.mean((field[1] - own[1]) ** 2)
        assert float(value) == pytest.approx(expected, rel=1e-10)
        assert np.array_equal(pde.admissible_inputs(field[0]), medium)
        solved = pde.solve_own_input(field)
        assert np.array_equal(solved[1], own[1])
    # The solver's solution of the medium has zero relative residual and solution error.
    fixed = torch.from_numpy(np.stack([pde.solve_own_input(f) for f in blurred.numpy()]))
    fixed[:, 0] = blurred[:, 0]
    assert float(pde.relative_residual(fixed).max()) < 1e-10
    assert float(pde.preconditioned_residual(fixed).max()) < 1e-24
    # A field consistent with its blurred coefficient itself is not consistent with its medium.
    blur_solved = np.stack([pde.solve(f[0]) for f in blurred.numpy()])
    gap = np.mean((blur_solved[:, 1] - fixed[:, 1].numpy()) ** 2, axis=(-2, -1))
    value = pde.preconditioned_residual(torch.from_numpy(blur_solved))
    np.testing.assert_allclose(value.numpy(), gap, rtol=1e-8)
    assert float(value.min()) > 1e-4 * float(fixed[:, 1].square().mean())


def test_darcy_physics_gradient_reaches_the_coefficient_straight_through() -> None:
    """The projection's own gradient is zero; the coefficient gets the clipped one's."""
    pde = get_pde("darcy", 16)
    x, _ = perturbed(pde, solver_fields(pde, 2), 0.2)
    x.requires_grad_(True)
    pde.preconditioned_residual(x).sum().backward()
    assert x.grad is not None and float(x.grad[:, 0].abs().max()) > 0


@pytest.mark.parametrize("name", available_pdes())
def test_nonlinear_value_is_the_squared_error_to_first_order(name: str) -> None:
    pde = get_pde(name, 24)
    x = solver_fields(pde)
    gaps = []
    for amplitude in (1e-2, 1e-3):
        moved, delta = perturbed(pde, x, amplitude)
        ratio = pde.preconditioned_residual(moved) / squared_error(pde, delta)
        gaps.append(float((ratio - 1).abs().max()))
    assert gaps[1] < 1e-3
    assert gaps[1] < 1e-9 or gaps[1] < 0.2 * gaps[0], gaps  # exact, or an O(delta) error


@pytest.mark.parametrize("name", available_pdes())
def test_gradient_to_the_solution_is_the_newton_direction(name: str) -> None:
    """With P held fixed, d(|e|^2 / 2)/du = P^T P^-T e = e on the equation nodes."""
    pde = get_pde(name, 16)
    x, _ = perturbed(pde, solver_fields(pde, 2), 0.2)
    x.requires_grad_(True)
    e = pde.solution_error(x)
    (grad,) = torch.autograd.grad(0.5 * e.square().sum(), x)
    mask = pde.equation_mask()
    torch.testing.assert_close(
        grad[:, pde.solution_channel][:, mask], e.detach()[:, mask], rtol=1e-9, atol=1e-14
    )


@pytest.mark.parametrize("name", available_pdes())
def test_transpose_solve_is_the_adjoint(name: str) -> None:
    """``P^-T`` of the backward pass is the adjoint of ``P^-1`` (gradcheck of the solve)."""
    pde = get_pde(name, 8)
    x, _ = perturbed(pde, solver_fields(pde, 1), 0.2)
    operator = pde.linearised_operator(x)
    r = torch.randn(1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    r = (r * pde.equation_mask().to(r.dtype)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: frozen_solve(v, operator), (r,))


def test_sine_transform_matches_scipy_and_inverts_the_laplacian() -> None:
    x = torch.randn(3, 7, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for dim in (-1, -2):
        expected = scipy.fft.dst(x.numpy(), type=1, axis=dim) / 2
        torch.testing.assert_close(dst1(x, dim), torch.from_numpy(expected))
    pde = get_pde("helmholtz", 12)
    u = torch.zeros(2, 12, 12, dtype=torch.float64)
    u[:, 1:-1, 1:-1] = torch.randn(2, 10, 10, dtype=torch.float64)
    field = torch.stack([torch.zeros_like(u), u], dim=1)
    lap_u = pde.interior_residual(field[:, 0], u, torch.zeros(2, 10, 10, dtype=torch.float64))
    torch.testing.assert_close(solve_shifted_laplacian(lap_u, pde.h, 1.0), u[:, 1:-1, 1:-1])


def test_physics_term_names_its_norms() -> None:
    pde = get_pde("poisson", 16)
    x = solver_fields(pde, 1)
    moved, _ = perturbed(pde, x, 0.1)
    scale = pde.normalisation.scale[pde.solution_channel]
    torch.testing.assert_close(
        pde.physics_term(moved, "preconditioned"), pde.preconditioned_residual(moved) / scale**2
    )
    torch.testing.assert_close(pde.physics_term(moved, "plain"), pde.normalised_residual(moved))
    with pytest.raises(PiddmError, match="residual norm"):
        pde.physics_term(moved, "l1")
