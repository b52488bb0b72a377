"""Student training (``kind: piddm | pid``): what ``piddm distill`` calls.

The student copies the teacher's architecture (grown by ``distill.grow_blocks`` refinement
blocks, identity at initialisation) and EMA weights, then trains within the run
entry shared with teachers (:func:`~piddm.training.session.run_session`) in the one loop
(:func:`piddm.training.loop.fit`: checkpoints, exact resume, DDP, stats) with
:class:`~piddm.distill.objectives.PIDDMObjective` or
:class:`~piddm.distill.objectives.PIDObjective`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piddm.checkpoint import read_checkpoint, resolve_checkpoint
from piddm.config import Config, config_to_dict, validate_config
from piddm.diffusion.one_step import PIDStudent, one_step_generator
from piddm.distill.objectives import PIDDMObjective, PIDObjective, residual_term
from piddm.distill.pairs import PairBank, PairSettings, check_pair_settings, file_digest
from piddm.errors import PiddmError
from piddm.models import load_any, resolve_model
from piddm.nets import UNetConfig, build_unet
from piddm.pdes import PDE, get_pde
from piddm.training.distributed import DistInfo
from piddm.training.loop import TrainResult, TrainSpec
from piddm.training.session import RunOptions, run_session

STUDENT_KINDS = ("piddm", "pid")


def check_teacher_matches(cfg: Config, metadata: dict[str, Any]) -> None:
    """Raise :class:`PiddmError` unless the teacher was trained for the config's PDE and grid."""
    info = metadata.get("pde", {})
    if metadata.get("kind") not in ("teacher", "pidm"):
        raise PiddmError(
            f"--teacher must be a diffusion teacher, got a '{metadata.get('kind')}' model"
        )
    if info.get("pde") != cfg.pde.name or int(info.get("resolution", -1)) != cfg.pde.resolution:
        raise PiddmError(
            f"the teacher is a {info.get('pde')} {info.get('resolution')}^2 model but the config "
            f"is for {cfg.pde.name} {cfg.pde.resolution}^2"
        )


def student_net(cfg: Config, teacher_meta: dict[str, Any]) -> UNetConfig:
    """The student's U-Net: the teacher's, with ``distill.grow_blocks`` refinement blocks per
    decoder level when that is above 0."""
    net = UNetConfig.from_dict(teacher_meta["net"])
    if cfg.distill.grow_blocks:
        net = dataclasses.replace(net, refine_blocks=cfg.distill.grow_blocks)
    return net


def student_metadata(
    cfg: Config, teacher_meta: dict[str, Any], teacher_path: str, step: int
) -> dict[str, Any]:
    """Checkpoint metadata of a student: the teacher's, with the student's kind, settings and
    U-Net."""
    meta = copy.deepcopy(teacher_meta)
    meta.update(
        kind=cfg.kind,
        step=int(step),
        config=config_to_dict(cfg),
        teacher=str(teacher_path),
        net=dataclasses.asdict(student_net(cfg, teacher_meta)),
    )
    if cfg.kind == "pid":
        diffusion = teacher_meta["diffusion"]
        meta["precond"] = {
            "type": "pid",
            "sigma_max": diffusion["sigma_max"],
            "sigma_data": teacher_meta["precond"]["sigma_data"],
        }
    meta["distill"] = config_to_dict(cfg.distill)
    return meta


def load_grown(
    net: nn.Module, tensors: dict[str, torch.Tensor], *, grown: bool, source: str
) -> None:
    """Load ``tensors`` into ``net``; when ``grown``, the refinement blocks ``net`` has beyond
    ``tensors`` keep their identity initialisation. Raise :class:`PiddmError` on any other
    mismatch."""
    try:
        missing, unexpected = net.load_state_dict(
            {k: v.float() for k, v in tensors.items()}, strict=not grown
        )
    except RuntimeError:
        missing, unexpected = ["?"], []
    if unexpected or any(".refine." not in f".{key}" for key in missing):
        raise PiddmError(
            f"{source} has another architecture than the student (distill.grow_blocks must "
            "match a grown student's refinement blocks, or exceed them when growing it)"
        )


def build_student(cfg: Config, teacher: nn.Module, teacher_meta: dict[str, Any]) -> nn.Module:
    """A trainable copy of the teacher (PIDDM) or PID's trajectory model around its U-Net,
    grown by ``distill.grow_blocks`` (:func:`student_net`; the new blocks start as the
    identity); with ``train.init_from``, the weights of that student checkpoint (a fine-tune;
    it may be a student with fewer refinement blocks)."""
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    net = student_net(cfg, teacher_meta)
    if net != student.net.config:
        teacher_net = student.net
        device = next(teacher_net.parameters()).device
        student.net = build_unet(net).to(device).train()
        load_grown(student.net, teacher_net.state_dict(), grown=True, source="the teacher")
    if cfg.kind == "pid":
        student = PIDStudent(
            student.net,
            sigma_max=float(teacher_meta["diffusion"]["sigma_max"]),
            sigma_data=float(teacher_meta["precond"]["sigma_data"]),
        )
    if cfg.train.init_from is not None:
        tensors, meta = read_checkpoint(resolve_checkpoint(resolve_model(cfg.train.init_from)))
        if meta.get("kind") != cfg.kind:
            raise PiddmError(
                f"config train.init_from: {cfg.train.init_from} is not a {cfg.kind} student"
            )
        load_grown(
            student,
            tensors,
            grown=net.refine_blocks > 0,
            source=f"config train.init_from: {cfg.train.init_from}",
        )
    return student


