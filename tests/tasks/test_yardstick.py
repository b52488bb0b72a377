"""Task yardsticks: the exact Bayes floor where the posterior is Gaussian, the prior mean's
error elsewhere; Burgers' prior mean is exactly zero by a symmetry of its scheme."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piddm.metrics import task_metrics
from piddm.pdes import get_pde
from piddm.tasks import make_mask
from piddm.tasks.gaussian_posterior import gaussian_posterior
from piddm.tasks.yardstick import YARDSTICK_METRICS, yardstick, yardstick_kind

S = 16


def fields(name: str, n: int = 4, resolution: int = S) -> np.ndarray:
    pde = get_pde(name, resolution)
    return np.stack([pde.generate(1000 + i) for i in range(n)])


def test_each_pde_gets_the_yardstick_that_is_exact_for_it() -> None:
    assert yardstick_kind(get_pde("poisson", S)) == "bayes_floor"
    assert yardstick_kind(get_pde("helmholtz", S)) == "bayes_floor"
    assert yardstick_kind(get_pde("darcy", S)) == "prior_mean_error"
    assert yardstick_kind(get_pde("burgers", S)) == "prior_mean_error"
    # the dense posterior stops at 64^2: larger grids fall back to the prior mean
    assert yardstick_kind(get_pde("poisson", 128)) == "prior_mean_error"


@pytest.mark.parametrize("task", ["forward", "inverse"])
def test_the_bayes_floor_is_the_posterior_means_error_and_beats_the_prior_mean(
    task: str,
) -> None:
    pde = get_pde("poisson", S)
    truth = fields("poisson")
    mask = make_mask(pde, task, 0.1, torch.Generator().manual_seed(0), n=len(truth)).numpy()
    kind, floor = yardstick(pde, truth, mask, truth)
    assert kind == "bayes_floor" and set(floor) == set(YARDSTICK_METRICS)
    mean, _ = gaussian_posterior(pde, truth, mask)
    assert floor["rel_l2_solution"] == task_metrics(pde, mean, truth)["rel_l2_solution"]
    # Poisson's prior mean is 0: with the observations put in, its error is far above the floor
    guess = task_metrics(pde, np.where(mask, truth, 0.0), truth)
    assert floor["rel_l2_solution"] < 0.9 * guess["rel_l2_solution"]
    assert floor["rel_l2_coefficient"] < 0.95 * guess["rel_l2_coefficient"]


def test_the_prior_mean_yardstick_keeps_the_observations_and_guesses_the_mean_elsewhere() -> None:
    pde = get_pde("darcy", S)
    truth = fields("darcy")
    mask = make_mask(pde, "forward", 0.5, torch.Generator().manual_seed(0), n=len(truth))
    kind, error = yardstick(pde, truth, mask, truth)
    assert kind == "prior_mean_error"
    guess = np.where(mask.numpy(), truth, pde.prior_mean()[None])
    assert error == {k: task_metrics(pde, guess, truth)[k] for k in YARDSTICK_METRICS}
    # half the coefficient observed: its error is about sqrt(1/2) of the unobserved guess's
    blind = task_metrics(pde, np.repeat(pde.prior_mean()[None], len(truth), axis=0), truth)
    assert 0.5 < error["rel_l2_coefficient"] / blind["rel_l2_coefficient"] < 0.9
    assert error["error_rate"] is not None  # Darcy's two-valued coefficient


def test_darcys_prior_mean_coefficient_is_the_midpoint_of_its_two_values() -> None:
    """3 and 12 with probability 1/2 each (a symmetric GRF thresholded at 0): mean 7.5."""
    mean = get_pde("darcy", S).prior_mean()
    assert mean.shape == (2, S, S)
    assert abs(float(mean[0].mean()) - 7.5) < 0.6  # 64 draws: std of the mean ~ 4.5 / 8 / 4


def test_no_truth_no_yardstick_values() -> None:
    pde = get_pde("burgers", S)
    truth = fields("burgers", n=1)
    mask = make_mask(pde, "inverse", 0.1, torch.Generator().manual_seed(0))
    assert yardstick(pde, truth, mask, None) == (
        "prior_mean_error",
        dict.fromkeys(YARDSTICK_METRICS),
    )


def test_burgers_prior_mean_is_zero_because_the_scheme_is_odd_under_reflection() -> None:
    """``u0(x) -> -u0(-x)`` maps the discrete solution to ``-u(-x, t)`` to round-off (the
    argument behind ``Burgers.prior_mean() == 0``), and a Monte Carlo mean is near 0."""
    pde = get_pde("burgers", S)
    assert not pde.prior_mean().any()
    u0 = pde.sample_input(np.random.default_rng(3))
    reflect = (-np.arange(S)) % S  # x_j = j / S  ->  -x_j = x_{(-j) mod S}
    u = pde.solve(u0)[0]
    mirrored = pde.solve(-u0[reflect])[0]
    np.testing.assert_allclose(mirrored, -u[:, reflect], atol=1e-12)
    draws = fields("burgers", n=32)[:, 0]
    assert np.abs(draws.mean(axis=0)).max() < 4 * draws.std() / np.sqrt(32)


def test_burgers_forward_yardstick_is_the_error_of_guessing_zero() -> None:
    """Observed initial condition, zero after it: the solution's error is that of the rows
    ``1 .. S-1`` alone, close to 1 (the field decays slowly at nu = 0.01)."""
    pde = get_pde("burgers", S)
    truth = fields("burgers")
    mask = make_mask(pde, "forward", 0.03, torch.Generator().manual_seed(0), n=len(truth))
    kind, error = yardstick(pde, truth, mask, truth)
    assert kind == "prior_mean_error" and error["rel_l2_coefficient"] == 0.0
    later = np.linalg.norm(truth[:, 0, 1:], axis=(1, 2)) / np.linalg.norm(truth[:, 0], axis=(1, 2))
    assert error["rel_l2_solution"] == pytest.approx(float(later.mean()), rel=1e-12)
    assert 0.8 < error["rel_l2_solution"] < 1.0
