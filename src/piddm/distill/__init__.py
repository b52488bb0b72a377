"""Physics-informed distillation: PIDDM one-step students (SPEC section 3) and PID (section 4).

* :func:`distill`: train a student of a teacher checkpoint in the one training loop;
* :func:`one_step_generator`: a student checkpoint as ``G(eps) -> x`` (one network call);
* ``piddm sample`` draws from students through :func:`student_sampler` (``--refine K``:
  PIDDM-ref, ``K`` latent gradient steps on the residual before the final evaluation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from piddm.config import DistillConfig
from piddm.distill.students import PIDOneStep, PIDStudent, one_step_generator
from piddm.pdes import PDE
from piddm.sampling import STUDENT_SAMPLERS, BatchSampler

#: ``lambda_infer`` of PIDDM-ref when sampling with ``--refine``.
REFINE_LAMBDA = 1.0
REFINE_LR = 0.05


def residual_norm_of(metadata: dict[str, Any]) -> str:
    """The physics term a student checkpoint was trained with (``distill.residual_norm``;
    checkpoints from before the setting existed: its default, the plain residual)."""
    return str((metadata.get("distill") or {}).get("residual_norm", DistillConfig.residual_norm))


def refinement_nfe(steps: int) -> int:
    """Network evaluations of one refined sample: ``steps`` forward + ``steps`` backward + 1."""
    return 2 * steps + 1


def student_sampler(
    model: nn.Module, metadata: dict[str, Any], pde: PDE, steps: int | None = None, refine: int = 0
) -> tuple[BatchSampler, int]:
    """``(fn(eps) -> x, nfe)`` of a student: ``G(eps)``, or ``G(refine(eps))`` if ``refine > 0``."""
    from piddm.errors import PiddmError
    from piddm.tasks import LatentOptConfig
    from piddm.tasks import refine as refine_latents

    if steps not in (None, 1):
        raise PiddmError("--steps applies to diffusion teachers; students sample in one step")
    generator = one_step_generator(model, metadata)
    # PIDDM-ref descends the physics term the student was trained with.
    config = LatentOptConfig(
        steps=refine,
        lr=REFINE_LR,
        lambda_infer=REFINE_LAMBDA,
        residual_norm=residual_norm_of(metadata),
    )

    def run(eps: torch.Tensor) -> torch.Tensor:
        if refine:
            eps = refine_latents(generator, pde, eps, config)
        with torch.no_grad():
            return generator(eps)

    return run, refinement_nfe(refine)


STUDENT_SAMPLERS["piddm"] = student_sampler
STUDENT_SAMPLERS["pid"] = student_sampler


def __getattr__(name: str) -> Any:
    # The training entry point imports the training stack: load it on first use only.
    if name == "distill":
        from piddm.distill.run import distill

        return distill
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PIDOneStep",
    "PIDStudent",
    "distill",
    "one_step_generator",
    "refinement_nfe",
    "residual_norm_of",
    "student_sampler",
]
