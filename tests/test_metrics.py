"""Metrics against analytic answers and the solver."""

from __future__ import annotations

import numpy as np
import pytest

from piddm.metrics import (
    error_rate,
    evaluate,
    frechet_distance,
    moment_errors,
    noise_floors,
    relative_l2,
    solver_consistency,
    spectral_features,
)
from piddm.pdes import get_pde


def solver_set(name: str, n: int, offset: int = 0, resolution: int = 16) -> np.ndarray:
    pde = get_pde(name, resolution)
    return np.stack([pde.generate(offset + s) for s in range(n)])


def test_frechet_distance_of_gaussians_matches_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    b = 2.0 * rng.standard_normal((20000, 3)) + 1.0
    # mu: 3 * 1^2; cov: tr(I + 4I - 2 * 2I) = 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_moment_errors_and_relative_l2() -> None:
    ref = np.stack([np.zeros((1, 2, 2)), 2 * np.ones((1, 2, 2))])
    gen = ref + 1.0
    mmse, smse = moment_errors(gen, ref)
    assert mmse == pytest.approx(1.0) and smse == pytest.approx(0.0)
    truth = np.ones((2, 1, 4, 4))
    np.testing.assert_allclose(relative_l2(truth * 1.1, truth), 0.1)


def test_error_rate_counts_misclassified_nodes() -> None:
    truth = np.full((1, 4, 4), 12.0)
    est = truth.copy()
    est[0, 0, :2] = 3.0
    assert error_rate(est, truth, 7.5)[0] == pytest.approx(2 / 16)


def test_spectral_features_shape() -> None:
    assert spectral_features(np.zeros((5, 2, 16, 16))).shape == (5, 2 * 64)


@pytest.mark.parametrize("name", ["darcy", "poisson", "burgers"])
def test_solver_consistency_is_zero_on_solver_data_and_positive_on_wrong_fields(name: str) -> None:
    pde = get_pde(name, 16)
    data = solver_set(name, 3)
    assert solver_consistency(pde, data).max() < 1e-10
    wrong = data.copy()
    wrong[:, pde.solution_channel, 4:8, 4:8] *= 1.5
    assert solver_consistency(pde, wrong).min() > 1e-3


def test_noise_floors_match_their_expectation_for_white_noise() -> None:
    # Two independent sets of n samples, per-node std sigma: E[MMSE] = 2 sigma^2 / n and
    # E[SMSE] ~ sigma^2 / n (Var of a sample std ~ sigma^2 / 2n).
    sigma, n = 0.3, 100
    reference = np.random.default_rng(0).normal(0.0, sigma, size=(400, 2, 16, 16))
    mmse_floor, smse_floor, sfd_floor = noise_floors(reference, n, seed=1)
    assert mmse_floor == pytest.approx(2 * sigma**2 / n, rel=0.1)
    assert smse_floor == pytest.approx(sigma**2 / n, rel=0.15)
    assert sfd_floor > 0
    assert noise_floors(reference, n, seed=1) == (mmse_floor, smse_floor, sfd_floor)
    assert noise_floors(reference, n, seed=2) != (mmse_floor, smse_floor, sfd_floor)


def test_evaluate_reference_against_itself_is_at_the_floor() -> None:
    pde = get_pde("poisson", 16)
    reference = solver_set("poisson", 200)
    generated = solver_set("poisson", 50, offset=1000)
    report = evaluate(pde, generated, reference)
    assert report.residual_mean < 1e-20 and report.solver_consistency < 1e-10
    # Fresh solver samples are as close to the reference as reference halves are to each other.
    assert report.mmse < 3 * report.mmse_floor and report.smse < 3 * report.smse_floor
    assert report.sfd < 3 * report.sfd_floor
    blurred = generated * np.array([1.0, 0.5])[None, :, None, None]  # solution halved
    worse = evaluate(pde, blurred, reference)
    assert worse.smse > 5 * worse.smse_floor
    assert worse.residual_mean > 1e-4 and worse.solver_consistency == pytest.approx(0.5, rel=1e-6)
    shrunk = evaluate(pde, 0.5 * generated, reference, consistency=False)  # every channel
    assert shrunk.sfd > 1.5 * shrunk.sfd_floor and shrunk.solver_consistency is None
    assert set(report.as_dict()) >= {
        "residual_mean",
        "residual_median",
        "reference_residual_mean",
        "mmse",
        "smse",
        "mmse_floor",
        "smse_floor",
        "sfd",
        "sfd_floor",
        "solver_consistency",
    }
