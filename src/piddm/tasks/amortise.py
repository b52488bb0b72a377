"""``piddm amortise`` as a library: train a student's amortised start network.

The run uses the run entry and the one loop of teachers and students
(:func:`~piddm.training.session.run_session`, :func:`~piddm.training.loop.fit`: checkpoints,
exact ``--resume``, ``torchrun`` DDP, ``stats.jsonl``) with
:class:`~piddm.tasks.start.StartObjective` on the training set, the student frozen. At the
end, the EMA network's start-only error on the ``data.n_holdout`` held-out training fields
(at 3 % observed, per task) is added to the result: what :func:`start_report` measures.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from piddm.checkpoint import load_model, resolve_checkpoint
from piddm.config import Config
from piddm.data import load_normalised
from piddm.diffusion.one_step import one_step_generator
from piddm.distill.pairs import file_digest
from piddm.distill.run import STUDENT_KINDS
from piddm.errors import PiddmError
from piddm.metrics import task_metrics
from piddm.models import check_model_matches, load_any, resolve_model
from piddm.pdes import PDE, get_pde
from piddm.tasks.masks import make_mask
from piddm.tasks.start import StartObjective, build_start, start_latents, start_metadata
from piddm.training.loop import TrainResult, TrainSpec
from piddm.training.session import RunOptions, run_session
from piddm.training.teacher import data_run_config, session_training_fields

#: Observed fraction and seed of the held-out report.
REPORT_FRACTION = 0.03
REPORT_SEED = 0


def check_student_matches(cfg: Config, metadata: dict[str, Any], student: str) -> None:
    """Raise :class:`PiddmError` unless ``student`` is a one-step student of the config's PDE
    and grid."""
    if metadata.get("kind") not in STUDENT_KINDS:
        raise PiddmError(
            f"--student must be a one-step student (piddm distill), got a "
            f"'{metadata.get('kind')}' model: {student}"
        )
    check_model_matches(metadata, cfg.pde.name, cfg.pde.resolution)


def amortise(
    cfg: Config, student: str, *, data: str | os.PathLike[str] | None = None, **options: Any
) -> TrainResult:
    """Train the start network of ``student`` as configured (``kind: start``; under
    ``torchrun``: one rank of a DDP job). ``data`` overrides ``cfg.data.path`` (the file must
    then exist); ``options`` are the fields of :class:`~piddm.training.session.RunOptions`.
    Raises :class:`PiddmError` for a bad config, student or dataset."""
    run = RunOptions(**options)
    cfg = data_run_config(cfg, "start", "'piddm amortise' trains start networks", data)
    with run_session(run) as session:
        model, metadata = load_any(student, session.device)
        check_student_matches(cfg, metadata, student)
        generator = one_step_generator(model, metadata).eval()
        digest = file_digest(resolve_checkpoint(resolve_model(student)))
        pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
        path, fields = session_training_fields(cfg, pde, session, data is not None)
        run_path, record = session.open_run_dir(cfg)
        s = cfg.start
        objective = StartObjective(
            pde, generator, s.tasks, s.obs_fraction_min, s.obs_fraction_max, s.latent_penalty
        )
        torch.manual_seed(cfg.train.seed)
        spec = TrainSpec(
            kind="start",
            model=build_start(cfg, pde),
            objective=objective,
            data=fields,
            metadata=lambda step: start_metadata(cfg, pde, str(student), digest, step),
        )
        result = session.fit(cfg, spec, run_path, record)
        if session.info.is_main and cfg.data.n_holdout > 0:
            start, _ = load_model(result.checkpoint, session.device)
            held_out = load_normalised(path, pde=cfg.pde.name, resolution=cfg.pde.resolution)[0]
            truth = pde.normalisation.denormalise(held_out[-cfg.data.n_holdout :].double())
            report = start_report(start, generator, pde, truth.to(session.device), s.tasks)
            result.extra["held_out"] = report
        return result


def start_report(
    start: nn.Module,
    generator: nn.Module,
    pde: PDE,
    truth: torch.Tensor,
    tasks: tuple[str, ...],
    fraction: float = REPORT_FRACTION,
    seed: int = REPORT_SEED,
) -> dict[str, dict[str, float | None]]:
    """Per task, the :func:`piddm.metrics.task_metrics` of the start alone,
    ``M * x' + (1 - M) * G(E(y, M))``, on ``truth`` ``(N, C, S, S)`` (physical) observed at
    ``fraction`` (masks from ``seed``)."""
    report = {}
    for task in tasks:
        rng = torch.Generator().manual_seed(seed)
        mask = make_mask(pde, task, fraction, rng, n=len(truth)).to(truth.device)
        with torch.no_grad():
            eps0 = start_latents(start, pde, truth, mask)
            field = pde.normalisation.denormalise(generator(eps0).double())
        estimate = torch.where(mask, truth, field)
        report[task] = task_metrics(pde, estimate.cpu().numpy(), truth.cpu().numpy())
    return report


__all__ = ["amortise", "check_student_matches", "start_report"]
