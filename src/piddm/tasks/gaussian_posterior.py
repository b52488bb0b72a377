"""The exact Bayes posterior of the linear-Gaussian PDEs: the best any method can do.

For Poisson and Helmholtz the coefficient is the Neumann GRF of :mod:`piddm.pdes.grf` and the
solution is linear in it, so the joint field ``x = [a; u]`` is Gaussian with mean 0:

    a = Phi diag(s) xi,  xi ~ N(0, I_{S^2}),     u = K a,      x = B xi,  B = [I; K] Phi diag(s),

with ``Phi`` the orthonormal inverse 2-D DCT-II, ``s`` the GRF amplitudes
(:func:`~piddm.pdes.grf.grf2d_spectrum`) and ``K`` the discrete solution operator (the PDE's
own solver, so the prior is that of the dataset to round-off). Given noise-free observations
``y = x_o`` on an index set ``o``, the posterior is Gaussian (kriging):

    mean = C[:, o] C[o, o]^+ y,      var = diag(C) - diag(C[:, o] C[o, o]^+ C[o, :]),   C = B B^T.

Its mean minimises the expected squared error of every node given the observations, so its
error on held-out data is the floor for every method's forward / inverse error under the same
observations (the Bayes risk); ``C[o, o]^+`` is a pseudo-inverse because observed boundary
values of ``u`` are exactly 0 (zero prior variance). ``B`` is dense, ``(2 S^2, S^2)``, so this is
for ``S <= 64`` (``S = 64``: 270 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.pdes.grf import grf2d_modes, grf2d_spectrum

#: Largest grid for the dense prior factor ``B`` ``(2 S^2, S^2)``.
MAX_RESOLUTION = 64


@dataclass(frozen=True)
class GaussianPrior:
    """The prior ``x = B xi`` of a linear-Gaussian PDE: ``factor`` ``B`` ``(C S^2, S^2)``."""

    factor: np.ndarray
    shape: tuple[int, int, int]

    def covariance_columns(self, index: np.ndarray) -> np.ndarray:
        """``C[:, index]`` ``(C S^2, len(index))`` of the prior covariance ``C = B B^T``."""
        return self.factor @ self.factor[index].T

    def variance(self) -> np.ndarray:
        """``diag(C)`` ``(C S^2,)``."""
        return np.einsum("ij,ij->i", self.factor, self.factor)


def gaussian_prior(pde: PDE) -> GaussianPrior:
    """The exact prior of ``pde``'s dataset fields; :class:`PiddmError` if it is not Gaussian."""
    if not getattr(pde, "linear_gaussian", False):
        raise PiddmError(
            f"{pde.name}: the exact Gaussian posterior needs a GRF input and a solution linear "
            f"in it (poisson, helmholtz)"
        )
    size = pde.resolution
    if size > MAX_RESOLUTION:
        raise PiddmError(
            f"the exact Gaussian posterior is dense: resolution at most {MAX_RESOLUTION}, "
            f"got {size}"
        )
    nodes = size * size
    amplitude = grf2d_spectrum(size, pde.grf_alpha, pde.grf_tau).ravel()
    coefficient = grf2d_modes(size, pde.grf_alpha, pde.grf_tau)  # column k of Phi diag(s)
    columns = np.empty((nodes, pde.num_channels, size, size))
    for k in range(nodes):
        columns[k] = pde.solve(coefficient[k]) if amplitude[k] > 0 else 0.0
    factor = columns.reshape(nodes, -1).T.copy()  # (C S^2, S^2)
    return GaussianPrior(factor=factor, shape=(pde.num_channels, size, size))


def gaussian_posterior(
    pde: PDE,
    obs: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor,
    prior: GaussianPrior | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std ``(N, C, S, S)`` float64 given ``obs`` at ``mask`` (both
    ``(N, C, S, S)``, physical units, ``True`` where observed).

    The mean equals ``obs`` at observed nodes and the std is 0 there.
    """
    prior = prior or gaussian_prior(pde)
    obs = np.asarray(torch.as_tensor(obs).cpu(), dtype=np.float64)
    mask = np.asarray(torch.as_tensor(mask).cpu(), dtype=bool)
    if obs.shape[1:] != prior.shape or mask.shape != obs.shape:
        raise PiddmError(
            f"observations {obs.shape} and mask {mask.shape} must both be (N, *{prior.shape})"
        )
    flat_obs, flat_mask = obs.reshape(len(obs), -1), mask.reshape(len(mask), -1)
    prior_var = prior.variance()
    mean = np.zeros_like(flat_obs)
    var = np.tile(prior_var, (len(obs), 1))
    for i in range(len(obs)):
        index = np.flatnonzero(flat_mask[i])
        if index.size == 0:
            continue
        cross = prior.covariance_columns(index)  # C[:, o]
        gram_pinv = scipy.linalg.pinvh(cross[index], rtol=1e-12)  # C[o, o]^+
        mean[i] = cross @ (gram_pinv @ flat_obs[i, index])
        var[i] = prior_var - ((cross @ gram_pinv) * cross).sum(axis=1)
        mean[i, index] = flat_obs[i, index]
        var[i, index] = 0.0
    std = np.sqrt(np.clip(var, 0.0, None))
    return mean.reshape(obs.shape), std.reshape(obs.shape)
