"""Teacher training (``kind: teacher``): an EDM denoiser on a solver-backed dataset.

:func:`train` is what ``piddm train`` calls: within the run entry shared with students
(:func:`~piddm.training.session.run_session`: ``torchrun`` job, device, run directory) it
loads (or first generates) and validates the dataset, prepares the run directory, builds
``EDMPrecond(UNet)`` and hands everything to the generic loop :func:`~piddm.training.loop.fit`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from piddm import __version__
from piddm.checkpoint import read_checkpoint, resolve_checkpoint
from piddm.config import Config, config_to_dict, validate_config
from piddm.data import load_normalised, write_dataset
from piddm.data.generate import generate_dataset
from piddm.diffusion import EDMLoss, EDMPrecond, karras_sigmas, sample_heun
from piddm.errors import PiddmError
from piddm.models import resolve_model
from piddm.nets import UNetConfig, build_unet
from piddm.pdes import PDE, get_pde
from piddm.plotting import dataset_figure, save_figure
from piddm.training.distributed import barrier, run_on_main
from piddm.training.loop import STREAM_INIT, TrainResult, TrainSpec, derive_seed
from piddm.training.objectives import TeacherObjective
from piddm.training.session import RunOptions, RunSession, run_session


def unet_config(cfg: Config, pde: PDE) -> UNetConfig:
    """The :class:`piddm.nets.UNetConfig` of ``cfg.net`` for ``pde``'s channels."""
    net = cfg.net
    return UNetConfig(
        in_channels=net.in_channels or pde.num_channels,
        out_channels=net.out_channels or pde.num_channels,
        base_channels=net.base_channels,
        channel_mult=net.channel_mult,
        num_res_blocks=net.num_res_blocks,
        attention=net.attention,
        dropout=net.dropout,
        num_groups=net.num_groups,
        embedding_dim=net.embedding_dim,
    )


def build_teacher(cfg: Config, pde: PDE) -> nn.Module:
    """A freshly initialised ``EDMPrecond(UNet)``, identical on every rank for a given seed."""
    torch.manual_seed(derive_seed(cfg.train.seed, STREAM_INIT))
    return EDMPrecond(build_unet(unet_config(cfg, pde)), sigma_data=cfg.diffusion.sigma_data)


def teacher_metadata(cfg: Config, pde: PDE, step: int) -> dict[str, Any]:
    """Checkpoint metadata: everything :func:`piddm.checkpoint.load_model` needs, and more."""
    d = cfg.diffusion
    return {
        "format_version": 1,
        # PIDM (Bastek et al.): a teacher trained with the residual of its denoised output.
        "kind": "pidm" if cfg.loss.residual_weight > 0 else "teacher",
        "step": int(step),
        "ema": True,
        "net": dataclasses.asdict(unet_config(cfg, pde)),
        "precond": {"type": "edm", "sigma_data": d.sigma_data},
        "pde": pde.describe(),
        "diffusion": {
            "sigma_min": d.sigma_min,
            "sigma_max": d.sigma_max,
            "rho": d.rho,
            "steps": d.steps,
            "sampler": "heun",
        },
        "config": config_to_dict(cfg),
        "piddm_version": __version__,
    }


def ensure_dataset(cfg: Config, pde: PDE, explicit: bool, progress: bool) -> Path:
    """The dataset path; generates it with the solver if missing and ``data.n`` is set."""
    if cfg.data.path is None:
        raise PiddmError("config data.path: no dataset given (set data.path or pass --data FILE)")
    path = Path(cfg.data.path)
    if path.exists():
        return path
    if explicit or cfg.data.n is None:
        hint = "" if explicit else " (set data.n to generate it with the solver)"
        raise PiddmError(f"dataset {path} does not exist{hint}")
    path.parent.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(os.cpu_count() or 1, 8)) if cfg.data.n >= 256 else 1
    return generate_dataset(
        pde, cfg.data.n, cfg.data.seed, path, workers=workers, progress=progress
    )


def load_training_fields(cfg: Config, pde: PDE, path: Path) -> torch.Tensor:
    """Normalised training fields ``(N - n_holdout, C, S, S)``, validated against the config."""
    fields, file_pde = load_normalised(path, pde=cfg.pde.name, resolution=cfg.pde.resolution)
    if file_pde.params != pde.params:
        raise PiddmError(
            f"dataset {path} was generated with {cfg.pde.name} parameters {file_pde.params}, "
            f"but the config has {pde.params}"
        )
    if tuple(fields.shape[1:]) != (pde.num_channels, pde.resolution, pde.resolution):
        raise PiddmError(
            f"dataset {path} holds fields of shape {tuple(fields.shape[1:])}, expected "
            f"{(pde.num_channels, pde.resolution, pde.resolution)}"
        )
    n_train = fields.shape[0] - cfg.data.n_holdout
    if n_train < 1:
        raise PiddmError(
            f"config data.n_holdout: {cfg.data.n_holdout} leaves no training samples of the "
            f"{fields.shape[0]} in {path}"
        )
    return fields[:n_train].contiguous()


def heun_sampler(
    cfg: Config, pde: PDE
) -> Callable[[nn.Module, int, torch.Generator], torch.Tensor]:
    """``sample(model, n, generator) -> (n, C, S, S)`` normalised samples (deterministic Heun)."""
    d = cfg.diffusion

    def sample(model: nn.Module, n: int, generator: torch.Generator) -> torch.Tensor:
        param = next(model.parameters())
        shape = (n, pde.num_channels, pde.resolution, pde.resolution)
        sigmas = karras_sigmas(d.steps, d.sigma_min, d.sigma_max, d.rho, device=param.device)
        x = torch.randn(shape, generator=generator).to(param.device, torch.float64) * sigmas[0]
        out = sample_heun(model, x, sigmas)
        return out.to(torch.float32).cpu()

    return sample


