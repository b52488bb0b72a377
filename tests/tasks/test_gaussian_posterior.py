"""The exact Gaussian posterior of the linear PDEs (Poisson, Helmholtz)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piddm.errors import PiddmError
from piddm.metrics import relative_l2
from piddm.pdes import get_pde
from piddm.tasks import make_mask
from piddm.tasks.gaussian_posterior import gaussian_posterior, gaussian_prior


@pytest.mark.parametrize("name", ["poisson", "helmholtz"])
def test_prior_factor_reproduces_the_dataset_generator(name):
    # x = B xi with the generator's own white noise xi: the same field to round-off.
    pde = get_pde(name, 12)
    prior = gaussian_prior(pde)
    for seed in (0, 5):
        xi = np.random.default_rng(seed).standard_normal((12, 12))
        field = (prior.factor @ xi.ravel()).reshape(prior.shape)
        np.testing.assert_allclose(field, pde.generate(seed), atol=1e-12, rtol=0)


def test_fully_observed_coefficient_gives_the_solver_solution():
    pde = get_pde("poisson", 12)
    truth = np.stack([pde.generate(s) for s in range(3)])
    mask = np.zeros(truth.shape, dtype=bool)
    mask[:, 0] = True  # the forward problem with all of a known: u = K a, exactly
    mean, std = gaussian_posterior(pde, truth, mask)
    np.testing.assert_allclose(mean[:, 1], truth[:, 1], atol=1e-9 * np.abs(truth[:, 1]).max())
    assert np.abs(std[:, 1]).max() < 1e-6 * truth[:, 1].std()


def test_posterior_honours_observations_and_improves_with_more_of_them():
    pde = get_pde("poisson", 16)
    prior = gaussian_prior(pde)
    truth = torch.from_numpy(np.stack([pde.generate(100 + s) for s in range(40)]))
    errors = []
    for fraction in (0.03, 0.1, 0.3):
        mask = make_mask(pde, "forward", fraction, torch.Generator().manual_seed(0), n=40)
        mean, std = gaussian_posterior(pde, truth, mask, prior)
        observed = mask.numpy()
        assert np.array_equal(mean[observed], truth.numpy()[observed])
        assert np.all(std[observed] == 0) and np.all(std[~observed][:, None] >= 0)
        errors.append(relative_l2(mean, truth.numpy())[:, 1].mean())
    assert errors[0] > errors[1] > errors[2]
    # The posterior std is calibrated: the squared error matches the predicted variance.
    ratio = ((mean - truth.numpy()) ** 2)[:, 1].sum() / (std**2)[:, 1].sum()
    assert 0.7 < ratio < 1.4


def test_non_gaussian_pde_and_wrong_shapes_are_refused():
    with pytest.raises(PiddmError, match="GRF input"):
        gaussian_prior(get_pde("darcy", 12))
    with pytest.raises(PiddmError, match="at most 64"):
        gaussian_prior(get_pde("poisson", 128))
    pde = get_pde("poisson", 12)
    with pytest.raises(PiddmError, match="must both be"):
        gaussian_posterior(pde, np.zeros((2, 2, 10, 10)), np.zeros((2, 2, 10, 10), bool))