def distill(cfg: Config, teacher: str | os.PathLike[str], **options: Any) -> TrainResult:
    """Train a PIDDM or PID student of ``teacher`` as configured (a DDP rank under torchrun);
    ``options`` are the fields of :class:`~piddm.training.session.RunOptions` (``run_dir``,
    ``resume``, ``overwrite``, ``device``, ``progress``)."""
    run = RunOptions(**options)
    if cfg.kind not in STUDENT_KINDS:
        raise PiddmError(f"config kind: 'piddm distill' trains students, got kind {cfg.kind!r}")
    validate_config(cfg)
    teacher_path = str(teacher)
    with run_session(run) as session:
        teacher_model, teacher_meta = load_any(teacher_path, session.device)
        check_teacher_matches(cfg, teacher_meta)
        pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
        run_path, record = session.open_run_dir(cfg)
        shape = (pde.num_channels, pde.resolution, pde.resolution)
        show = session.show_progress
        objective, data = student_objective(
            cfg, pde, teacher_model, teacher_meta, teacher_path, run_path, session.info, show
        )
        spec = TrainSpec(
            kind=cfg.kind,
            model=build_student(cfg, teacher_model, teacher_meta),
            objective=objective,
            data=data,
            metadata=lambda step: student_metadata(cfg, teacher_meta, teacher_path, step),
            sample=one_step_sampler(teacher_meta, shape),
            finish=residual_report(pde),
        )
        return session.fit(cfg, spec, run_path, record)


def student_objective(
    cfg: Config,
    pde: PDE,
    teacher: nn.Module,
    teacher_meta: dict[str, Any],
    teacher_path: str,
    run_path: Path,
    info: DistInfo,
    progress: bool,
) -> tuple[PIDDMObjective | PIDObjective, torch.Tensor]:
    """``(objective, data)`` of a student run on the teacher's noise grid.

    PIDDM: the objective on a :class:`~piddm.distill.pairs.PairBank` of teacher pairs (cached
    under ``distill.pairs_cache`` or the run's ``pairs/``, keyed by the teacher file's digest;
    ``progress`` shows their generation), ``data`` the bank's buffer. PID: data-free, ``data``
    a ``(batch_size, 1)`` placeholder (only the batch size matters).
    """
    diffusion = teacher_meta["diffusion"]
    sigma_min, sigma_max = float(diffusion["sigma_min"]), float(diffusion["sigma_max"])
    d = cfg.distill
    if cfg.kind == "piddm":
        settings = PairSettings(
            size=d.pairs,
            steps=d.pair_steps,
            refresh_every=d.refresh_every,
            refresh_fraction=d.refresh_fraction,
            sigma_min=sigma_min,
            sigma_max=sigma_max,
            rho=float(diffusion["rho"]),
            batch_size=d.pair_batch_size,
        )
        check_pair_settings(settings)
        cache = Path(d.pairs_cache) if d.pairs_cache else run_path / "pairs"
        key = {"teacher": file_digest(resolve_checkpoint(resolve_model(teacher_path)))}
        targets = None
        if d.pair_targets == "solved":
            key["targets"] = "solved"  # teacher-target caches keep their key
            targets = solver_targets(pde)
        shape = (pde.num_channels, pde.resolution, pde.resolution)
        bank = PairBank(
            teacher, settings, shape, cfg.train.seed, cache, info, key, progress, targets
        )
        objective = PIDDMObjective(
            pde, bank, d.lambda_train, sigma_max, d.residual_grad, d.std_weight, d.residual_norm
        )
        return objective, bank.buffer
    pid = PIDObjective(
        pde,
        teacher,
        d.lambda_train,
        d.pid_grid,
        sigma_min,
        sigma_max,
        float(diffusion["rho"]),
        d.residual_grad,
        d.residual_norm,
    )
    return pid, torch.zeros(cfg.optim.batch_size, 1)


def solver_targets(pde: PDE) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ``solved`` pair targets: normalised endpoints ``(B, C, S, S)`` with their solution
    replaced by the solver's for their own input (:meth:`PDE.with_solver_solution`)."""
    norm = pde.normalisation

    def targets(x0: torch.Tensor) -> torch.Tensor:
        physical = norm.denormalise(x0.double())
        return norm.normalise(pde.with_solver_solution(physical)).to(x0.dtype)

    return targets


def one_step_sampler(
    teacher_meta: dict[str, Any], shape: tuple[int, ...]
) -> Callable[[nn.Module, int, torch.Generator], torch.Tensor]:
    """``sample(model, n, generator)``: one-step samples of the final EMA student."""

    def sample(model: nn.Module, n: int, generator: torch.Generator) -> torch.Tensor:
        param = next(model.parameters())
        eps = torch.randn((n, *shape), generator=generator).to(param.device)
        return one_step_generator(model, teacher_meta)(eps).float().cpu()

    return sample


def residual_report(pde: PDE) -> Callable[[torch.Tensor, Path], dict[str, Any]]:
    """``finish(samples, run_dir)``: the residual of the final student's samples."""

    def finish(samples: torch.Tensor, run_dir: Path) -> dict[str, Any]:
        residual = pde.mean_squared_residual(pde.normalisation.denormalise(samples.double()))
        return {
            "sample_residual_mean": float(residual.mean()),
            "sample_residual_median": float(residual.median()),
        }

    return finish


__all__ = ["STUDENT_KINDS", "distill", "residual_term"]
