"""Tests of the Karras schedule and the Euler / Heun samplers against Gaussian data.

For ``x0 ~ N(mu, diag(std^2))`` the exact denoiser and the exact probability-flow ODE map are
known (``piddm.diffusion.gaussian``), so the samplers can be checked for their order.
"""

from __future__ import annotations

import math

import pytest
import torch

from piddm.diffusion import (
    count_nfe,
    gaussian_denoiser,
    gaussian_flow,
    heun_step,
    karras_sigmas,
    noise_grid,
    sample_euler,
    sample_heun,
)

F64 = torch.float64
SMIN, SMAX = 0.002, 80.0


@pytest.fixture
def gaussian() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mu, std, x_T)``: per-pixel mean and std of a ``(2, 4, 4)`` field, 3 noisy starts."""
    gen = torch.Generator().manual_seed(0)
    mu = 0.5 * torch.randn(2, 4, 4, generator=gen, dtype=F64)
    std = 0.2 + 0.8 * torch.rand(2, 4, 4, generator=gen, dtype=F64)
    x_t = SMAX * torch.randn(3, 2, 4, 4, generator=gen, dtype=F64)
    return mu, std, x_t


# ----------------------------------------------------------------------------- schedule


def test_karras_sigmas_values() -> None:
    sigmas = karras_sigmas(18)
    assert sigmas.shape == (19,) and sigmas.dtype == F64
    assert sigmas[0].item() == pytest.approx(SMAX)
    assert sigmas[17].item() == pytest.approx(SMIN)
    assert sigmas[18].item() == 0.0
    assert torch.all(sigmas[1:] < sigmas[:-1])
    i, n, rho = 5, 18, 7.0
    expected = (SMAX ** (1 / rho) + i / (n - 1) * (SMIN ** (1 / rho) - SMAX ** (1 / rho))) ** rho
    assert sigmas[i].item() == pytest.approx(expected, rel=1e-12)


def test_karras_sigmas_one_step_and_options() -> None:
    torch.testing.assert_close(karras_sigmas(1), torch.tensor([SMAX, 0.0], dtype=F64))
    assert karras_sigmas(4, dtype=torch.float32).dtype == torch.float32
    with pytest.raises(ValueError, match="num_steps"):
        karras_sigmas(0)
    with pytest.raises(ValueError, match="sigma_min"):
        karras_sigmas(4, sigma_min=0.0)


def test_count_nfe() -> None:
    assert count_nfe(18) == 35
    assert count_nfe(18, "euler") == 18
    assert count_nfe(karras_sigmas(18)) == 35
    assert count_nfe(karras_sigmas(18)[:-1]) == 34  # no final step to zero
    assert count_nfe(1) == 1


def test_heun_evaluation_count_matches_nfe(gaussian) -> None:
    mu, std, x_t = gaussian
    calls = []
    exact = gaussian_denoiser(mu, std)

    def counting(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        calls.append(sigma)
        assert sigma.shape == (x.shape[0],)
        return exact(x, sigma)

    sample_heun(counting, x_t, karras_sigmas(7))
    assert len(calls) == count_nfe(7) == 13


# ----------------------------------------------------------------------------- analytic facts


def test_gaussian_denoiser_is_tweedie(gaussian) -> None:
    """``D(x; s) = x + s^2 grad log p_s(x)`` with ``p_s = N(mu, std^2 + s^2)``."""
    mu, std, x_t = gaussian
    x = (0.3 * x_t).requires_grad_(True)
    s = 1.7
    log_p = (-0.5 * (x - mu) ** 2 / (std**2 + s**2)).sum()
    (score,) = torch.autograd.grad(log_p, x)
    sigma = torch.full((x.shape[0],), s, dtype=F64)
    torch.testing.assert_close(gaussian_denoiser(mu, std)(x.detach(), sigma), x + s**2 * score)


def test_gaussian_flow_solves_the_ode(gaussian) -> None:
    """``x(s)`` from :func:`gaussian_flow` satisfies ``dx/ds = (x - D(x; s)) / s``, and at
    ``s = 0`` equals ``mu + std / sqrt(std^2 + smax^2) (x_T - mu)``."""
    mu, std, x_t = gaussian
    denoise = gaussian_denoiser(mu, std)
    for s in (0.05, 0.7, 10.0):
        h = 1e-5 * s
        dxds = gaussian_flow(x_t, SMAX, s + h, mu, std) - gaussian_flow(x_t, SMAX, s - h, mu, std)
        dxds = dxds / (2 * h)
        x_s = gaussian_flow(x_t, SMAX, s, mu, std)
        rhs = (x_s - denoise(x_s, torch.full((3,), s, dtype=F64))) / s
        torch.testing.assert_close(dxds, rhs, rtol=1e-6, atol=1e-8)
    x0 = gaussian_flow(x_t, SMAX, 0.0, mu, std)
    torch.testing.assert_close(x0, mu + std / torch.sqrt(std**2 + SMAX**2) * (x_t - mu))


def test_heun_converges_to_exact_sample(gaussian) -> None:
    mu, std, x_t = gaussian
    x0 = sample_heun(gaussian_denoiser(mu, std), x_t, karras_sigmas(1024))
    torch.testing.assert_close(x0, gaussian_flow(x_t, SMAX, 0.0, mu, std), rtol=0, atol=5e-5)


# ----------------------------------------------------------------------------- orders


def observed_orders(sampler, gaussian, *, to_zero: bool) -> list[float]:
    """``log2(err_n / err_2n)`` over 8, 16, 32, 64 Karras intervals.

    The Karras grid is a smooth map ``t(u)`` of a uniform ``u``; doubling the number of
    intervals between ``smax`` and ``smin`` halves the step in ``u``, so a method of order
    ``p`` shows ``err_n / err_2n -> 2^p``. With ``to_zero=False`` we stop at ``smin`` and compare
    with the exact flow there, so every step is a Heun step. With ``to_zero=True`` the grid has
    one more step, ``smin -> 0``, which Heun takes as an Euler step; its local error is
    ``O(smin^2)`` and independent of the number of steps, but at ``smin = 0.002`` it is more
    than two orders of magnitude below the Heun error of these grids (about 1e-5 against 5e-3
    at 64 intervals), so the observed order is unchanged.
    """
    mu, std, x_t = gaussian
    denoise = gaussian_denoiser(mu, std)
    errors = []
    for intervals in (8, 16, 32, 64):
        sigmas = karras_sigmas(intervals + 1)
        if not to_zero:
            sigmas = sigmas[:-1]
        target = gaussian_flow(x_t, SMAX, sigmas[-1].item(), mu, std)
        errors.append((sampler(denoise, x_t, sigmas) - target).abs().max().item())
    return [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:], strict=False)]


@pytest.mark.parametrize("to_zero", [False, True])
def test_heun_is_second_order(gaussian, to_zero: bool) -> None:
    orders = observed_orders(sample_heun, gaussian, to_zero=to_zero)
    assert all(1.7 < p < 2.5 for p in orders), orders


@pytest.mark.parametrize("to_zero", [False, True])
def test_euler_is_first_order(gaussian, to_zero: bool) -> None:
    orders = observed_orders(sample_euler, gaussian, to_zero=to_zero)
    assert all(0.75 < p < 1.25 for p in orders), orders


# ----------------------------------------------------------------------------- interface


def test_callback_and_gradients(gaussian) -> None:
    """The callback sees every step; gradients flow through the sampler (no forced no_grad)."""
    mu, std, x_t = gaussian
    seen = []
    x_t = x_t.clone().requires_grad_(True)
    sigmas = karras_sigmas(5)
    x0 = sample_heun(gaussian_denoiser(mu, std), x_t, sigmas, callback=seen.append)
    assert [d["i"] for d in seen] == [0, 1, 2, 3, 4]
    assert seen[0]["sigma"] == pytest.approx(SMAX)
    assert set(seen[0]) == {"i", "x", "sigma", "denoised"}
    x0.sum().backward()
    assert x_t.grad is not None and torch.isfinite(x_t.grad).all()


def test_heun_step_is_one_step_of_sample_heun(gaussian) -> None:
    """:func:`heun_step` is :func:`sample_heun` one step at a time, bit for bit; ``x0hat`` is
    the step's last denoiser output: ``D`` at the Euler prediction, or at ``x`` when the step
    ends at 0."""
    mu, std, x_t = gaussian
    denoiser = gaussian_denoiser(mu, std)
    sigmas = karras_sigmas(4)
    grid = noise_grid(sigmas)
    assert grid == sigmas.tolist()

    def at(t: float) -> torch.Tensor:
        return torch.full((x_t.shape[0],), t, dtype=F64)

    x = x_t
    for i, (t_cur, t_next) in enumerate(zip(grid[:-1], grid[1:], strict=True)):
        x_next, x0hat = heun_step(denoiser, x, t_cur, t_next, i)
        euler = x + (t_next - t_cur) * ((x - denoiser(x, at(t_cur))) / t_cur)
        last = denoiser(euler, at(t_next)) if t_next > 0 else denoiser(x, at(t_cur))
        assert torch.equal(x0hat, last)
        x = x_next
    assert torch.equal(x, sample_heun(denoiser, x_t, sigmas))


def test_float32_state_with_float64_grid(gaussian) -> None:
    mu, std, x_t = gaussian
    x0 = sample_euler(gaussian_denoiser(mu.float(), std.float()), x_t.float(), karras_sigmas(4))
    assert x0.dtype == torch.float32


@pytest.mark.parametrize(
    "sigmas",
    [torch.tensor([1.0]), torch.tensor([1.0, 2.0, 0.0]), torch.tensor([1.0, -0.5])],
)
def test_bad_grid_raises(sigmas: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="sigmas"):
        sample_heun(lambda x, s: x, torch.zeros(1, 1, 2, 2), sigmas)
