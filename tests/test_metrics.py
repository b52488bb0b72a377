"""Metrics against analytic answers and the solver."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from piddm.data.importing import ImportReport
from piddm.metrics import (
    EvalReport,
    Report,
    error_rate,
    evaluate,
    frechet_distance,
    mean_interval,
    median_interval,
    moment_errors,
    noise_floors,
    per_sample_relative_residual,
    relative_l2,
    solver_consistency,
    spectral_features,
    task_metrics,
    task_metrics_per_instance,
)
from piddm.pdes import get_pde
from piddm.pdes.registry import available_pdes


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


@pytest.mark.parametrize("name", available_pdes())
def test_solver_consistency_is_zero_on_solver_data_and_positive_on_wrong_fields(name: str) -> None:
    pde = get_pde(name, 16)
    data = solver_set(name, 3)
    assert solver_consistency(pde, data).max() < 1e-10
    wrong = data.copy()
    wrong[:, pde.solution_channel, 4:8, 4:8] *= 1.5
    assert solver_consistency(pde, wrong).min() > 1e-3


@pytest.mark.parametrize("name", available_pdes())
def test_relative_residual_is_one_for_the_zero_field_and_round_off_for_solver_data(
    name: str,
) -> None:
    pde = get_pde(name, 16)
    data = solver_set(name, 3)
    assert per_sample_relative_residual(pde, data).max() < 1e-12
    zero = pde.without_solution(torch.from_numpy(data)).numpy()
    assert not np.array_equal(zero, data)
    np.testing.assert_allclose(per_sample_relative_residual(pde, zero), 1.0, rtol=1e-12)
    # In between for a field between the two (scale-free: the same for 100x the input).
    halfway = per_sample_relative_residual(pde, 0.5 * (data + zero))
    assert np.all((halfway > 1e-3) & (halfway < 1.0))
    np.testing.assert_allclose(per_sample_relative_residual(pde, zero, batch_size=2), 1.0)


def test_mean_interval_covers_the_true_mean_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    mean, std, n, repetitions = 3.0, 2.0, 100, 300
    covered, width = 0, 0.0
    for _ in range(repetitions):
        low, high = mean_interval(rng.normal(mean, std, n))
        covered += low <= mean <= high
        width += (high - low) / repetitions
    assert 0.9 <= covered / repetitions <= 0.99
    assert width == pytest.approx(2 * 1.96 * std / np.sqrt(n), rel=0.03)
    assert mean_interval(np.array([1.0])) is None and mean_interval(np.array([])) is None
    assert mean_interval(np.array([2.0, 2.0])) == [2.0, 2.0]


def test_median_interval_contains_the_sample_median_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    for n in (2, 3, 10, 41, 512):
        values = rng.lognormal(0.0, 1.0, n)  # skewed, like residuals
        low, high = median_interval(values)
        assert low <= np.median(values) <= high and low < high
        assert values.min() <= low and high <= values.max()
        assert median_interval(values) == [low, high]  # fixed seed: reproducible
    assert median_interval(values, seed=1) != median_interval(values)
    assert median_interval(np.array([5.0])) is None
    # It narrows like 1/sqrt(n) and covers the true median (1 for a lognormal(0, 1)).
    covered, widths = 0, {}
    for n in (40, 640):
        for _ in range(40):
            low, high = median_interval(rng.lognormal(0.0, 1.0, n), resamples=500)
            covered += low <= 1.0 <= high
            widths[n] = widths.get(n, 0.0) + (high - low) / 40
    assert covered >= 70 and 2.5 < widths[40] / widths[640] < 6.5


def test_task_metrics_are_means_of_the_per_instance_values() -> None:
    pde = get_pde("darcy", 16)
    truth = solver_set("darcy", 4)
    estimate = truth * np.array([1.0, 1.1])[None, :, None, None]
    estimate[0] *= 1.5
    per = task_metrics_per_instance(pde, estimate, truth)
    means = task_metrics(pde, estimate, truth)
    assert list(means) == ["rel_l2_coefficient", "rel_l2_solution", "error_rate", "residual_mean"]
    assert per["rel_l2_solution"].shape == (4,)
    np.testing.assert_allclose(per["rel_l2_solution"], [0.65, 0.1, 0.1, 0.1])
    assert means["rel_l2_solution"] == pytest.approx(0.2375)
    assert means["residual_mean"] == pytest.approx(per["residual"].mean())
    assert task_metrics_per_instance(get_pde("poisson", 16), truth, truth)["error_rate"] is None


@pytest.mark.parametrize("name", available_pdes())
def test_error_rate_follows_the_pde_threshold(name: str) -> None:
    """A PDE with a two-valued coefficient declares its threshold (Darcy: 7.5, between its
    phases); every other PDE gets no error rate."""
    pde = get_pde(name, 16)
    truth = solver_set(name, 2)
    rate = task_metrics_per_instance(pde, truth, truth)["error_rate"]
    if pde.threshold is None:
        assert rate is None
    else:
        np.testing.assert_array_equal(rate, 0.0)
        mirrored = truth.copy()  # the coefficient reflected about the threshold: all wrong
        c = pde.coefficient_channel
        mirrored[:, c] = 2.0 * pde.threshold - truth[:, c]
        mirrored_rate = task_metrics_per_instance(pde, mirrored, truth)["error_rate"]
        np.testing.assert_array_equal(mirrored_rate, 1.0)


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
    assert report.solver_consistency_median < 1e-10 and report.relative_residual_mean < 1e-10
    assert report.relative_residual_median < 1e-10
    # Fresh solver samples are as close to the reference as reference halves are to each other.
    assert report.mmse < 3 * report.mmse_floor and report.smse < 3 * report.smse_floor
    assert report.sfd < 3 * report.sfd_floor
    blurred = generated * np.array([1.0, 0.5])[None, :, None, None]  # solution halved
    worse = evaluate(pde, blurred, reference)
    assert worse.smse > 5 * worse.smse_floor
    assert worse.residual_mean > 1e-4 and worse.solver_consistency == pytest.approx(0.5, rel=1e-6)
    # Halving a linear PDE's solution leaves half its residual: R(a, u*/2) = -a/2.
    for key in ("relative_residual_mean", "relative_residual_median", "solver_consistency_median"):
        assert getattr(worse, key) == pytest.approx(0.5, rel=1e-6), key
    for key, ci in worse.as_dict().items():
        if key.endswith("_ci"):
            value = getattr(worse, key.removesuffix("_ci"))
            assert isinstance(ci, list) and ci[0] <= value <= ci[1], key
    spread = evaluate(pde, generated * rng_scale(len(generated)), reference)
    assert (
        spread.solver_consistency_ci[0]
        < spread.solver_consistency
        < spread.solver_consistency_ci[1]
    )
    assert spread.relative_residual_mean_ci[1] - spread.relative_residual_mean_ci[0] > 1e-3
    shrunk = evaluate(pde, 0.5 * generated, reference, consistency=False)  # every channel
    assert shrunk.sfd > 1.5 * shrunk.sfd_floor and shrunk.solver_consistency is None
    for key in (
        "solver_consistency_median",
        "solver_consistency_ci",
        "solver_consistency_median_ci",
    ):
        assert getattr(shrunk, key) is None, key
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
        "solver_consistency_median",
        "solver_consistency_ci",
        "solver_consistency_median_ci",
        "relative_residual_mean",
        "relative_residual_median",
        "relative_residual_mean_ci",
        "relative_residual_median_ci",
        "residual_mean_ci",
    }


def rng_scale(n: int) -> np.ndarray:
    """Per-sample solution factors ``1 + 0.2 z`` ``(n, 2, 1, 1)`` (coefficient kept)."""
    z = np.random.default_rng(0).standard_normal(n)
    return np.stack([np.ones(n), 1.0 + 0.2 * z], axis=1)[:, :, None, None]


@pytest.mark.parametrize("report", [EvalReport, ImportReport])
def test_reports_give_their_fields_in_order_as_json_keys(report: type[Report]) -> None:
    names = [f.name for f in dataclasses.fields(report)]
    instance = report(**{name: i for i, name in enumerate(names)})
    assert issubclass(report, Report)
    assert list(instance.as_dict().items()) == [(name, i) for i, name in enumerate(names)]
