"""The baselines' shared set-up (piddm.baselines.utils) on top of the diffusion samplers."""

from __future__ import annotations

import pytest
import torch
from baseline_helpers import S, normalised_data, start, task_mask

from piddm.baselines import BASELINES, DiffusionPDESettings, sample_diffusionpde
from piddm.baselines.utils import prepare_sampling
from piddm.diffusion import gaussian_denoiser, karras_sigmas
from piddm.errors import PiddmError
from piddm.pdes import get_pde


@pytest.mark.parametrize(
    "sigmas",
    [torch.tensor([1.0]), torch.tensor([1.0, 2.0, 0.0]), torch.tensor([1.0, -0.5])],
)
def test_a_bad_grid_is_a_user_error(sigmas: torch.Tensor) -> None:
    """The samplers' grid check (a ``ValueError``) reaches baseline users as PiddmError."""
    pde = get_pde("darcy", S)
    x = torch.zeros(1, 2, S, S)
    with pytest.raises(PiddmError, match="sigmas"):
        prepare_sampling(lambda x, s: x, x, sigmas, pde)
    for entry in BASELINES.values():
        with pytest.raises(PiddmError, match="sigmas"):
            entry.sample(lambda x, s: x, x, sigmas, pde=pde)


def test_guided_steps_call_back_with_detached_tensors() -> None:
    """A guided step's state carries the guidance graph; the callback gets it detached."""
    pde = get_pde("poisson", S)
    data = normalised_data(pde, 1, torch.float64)
    sigmas = karras_sigmas(3)
    x = start(1, pde.num_channels, float(sigmas[0]), torch.float64)
    seen: list[dict] = []
    sample_diffusionpde(
        gaussian_denoiser(data[0], 0.3),
        x,
        sigmas,
        pde=pde,
        mask=task_mask(pde, "inverse", 1),
        obs=data,
        settings=DiffusionPDESettings(num_steps=3, zeta_obs=0.5, pde_start=0.0),
        callback=seen.append,
    )
    assert [info["i"] for info in seen] == [0, 1, 2]
    assert not any(info["x"].requires_grad or info["denoised"].requires_grad for info in seen)
