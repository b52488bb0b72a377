"""DiffusionPDE guidance (piddm.baselines.guidance) and the baseline registry.

The "runs" tests use a randomly initialised tiny U-Net teacher; the tests of the algorithm use
the exact Gaussian denoiser, for which the guided step can be written down in closed form.
"""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import S, normalised_data, start, task_mask, tiny_teacher

from piddm.baselines import (
    BASELINES,
    SUPPORTS,
    TASKS,
    CountingDenoiser,
    DiffusionPDESettings,
    diffusionpde_nfe,
    diffusionpde_settings,
    sample_diffusionpde,
)
from piddm.baselines.utils import mean_squared_misfit, observations, physical_residual
from piddm.diffusion import gaussian_denoiser, karras_sigmas, sample_heun
from piddm.errors import PiddmError
from piddm.pdes import PDE_REGISTRY, available_pdes, get_pde

# ----------------------------------------------------------------------------- zero weights


@pytest.mark.parametrize("task", TASKS)
def test_zero_weights_equal_plain_heun(task: str) -> None:
    pde, net = get_pde("darcy", S), tiny_teacher()
    sigmas = karras_sigmas(8, dtype=torch.float32)
    x = start(2, 2, float(sigmas[0]))
    mask = task_mask(pde, task, 2)
    obs = None if mask is None else normalised_data(pde, 2)
    settings = DiffusionPDESettings(num_steps=8, zeta_obs=(0.0, 0.0), zeta_pde=0.0)
    with torch.no_grad():
        expected = sample_heun(net, x, sigmas)
        out = sample_diffusionpde(net, x, sigmas, pde=pde, mask=mask, obs=obs, settings=settings)
    assert torch.equal(out, expected)


# ----------------------------------------------------------------------------- runs


@pytest.mark.parametrize("task", TASKS)
def test_runs_with_default_weights(task: str) -> None:
    pde, net = get_pde("darcy", S), tiny_teacher()
    settings = diffusionpde_settings(pde, num_steps=8)
    sigmas = settings.sigmas(dtype=torch.float32)
    x = start(2, 2, float(sigmas[0]))
    mask = task_mask(pde, task, 2)
    obs = None if mask is None else normalised_data(pde, 2)
    counter = CountingDenoiser(net)
    out = sample_diffusionpde(counter, x, sigmas, pde=pde, mask=mask, obs=obs, settings=settings)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all() and not out.requires_grad
    assert counter.nfe == diffusionpde_nfe(settings) == 2 * 8 - 1
    with torch.no_grad():
        plain = sample_heun(net, x, sigmas)
    assert not torch.equal(out, plain)  # the guidance acted
    if obs is not None:  # ... and it pulled the sample toward the observations
        ob = observations(pde, x, mask, obs)
        assert (mean_squared_misfit(out, ob) < mean_squared_misfit(plain, ob)).all()


#: The registered PDEs with published DiffusionPDE weights (``diffusionpde_zeta_obs``).
PUBLISHED = [n for n in available_pdes() if PDE_REGISTRY[n].diffusionpde_zeta_obs is not None]


def test_defaults_per_pde() -> None:
    assert {"darcy", "poisson", "helmholtz", "burgers"} <= set(PUBLISHED)
    for name in PUBLISHED:
        pde = get_pde(name, S)
        settings = diffusionpde_settings(pde)
        assert settings.num_steps == 2000 and diffusionpde_nfe(settings) == 3999
        assert len(settings.channel_weights(pde.num_channels)) == pde.num_channels
        assert 0 < settings.zeta_pde < 1
    darcy = diffusionpde_settings(get_pde("darcy", 32))
    assert darcy.zeta_obs == pytest.approx((5.0 * 32 / 128, 3000.0 * 32 / 128))
    assert diffusionpde_settings(get_pde("darcy", 32), zeta_pde=0.5).zeta_pde == 0.5


# ----------------------------------------------------------------------------- algorithm


def test_guided_step_matches_closed_form() -> None:
    """Our reading: ``x0hat = D(x'; t_{i+1})`` at the Euler prediction ``x'``, gradient w.r.t.
    ``x_i``. For ``D(x; s) = mu + k(s) (x - mu)``, ``k = std^2 / (std^2 + s^2)``, that is
    ``x0hat - mu = A (x_i - mu)`` with ``A = k_1 (1 + (t_1 - t_0)(1 - k_0) / t_0)``."""
    pde = get_pde("poisson", S)
    data = normalised_data(pde, 2, torch.float64)
    mu, std = data[0], 0.3
    denoiser = gaussian_denoiser(mu, std)
    sigmas = torch.tensor([2.0, 0.5, 0.0], dtype=torch.float64)
    t0, t1 = 2.0, 0.5
    x = start(1, 2, t0, torch.float64)
    mask = task_mask(pde, "inverse", 1)
    obs = data[1:2]
    zeta = 0.7
    settings = DiffusionPDESettings(zeta_obs=zeta, obs_space="normalised")
    states: dict[int, torch.Tensor] = {}
    sample_diffusionpde(
        denoiser,
        x,
        sigmas,
        pde=pde,
        mask=mask,
        obs=obs,
        settings=settings,
        callback=lambda info: states.__setitem__(info["i"], info["x"]),
    )
    k0, k1 = std**2 / (std**2 + t0**2), std**2 / (std**2 + t1**2)
    a = k1 * (1 + (t1 - t0) * (1 - k0) / t0)
    x0hat = mu + a * (x - mu)
    residual = torch.where(mask, x0hat - obs, torch.zeros_like(x))
    grad = a * residual / residual.norm()
    expected = sample_heun(denoiser, x, sigmas[:2]) - zeta * grad
    torch.testing.assert_close(states[1], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["darcy", "poisson", "burgers"])
