"""CoCoGen residual-gradient corrections (piddm.baselines.cocogen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from baseline_helpers import S, start, tiny_teacher

from piddm.baselines import (
    CoCoGenSettings,
    CountingDenoiser,
    cocogen_nfe,
    cocogen_settings,
    residual_descent,
    residual_stiffness,
    sample_cocogen,
)
from piddm.baselines.utils import physical_residual
from piddm.diffusion import gaussian_denoiser, karras_sigmas, sample_heun
from piddm.errors import PiddmError
from piddm.pdes import PDE, available_pdes, get_pde


def normalised_sample(pde: PDE, seed: int = 0) -> torch.Tensor:
    field = torch.from_numpy(np.asarray(pde.generate(seed)))[None]
    return pde.normalisation.normalise(field)[0]


@pytest.mark.parametrize(("name", "channels"), [("darcy", 2), ("burgers", 1)])
def test_generation_runs(name: str, channels: int) -> None:
    pde, net = get_pde(name, S), tiny_teacher(channels)
    settings = cocogen_settings(pde, num_steps=8)
    sigmas = settings.sigmas(dtype=torch.float32)
    x = start(2, channels, float(sigmas[0]))
    counter = CountingDenoiser(net)
    out = sample_cocogen(counter, x, sigmas, pde=pde, settings=settings)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    assert counter.nfe == cocogen_nfe(settings) == 2 * 8 - 1
    with torch.no_grad():
        plain = sample_heun(net, x, sigmas)
    assert (physical_residual(pde, out) < physical_residual(pde, plain)).all()


@pytest.mark.parametrize("name", available_pdes())
def test_corrections_lower_residual(name: str) -> None:
    pde = get_pde(name, S)
    denoiser = gaussian_denoiser(normalised_sample(pde), 0.1)
    sigmas = karras_sigmas(10)
    x = start(4, pde.num_channels, 80.0, torch.float64)
    plain = sample_heun(denoiser, x, sigmas)
    out = sample_cocogen(denoiser, x, sigmas, pde=pde, settings=cocogen_settings(pde))
    assert (physical_residual(pde, out) < 0.2 * physical_residual(pde, plain)).all()
    # More final corrections, lower residual (a stable step: monotone descent).
    more = sample_cocogen(
        denoiser, x, sigmas, pde=pde, settings=cocogen_settings(pde, final_steps=30)
    )
    assert (physical_residual(pde, more) < physical_residual(pde, out)).all()


def test_zero_step_is_plain_heun() -> None:
    pde, net = get_pde("darcy", S), tiny_teacher()
    sigmas = karras_sigmas(6, dtype=torch.float32)
    x = start(2, 2, float(sigmas[0]))
    with torch.no_grad():
        expected = sample_heun(net, x, sigmas)
        out = sample_cocogen(net, x, sigmas, pde=pde, settings=CoCoGenSettings(step_size=0.0))
    assert torch.equal(out, expected)


def test_residual_descent_step_is_stable() -> None:
    """``0.5 / L`` steps are a monotone descent, ``3 / L`` steps blow up (past ``2 / L``)."""
    pde = get_pde("poisson", S)
    gen = torch.Generator().manual_seed(0)
    x = normalised_sample(pde)[None] + 0.05 * torch.randn(1, 2, S, S, generator=gen).double()
    stiffness = residual_stiffness(pde, x)
    assert stiffness == pytest.approx(residual_stiffness(pde), rel=0.05)  # linear PDE
    r0 = physical_residual(pde, x)
    assert physical_residual(pde, residual_descent(pde, x, 0.5 / stiffness, 20)) < 0.1 * r0
    assert physical_residual(pde, residual_descent(pde, x, 3.0 / stiffness, 20)) > r0


def test_generation_only_and_validation() -> None:
    pde = get_pde("darcy", S)
    x = start(1, 2, 80.0, torch.float64)
    mask = torch.zeros_like(x, dtype=torch.bool)
    with pytest.raises(PiddmError, match="generation only"):
        sample_cocogen(gaussian_denoiser(0.0, 0.5), x, karras_sigmas(2), pde=pde, mask=mask, obs=x)
    with pytest.raises(PiddmError, match="start_fraction"):
        CoCoGenSettings(start_fraction=-0.1)
    with pytest.raises(PiddmError, match="final_steps"):
        CoCoGenSettings(final_steps=-1)
    assert cocogen_settings(pde).step_size == pytest.approx(0.5 / residual_stiffness(pde))
