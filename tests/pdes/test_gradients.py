"""Every registered PDE's residual operator is differentiable: autograd gradients match finite
differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from piddm.pdes import available_pdes, get_pde


@pytest.mark.parametrize("name", available_pdes())
def test_residual_gradcheck(name: str) -> None:
    pde = get_pde(name, 8)
    x = torch.from_numpy(np.stack([pde.generate(s) for s in range(2)]))
    x = (x + 0.01 * torch.randn(x.shape, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(pde.residual, (x,), eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", available_pdes())
def test_mean_squared_residual_gradient_flows_to_every_channel(name: str) -> None:
    pde = get_pde(name, 16)
    x = torch.from_numpy(pde.generate(0))[None].float()
    x = (x + 0.01).requires_grad_(True)
    pde.normalised_residual(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for c in range(pde.num_channels):
        assert x.grad[:, c].abs().sum() > 0
