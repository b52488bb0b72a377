"""The classical references of the tasks: PDE-constrained MAP and the Bayes floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from piddm.errors import PiddmError
from piddm.metrics import error_rate, relative_l2
from piddm.pdes import get_pde
from piddm.tasks import (
    MapConfig,
    floor_estimate,
    floor_supports,
    make_mask,
    map_estimate,
    map_supports,
)
from piddm.tasks.darcy_adjoint import adjoint_gap, elliptical_slice, grf_basis
from piddm.tasks.gaussian_posterior import gaussian_posterior
from piddm.tasks.yardstick import prior_mean_estimate

#: A short MAP for 16^2 tests.
QUICK = MapConfig(steps=150, lr=0.1, starts=2, candidates=16)


def instances(name: str, size: int, count: int, first: int = 0) -> torch.Tensor:
    pde = get_pde(name, size)
    return torch.from_numpy(np.stack([pde.generate(first + s) for s in range(count)]))


def observed_only(truth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The observations with NaN at unobserved nodes: nothing may read them."""
    return torch.where(mask, truth, torch.full_like(truth, math.nan))


def test_darcy_adjoint_gradient_matches_finite_differences():
    pde = get_pde("darcy", 16)
    assert adjoint_gap(pde, np.random.default_rng(0)) < 1e-5


@pytest.mark.parametrize("task", ["forward", "inverse", "reconstruct"])
def test_map_and_floor_of_poisson_are_the_gaussian_posterior_mean(task):
    pde = get_pde("poisson", 16)
    truth = instances("poisson", 16, 3)
    mask = make_mask(pde, task, 0.05, torch.Generator().manual_seed(1), n=3)
    mean, _ = gaussian_posterior(pde, truth, mask)
    for estimate in (
        map_estimate(pde, observed_only(truth, mask), mask, task),
        floor_estimate(pde, observed_only(truth, mask), mask, task),
    ):
        assert estimate.dtype == torch.float64 and estimate.shape == truth.shape
        np.testing.assert_allclose(estimate.numpy(), mean, rtol=0, atol=1e-12)
        assert torch.equal(estimate[mask], truth[mask])


def test_darcy_map_keeps_observations_and_is_deterministic():
    pde = get_pde("darcy", 16)
    truth = instances("darcy", 16, 2)
    config = MapConfig(steps=10, starts=2, candidates=4)
    for task in ("forward", "inverse", "reconstruct"):
        mask = make_mask(pde, task, 0.05, torch.Generator().manual_seed(2), n=2)
        obs = observed_only(truth, mask)
        first = map_estimate(pde, obs, mask, task, config, seed=3)
        assert first.dtype == torch.float64 and first.shape == truth.shape
        assert torch.equal(first[mask], truth[mask])
        assert torch.isfinite(first).all()
        unobserved_a = first[:, 0][~mask[:, 0]]
        assert set(unobserved_a.unique().tolist()) <= {3.0, 12.0}
        assert torch.equal(first, map_estimate(pde, obs, mask, task, config, seed=3))
    # Instance i depends on (seed, i) and its own observations only, not on the others.
    other = map_estimate(pde, obs[[1, 1]], mask[[1, 1]], task, config, seed=3)
    assert torch.equal(other[1], first[1])


def test_darcy_inverse_map_beats_the_prior_mean():
    # 30 % of u observed at 16^2: the MAP must misclassify far fewer nodes than the prior
    # mean's guess (which knows only the phase fractions).
    pde = get_pde("darcy", 16)
    truth = instances("darcy", 16, 3, first=10)
    mask = make_mask(pde, "inverse", 0.3, torch.Generator().manual_seed(4), n=3)
    estimate = map_estimate(pde, observed_only(truth, mask), mask, "inverse", QUICK)
    guess = prior_mean_estimate(pde, truth.numpy(), mask.numpy())
    ours = error_rate(estimate[:, 0].numpy(), truth[:, 0].numpy(), pde.threshold).mean()
    prior = error_rate(guess[:, 0], truth[:, 0].numpy(), pde.threshold).mean()
    assert ours < 0.5 * prior and ours < 0.15, (ours, prior)


