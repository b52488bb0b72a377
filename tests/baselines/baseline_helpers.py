"""Helpers shared by the baseline tests (``from baseline_helpers import ...``).

Everything is at ``S x S`` (16^2): a tiny random teacher, solver samples in normalised space,
the initial state ``sigma_max * noise`` and sparse observation masks. (A plain module, not a
``conftest.py``: see ``tests/helpers.py``.)
"""

from __future__ import annotations

import numpy as np
import torch

from helpers import tiny_unet
from piddm.diffusion import EDMPrecond
from piddm.pdes import PDE

S = 16


def tiny_teacher(channels: int = 2, seed: int = 0) -> EDMPrecond:
    """A randomly initialised tiny U-Net teacher (seeded), in eval mode."""
    torch.manual_seed(seed)
    return EDMPrecond(tiny_unet(channels)).eval()


def normalised_data(pde: PDE, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Solver samples ``0..n-1`` of ``pde``, normalised: ``(n, C, S, S)`` in ``dtype``."""
    fields = torch.from_numpy(np.stack([pde.generate(seed) for seed in range(n)]))
    return pde.normalisation.normalise(fields).to(dtype)


def start(batch: int, channels: int, sigma_max: float, dtype=torch.float32) -> torch.Tensor:
    """The initial state ``sigma_max * noise`` ``(batch, channels, S, S)`` (fixed seed)."""
    gen = torch.Generator().manual_seed(1)
    return sigma_max * torch.randn(batch, channels, S, S, generator=gen, dtype=dtype)


def task_mask(pde: PDE, task: str, batch: int, seed: int = 0) -> torch.Tensor | None:
    """Sparse (~10 %) observations: coefficient channel (forward), solution (inverse) or
    both (reconstruct)."""
    if task == "generate":
        return None
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, pde.num_channels, S, S, dtype=torch.bool)
    channels = {
        "forward": [pde.coefficient_channel],
        "inverse": [pde.solution_channel],
        "reconstruct": [pde.coefficient_channel, pde.solution_channel],
    }[task]
    for channel in channels:
        mask[:, channel] = torch.rand(batch, S, S, generator=gen) < 0.1
    return mask