def sample_writer(pde: PDE, cfg: Config) -> Callable[[torch.Tensor, Path], dict[str, Any]]:
    """``finish(samples, run_dir)``: save samples + figure, return their PDE residual."""

    def finish(samples: torch.Tensor, run_dir: Path) -> dict[str, Any]:
        physical = pde.normalisation.denormalise(samples.double())
        residual = pde.mean_squared_residual(physical)
        write_dataset(
            run_dir / "samples" / "final.h5",
            physical.float().numpy(),
            np.arange(len(samples)),
            pde,
            generator={"source": "piddm train", "sampler": "heun", "steps": cfg.diffusion.steps},
            overwrite=True,
        )
        plot_samples(physical.numpy(), pde, run_dir / "figures" / "samples.png")
        return {
            "sample_residual_mean": float(residual.mean()),
            "sample_residual_median": float(residual.median()),
        }

    return finish


def plot_samples(fields: np.ndarray, pde: PDE, out: Path, max_rows: int = 4) -> None:
    """The first ``max_rows`` samples of ``fields`` ``(N, C, S, S)`` (physical units), in the
    figure style of ``piddm data show`` (:func:`piddm.plotting.dataset_figure`): a row per
    sample, each channel and its residual map with its relative residual and solver
    consistency."""
    save_figure(samples_figure(fields, pde, max_rows), out)


def samples_figure(fields: np.ndarray, pde: PDE, max_rows: int = 4) -> Figure:
    """The figure of :func:`plot_samples` (same arguments, no file)."""
    title = f"{pde.name} {pde.resolution}x{pde.resolution}: teacher samples at the end of training"
    return dataset_figure(fields[:max_rows], pde, title)


def train(
    cfg: Config, *, data: str | os.PathLike[str] | None = None, **options: Any
) -> TrainResult:
    """Train a teacher as configured (under ``torchrun``: one rank of a DDP job).

    ``data`` overrides ``cfg.data.path`` (the file must then exist); ``options`` are the
    fields of :class:`~piddm.training.session.RunOptions` (``run_dir``, ``resume``,
    ``overwrite``, ``device``, ``progress``). Raises
    :class:`PiddmError` for user errors: bad config, missing / mismatching / NaN dataset, an
    existing run directory with checkpoints without ``resume`` or ``overwrite``.
    """
    run = RunOptions(**options)
    cfg = data_run_config(cfg, "teacher", "'piddm train' trains teachers", data)
    with run_session(run) as session:
        pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
        _, fields = session_training_fields(cfg, pde, session, data is not None)
        run_path, record = session.open_run_dir(cfg)
        model = build_teacher(cfg, pde)
        if cfg.train.init_from is not None:
            warm_start(model, cfg, pde)
        spec = TrainSpec(
            kind="teacher",
            model=model,
            objective=_objective(cfg, pde),
            data=fields,
            metadata=lambda step: teacher_metadata(cfg, pde, step),
            sample=heun_sampler(cfg, pde),
            finish=sample_writer(pde, cfg),
        )
        return session.fit(cfg, spec, run_path, record)


def data_run_config(
    cfg: Config, kind: str, what: str, data: str | os.PathLike[str] | None
) -> Config:
    """The validated config of a run that trains on a dataset: ``kind`` checked (``what``
    says what the command trains, for the error) and ``data`` replacing ``data.path``."""
    if cfg.kind != kind:
        raise PiddmError(f"config kind: {what}, got kind {cfg.kind!r}")
    if data is not None:
        cfg = cfg.replace({"data.path": str(data)})
    validate_config(cfg)
    return cfg


def session_training_fields(
    cfg: Config, pde: PDE, session: RunSession, explicit: bool
) -> tuple[Path, torch.Tensor]:
    """``(dataset path, normalised training fields)`` of a run: the dataset made on rank 0
    if it is missing (:func:`ensure_dataset`; ``explicit``: given by ``--data``, so it must
    exist), then read on every rank (:func:`load_training_fields`)."""
    show = session.show_progress
    path = run_on_main(lambda: ensure_dataset(cfg, pde, explicit, show), session.info)
    barrier(session.info)
    return path, load_training_fields(cfg, pde, path)


def warm_start(model: nn.Module, cfg: Config, pde: PDE) -> None:
    """Load the weights of ``cfg.train.init_from`` into ``model`` (same architecture required)."""
    assert cfg.train.init_from is not None
    tensors, meta = read_checkpoint(resolve_checkpoint(resolve_model(cfg.train.init_from)))
    try:
        same_net = UNetConfig(**meta.get("net", {})) == unet_config(cfg, pde)
    except (TypeError, ValueError):
        same_net = False
    if not same_net or meta.get("pde", {}).get("pde") != pde.name:
        raise PiddmError(
            f"config train.init_from: {cfg.train.init_from} is not a {pde.name} model with the "
            f"architecture of this config's net section"
        )
    model.load_state_dict(tensors)


def _objective(cfg: Config, pde: PDE) -> TeacherObjective:
    """The EDM loss of ``cfg.diffusion``, plus PIDM's residual term if ``loss.residual_weight``."""
    d = cfg.diffusion
    edm = EDMLoss(p_mean=d.P_mean, p_std=d.P_std, sigma_data=d.sigma_data)
    return TeacherObjective(edm, pde, cfg.loss.residual_weight)
