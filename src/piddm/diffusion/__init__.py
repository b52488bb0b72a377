"""EDM diffusion: preconditioning, training loss, noise schedules and ODE samplers.

The pieces are independent and meet through one interface, the denoiser
``D(x (B, C, S, S), sigma (B,)) -> (B, C, S, S)``.
"""

from piddm.diffusion.gaussian import gaussian_denoiser, gaussian_flow
from piddm.diffusion.loss import DenoisedBatch, EDMLoss
from piddm.diffusion.preconditioning import EDMPrecond, edm_coefficients
from piddm.diffusion.samplers import (
    SAMPLERS,
    Callback,
    count_nfe,
    denoise,
    heun_step,
    noise_grid,
    sample_euler,
    sample_heun,
)
from piddm.diffusion.schedules import karras_sigmas
from piddm.diffusion.utils import Denoiser

__all__ = [
    "SAMPLERS",
    "Callback",
    "DenoisedBatch",
    "Denoiser",
    "EDMLoss",
    "EDMPrecond",
    "count_nfe",
    "denoise",
    "edm_coefficients",
    "gaussian_denoiser",
    "gaussian_flow",
    "heun_step",
    "karras_sigmas",
    "noise_grid",
    "sample_euler",
    "sample_heun",
]