def test_darcy_forward_floor_honours_the_observed_phases():
    pde = get_pde("darcy", 16)
    truth = instances("darcy", 16, 2, first=20)
    mask = make_mask(pde, "forward", 0.2, torch.Generator().manual_seed(5), n=2)
    observed = torch.nonzero(mask[1, 0])
    mask[1, 0, observed[::2, 0], observed[::2, 1]] = False  # observation sets of unequal size
    obs = observed_only(truth, mask)
    estimate = floor_estimate(pde, obs, mask, "forward", seed=1, samples=10)
    assert estimate.shape == truth.shape and torch.equal(estimate[mask], truth[mask])
    assert torch.equal(estimate, floor_estimate(pde, obs, mask, "forward", seed=1, samples=10))
    guess = prior_mean_estimate(pde, truth.numpy(), mask.numpy())
    ours = relative_l2(estimate[:, 1:].numpy(), truth[:, 1:].numpy()).mean()
    prior = relative_l2(guess[:, 1:], truth[:, 1:].numpy()).mean()
    assert ours < prior, (ours, prior)


def test_elliptical_slice_draws_satisfy_the_signs():
    pde = get_pde("darcy", 12)
    basis = grf_basis(pde)[0].numpy()
    rng = np.random.default_rng(0)
    observed = rng.choice(144, size=10, replace=False)
    signs = np.where(rng.random(10) < 0.5, 1.0, -1.0)
    rows = np.stack([basis[observed]] * 2)
    rngs = [np.random.default_rng([0, c]) for c in range(2)]
    draws = elliptical_slice(rows, np.stack([signs] * 2), rngs, 20, 5, 2)
    assert draws.shape == (2, 5, 144)
    assert np.all(np.sign(draws @ basis[observed].T) == signs)


def test_unsupported_combinations_report_a_note():
    for supports, pde, task in (
        (map_supports, get_pde("burgers", 16), "inverse"),
        (floor_supports, get_pde("burgers", 16), "reconstruct"),
        (floor_supports, get_pde("darcy", 16), "inverse"),
        (floor_supports, get_pde("darcy", 16), "reconstruct"),
        (map_supports, get_pde("poisson", 128), "forward"),
    ):
        ok, note = supports(pde, task)
        assert not ok and isinstance(note, str) and note and "\n" not in note
    for supports in (map_supports, floor_supports):
        assert supports(get_pde("darcy", 16), "forward") == (True, None)
        assert supports(get_pde("helmholtz", 16), "inverse") == (True, None)
        with pytest.raises(PiddmError, match="unknown task"):
            supports(get_pde("darcy", 16), "denoise")
    pde = get_pde("darcy", 16)
    truth = instances("darcy", 16, 1)
    mask = make_mask(pde, "inverse", 0.1, torch.Generator().manual_seed(0))
    with pytest.raises(PiddmError, match="Bayes floor of the darcy inverse"):
        floor_estimate(pde, truth, mask, "inverse")


@pytest.mark.parametrize(
    "changes",
    [
        {"sigma": 0.0},
        {"sigma": True},
        {"t0": -1.0},
        {"t1": math.inf},
        {"lr": math.nan},
        {"steps": 0},
        {"steps": 1.5},
        {"starts": 0},
        {"starts": 8, "candidates": 4},
    ],
)
def test_bad_map_configs_are_refused(changes):
    with pytest.raises(PiddmError, match="MAP setting"):
        MapConfig(**changes)


def test_floor_samples_must_be_positive():
    pde = get_pde("darcy", 16)
    truth = instances("darcy", 16, 1)
    mask = make_mask(pde, "forward", 0.1, torch.Generator().manual_seed(0))
    with pytest.raises(PiddmError, match="samples"):
        floor_estimate(pde, truth, mask, "forward", samples=0)
