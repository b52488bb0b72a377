"""Training: one generic loop (EMA, checkpoints, exact resume, DDP) and the teacher objective.

* :func:`train`: ``piddm train`` as a function (teacher runs, docs/method.md, "EDM teacher");
* :func:`run_session`: the run entry of teachers and students (process group, device, run
  directory), which destroys only a process group it created;
* :func:`fit`: the loop itself (:class:`TrainingRun`), generic over an :class:`Objective`,
  reused by students;
* :func:`piddm.checkpoint.load_model`: rebuild a trained denoiser from its checkpoint.
"""

from piddm.checkpoint import load_model
from piddm.training.loop import (
    EMA,
    EpochSampler,
    TrainingRun,
    TrainResult,
    TrainSpec,
    fit,
    learning_rate,
)
from piddm.training.objectives import BatchRandom, Objective, TeacherObjective
from piddm.training.session import RunSession, run_session
from piddm.training.teacher import build_teacher, teacher_metadata, train

__all__ = [
    "EMA",
    "BatchRandom",
    "EpochSampler",
    "Objective",
    "RunSession",
    "TeacherObjective",
    "TrainResult",
    "TrainSpec",
    "TrainingRun",
    "build_teacher",
    "fit",
    "learning_rate",
    "load_model",
    "run_session",
    "teacher_metadata",
    "train",
]
