"""Gaussian random fields used as PDE inputs (docs/method.md, "Gaussian random fields").

* 2-D, Neumann (cosine basis), as in the FNO / DiffusionPDE generators:
  ``coef(k1, k2) = tau**(alpha-1) * (pi**2 (k1**2 + k2**2) + tau**2)**(-alpha/2)``,
  ``L = S * coef * xi`` with ``xi ~ N(0, 1)^(S x S)``, ``L[0, 0] = 0``,
  field = orthonormal inverse 2-D DCT-II of ``L``. The mean of every sample is exactly 0.
* 1-D, periodic: ``sqrt(lambda_k) = sqrt(2) sigma (4 pi**2 k**2 + tau**2)**(-alpha/2)``,
  ``sigma = tau**((2 alpha - 1)/2)``, mode ``k = 0`` zero; real part of the inverse FFT.
"""

from __future__ import annotations

import numpy as np
from scipy import fft


def grf2d_spectrum(resolution: int, alpha: float, tau: float) -> np.ndarray:
    """Amplitudes ``S * coef(k1, k2)`` of the DCT modes, ``(S, S)``, with the mean mode zero."""
    k = np.arange(resolution, dtype=np.float64)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    coef = tau ** (alpha - 1.0) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2.0)
    amplitude = resolution * coef
    amplitude[0, 0] = 0.0
    return amplitude


def grf2d_modes(resolution: int, alpha: float, tau: float) -> np.ndarray:
    """The GRF's linear map as fields: ``(S^2 modes, S, S)``, entry ``k`` the inverse DCT of
    mode ``k`` scaled by its amplitude, so that ``grf2d``'s field is ``sum_k xi_k modes[k]``
    with ``xi = rng.standard_normal((S, S)).ravel()``."""
    nodes = resolution * resolution
    amplitude = grf2d_spectrum(resolution, alpha, tau).ravel()
    units = np.eye(nodes).reshape(nodes, resolution, resolution) * amplitude[:, None, None]
    return fft.idctn(units, type=2, norm="ortho", axes=(-2, -1))


def grf2d(
    rng: np.random.Generator, resolution: int, alpha: float = 2.0, tau: float = 3.0
) -> np.ndarray:
    """One sample ``(S, S)`` float64 of the 2-D Neumann GRF."""
    xi = rng.standard_normal((resolution, resolution))
    return fft.idctn(grf2d_spectrum(resolution, alpha, tau) * xi, type=2, norm="ortho")


def grf1d_spectrum(resolution: int, alpha: float, tau: float) -> np.ndarray:
    """Standard deviations ``sqrt(lambda_k)`` of the Fourier modes ``k = 0..S-1`` (``k=0`` zero).

    Modes above ``S/2`` are aliases of negative wave numbers and use ``|k|`` of that alias.
    """
    k = np.fft.fftfreq(resolution, d=1.0 / resolution)
    sigma = tau ** ((2.0 * alpha - 1.0) / 2.0)
    sqrt_eig = np.sqrt(2.0) * sigma * (4.0 * np.pi**2 * k**2 + tau**2) ** (-alpha / 2.0)
    sqrt_eig[0] = 0.0
    return sqrt_eig


def grf1d_periodic(
    rng: np.random.Generator, resolution: int, alpha: float = 2.5, tau: float = 7.0
) -> np.ndarray:
    """One sample ``(S,)`` float64 of the 1-D periodic GRF on ``x_j = j / S``.

    Complex white noise is coloured by the spectrum and transformed with the inverse FFT
    scaled by ``S`` (so each mode has amplitude ``sqrt(lambda_k)`` in physical space).
    """
    xi = rng.standard_normal(resolution) + 1j * rng.standard_normal(resolution)
    coeffs = grf1d_spectrum(resolution, alpha, tau) * xi
    return np.real(np.fft.ifft(coeffs) * resolution)