def test_pde_guidance_lowers_residual(name: str) -> None:
    pde = get_pde(name, S)
    denoiser = gaussian_denoiser(normalised_data(pde, 1, torch.float64)[0], 0.1)
    sigmas = karras_sigmas(10)
    x = start(4, pde.num_channels, 80.0, torch.float64)
    plain = sample_heun(denoiser, x, sigmas)
    settings = diffusionpde_settings(pde, num_steps=10, zeta_obs=0.0)
    guided = sample_diffusionpde(denoiser, x, sigmas, pde=pde, settings=settings)
    assert (physical_residual(pde, guided) < 0.9 * physical_residual(pde, plain)).all()


@pytest.mark.parametrize("space", ["physical", "normalised"])
def test_observation_guidance_lowers_misfit(space: str) -> None:
    pde = get_pde("darcy", S)
    data = normalised_data(pde, 2, torch.float64)
    denoiser = gaussian_denoiser(data[0], 0.2)
    sigmas = karras_sigmas(20)
    x = start(3, 2, 80.0, torch.float64)
    mask = task_mask(pde, "inverse", 3)
    obs = data[1:2]  # another sample: the prior mean does not fit it
    # The step has a fixed size (gradient of a norm): too large a weight overshoots.
    weight = 1.0 if space == "normalised" else 1.0 / pde.normalisation.scale[1]
    settings = DiffusionPDESettings(zeta_obs=(0.0, weight), obs_space=space)
    guided = sample_diffusionpde(
        denoiser, x, sigmas, pde=pde, mask=mask, obs=obs, settings=settings
    )
    ob = observations(pde, x, mask, obs)
    plain = sample_heun(denoiser, x, sigmas)
    assert (mean_squared_misfit(guided, ob) < 0.5 * mean_squared_misfit(plain, ob)).all()


def test_bad_input() -> None:
    pde = get_pde("darcy", S)
    sigmas = karras_sigmas(2)
    x = start(1, 2, 80.0, torch.float64)
    denoiser = gaussian_denoiser(0.0, 0.5)
    with pytest.raises(PiddmError, match="both"):
        sample_diffusionpde(denoiser, x, sigmas, pde=pde, mask=torch.ones_like(x, dtype=bool))
    with pytest.raises(PiddmError, match="bool"):
        sample_diffusionpde(denoiser, x, sigmas, pde=pde, mask=torch.ones_like(x), obs=x)
    with pytest.raises(PiddmError, match="channel"):
        sample_diffusionpde(
            denoiser, x, sigmas, pde=pde, settings=DiffusionPDESettings(zeta_obs=(1.0, 2.0, 3.0))
        )
    with pytest.raises(PiddmError, match="zeta_pde"):
        DiffusionPDESettings(zeta_pde=-1.0)
    with pytest.raises(PiddmError, match="pde_start"):
        DiffusionPDESettings(pde_start=1.5)


# ----------------------------------------------------------------------------- registry


def test_registry_tables() -> None:
    assert set(BASELINES) == set(SUPPORTS) == {"diffusionpde", "cocogen", "eci", "dflow"}
    for name, entry in BASELINES.items():
        assert entry.name == name and entry.supports == SUPPORTS[name]
        assert set(entry.supports) == set(TASKS)
        assert isinstance(entry.defaults(get_pde("poisson", S)), entry.settings_type)
    assert SUPPORTS["cocogen"] == {
        "generate": True,
        "forward": False,
        "inverse": False,
        "reconstruct": False,
    }
    with pytest.raises(ValueError, match="task"):
        BASELINES["eci"].supports_task("denoise")


SMALL = {
    "diffusionpde": {"num_steps": 4},
    "cocogen": {"num_steps": 4, "final_steps": 2},
    "eci": {"num_steps": 5, "mixing_steps": 2},
    "dflow": {"num_steps": 2, "iterations": 2, "line_search": False},
}


@pytest.mark.parametrize(
    ("name", "task"),
    [(name, task) for name in sorted(BASELINES) for task in TASKS if SUPPORTS[name][task]],
)
def test_registry_runs_and_counts_nfe(name: str, task: str) -> None:
    entry = BASELINES[name]
    pde, net = get_pde("darcy", S), tiny_teacher()
    settings = entry.defaults(pde, **SMALL[name])
    sigmas = settings.sigmas(dtype=torch.float32)
    x = start(2, 2, float(sigmas[0]))
    mask = task_mask(pde, task, 2)
    obs = None if mask is None else normalised_data(pde, 2)
    counter = CountingDenoiser(net)
    out = entry.sample(counter, x, sigmas, pde=pde, mask=mask, obs=obs, settings=settings)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert counter.nfe == entry.nfe(settings)
    assert counter.samples == 2 * counter.nfe
