"""Physics-informed distillation (docs/method.md, "PIDDM student", "PID student").

* :func:`distill`: train a student of a teacher checkpoint in the one training loop;
* :func:`one_step_generator`: a student checkpoint as ``G(eps) -> x`` (one network call);
* ``piddm sample`` draws from students through :func:`student_sampler` (``--refine K``:
  PIDDM-ref, ``K`` latent gradient steps on the residual before the final evaluation).

The generators are defined in :mod:`piddm.diffusion.one_step` and the student sampler in
:mod:`piddm.sampling`, below the checkpoint loader and the samplers that use them.
"""

from __future__ import annotations

from piddm.diffusion.one_step import PIDOneStep, PIDStudent, one_step_generator
from piddm.distill.run import distill
from piddm.sampling import StudentSampler, measured_nfe, residual_norm_of, student_sampler

__all__ = [
    "PIDOneStep",
    "PIDStudent",
    "StudentSampler",
    "distill",
    "measured_nfe",
    "one_step_generator",
    "residual_norm_of",
    "student_sampler",
]
