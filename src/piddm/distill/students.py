"""The one-step students of :mod:`piddm.distill`, re-exported from where they are defined.

The student networks and their generators ``G(eps) -> x`` (normalised fields) live in
:mod:`piddm.diffusion.one_step`, below :mod:`piddm.checkpoint` and :mod:`piddm.sampling`,
which rebuild and sample them:

* **PIDDM**: an ``EDMPrecond`` student generating ``G(eps) = D_student(smax eps; smax)``
  (:class:`~piddm.diffusion.one_step.OneStep`);
* **PID** (Tee et al.): the trajectory model :class:`PIDStudent`, generating
  ``x_theta(smax eps, smin)`` (:class:`PIDOneStep`).
"""

from __future__ import annotations

from piddm.diffusion.one_step import OneStep, PIDOneStep, PIDStudent, one_step_generator

__all__ = ["OneStep", "PIDOneStep", "PIDStudent", "one_step_generator"]
