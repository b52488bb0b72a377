"""One-step generators ``G(eps) -> x`` of the students, and PID's student parametrisation.

A one-step generator maps standard normal latents ``eps (B, C, S, S)`` to fields
``(B, C, S, S)`` in the PDE's normalised space in one network evaluation
(docs/method.md, "PIDDM student" and "PID student"):

* **PIDDM**: the student is an ``EDMPrecond`` denoiser like the teacher, initialised from it,
  and generates ``G(eps) = D_student(smax eps; smax)`` (:class:`OneStep`).
* **PID** (Tee et al. 2024): the student is the trajectory
  ``x_theta(z, t) = (t/smax) z + (1 - t/smax) F_theta(c_in z, c_noise(t))``, ``z = smax eps``,
  with the constant ``c_in = 1/sqrt(sd^2 + smax^2)`` and ``c_noise = ln(t)/4``, so that
  ``x_theta(z, smax) = z`` exactly (:class:`PIDStudent`); it generates ``x_theta(z, smin)``
  (:class:`PIDOneStep`).

The module sits below :mod:`piddm.checkpoint` (which rebuilds PID students through
:func:`build_pid_student`), :mod:`piddm.sampling` and :mod:`piddm.tasks`, which all take
their generators from :func:`one_step_generator`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from piddm.diffusion.schedules import SIGMA_MAX, SIGMA_MIN
from piddm.diffusion.utils import append_dims, batch_sigma


class OneStep(nn.Module):
    """The PIDDM student as a generator: ``G(eps) = D(sigma_max * eps; sigma_max)``.

    ``forward(eps (R, C, S, S)) -> (R, C, S, S)`` normalised fields; ``denoiser`` is any
    ``D(x, sigma)`` (a module's parameters and train/eval mode are shared).
    """

    def __init__(self, denoiser: Callable[..., torch.Tensor], sigma_max: float = SIGMA_MAX) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.sigma_max = float(sigma_max)

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return self.denoiser(self.sigma_max * eps, self.sigma_max)


def one_step(denoiser: Callable[..., torch.Tensor], sigma_max: float = SIGMA_MAX) -> OneStep:
    """Wrap a denoiser as the one-step generator ``G(eps) = D(sigma_max eps; sigma_max)``."""
    return OneStep(denoiser, sigma_max)


class PIDStudent(nn.Module):
    """PID's boundary-preserving trajectory model around an inner network ``F(x, c_noise)``.

    ``forward(z (B, C, S, S), t (B,) | float) -> (B, C, S, S)``.
    """

    def __init__(
        self, net: nn.Module, sigma_max: float = SIGMA_MAX, sigma_data: float = 0.5
    ) -> None:
        super().__init__()
        self.net = net
        self.sigma_max = float(sigma_max)
        self.sigma_data = float(sigma_data)
        self.c_in = 1.0 / math.sqrt(sigma_data**2 + sigma_max**2)

    def forward(self, z: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        t = batch_sigma(t, z)
        weight = append_dims(t / self.sigma_max, z.ndim)
        inner = self.net(self.c_in * z, t.log() / 4)
        return weight * z + (1.0 - weight) * inner.to(z.dtype)


def build_pid_student(net: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """The checkpoint builder of precond type ``pid``: ``spec`` holds ``sigma_max`` and
    ``sigma_data`` (a checkpoint's ``metadata["precond"]``)."""
    return PIDStudent(net, sigma_max=float(spec["sigma_max"]), sigma_data=float(spec["sigma_data"]))


class PIDOneStep(nn.Module):
    """PID generator ``G(eps) = x_theta(smax eps, smin)``: ``(B, C, S, S) -> (B, C, S, S)``."""

    def __init__(self, student: PIDStudent, sigma_min: float = SIGMA_MIN) -> None:
        super().__init__()
        self.student = student
        self.sigma_min = float(sigma_min)

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return self.student(self.student.sigma_max * eps, self.sigma_min)


def one_step_generator(model: nn.Module, metadata: dict[str, Any]) -> nn.Module:
    """The one-step generator of a student checkpoint (``kind`` ``piddm`` or ``pid``)."""
    diffusion = metadata.get("diffusion", {})
    sigma_max = float(diffusion.get("sigma_max", SIGMA_MAX))
    if isinstance(model, PIDStudent):
        return PIDOneStep(model, float(diffusion.get("sigma_min", SIGMA_MIN)))
    return OneStep(model, sigma_max)
