"""``piddm train``: train an EDM teacher from a config (single process or under ``torchrun``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import torch

from piddm.commands.options import (
    config_option,
    device_option,
    json_flag,
    override_options,
    path_option,
    run_dir_options,
)
from piddm.commands.runs import report_run, run_options, run_overrides
from piddm.config import Config, config_to_dict, load_config, validate_config
from piddm.diffusion import EDMPrecond
from piddm.errors import PiddmError
from piddm.jsonio import emit_json
from piddm.models import resolve_model
from piddm.nets import build_unet
from piddm.pdes import get_pde
from piddm.training import train
from piddm.training.teacher import load_training_fields, unet_config


@click.command("train")
@config_option("YAML config (e.g. configs/smoke.yaml).")
@path_option("--data", as_path=True, help="Dataset FILE.h5 (overrides data.path; must exist).")
@run_dir_options(
    "Run directory (default: runs/NNNNN-<pde>-<res>-<desc>, the next free number).",
    "Training steps (overrides train.steps).",
    "Continue the run in --run-dir (default: the newest matching run) from its latest checkpoint.",
)
@device_option
@override_options("optim.lr=1e-3")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate the config, the dataset and the network, print a summary and exit without "
    "training (nothing is written).",
)
@json_flag("Print one JSON object of results.")
def command(
    config_path: Path,
    data: Path | None,
    run_dir: Path | None,
    steps: int | None,
    resume: bool,
    overwrite: bool,
    device: str,
    overrides: tuple[str, ...],
    progress: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Train an EDM teacher (docs/method.md, "EDM teacher") as configured.

    Writes runs/NNNNN-<pde>-<res>-<desc>/ with config.json, log.txt, stats.jsonl,
    checkpoints/ (EMA weights as .safetensors, training state for --resume, final.safetensors),
    samples/ and figures/. If the dataset file does not exist and the config sets data.n, it is
    generated with the solver first. Under `torchrun --nproc_per_node K -m piddm train ...`
    the global batch is split over K ranks (same results up to float reduction order).
    """
    cfg = load_config(config_path, run_overrides(overrides, {"train.steps": steps}))
    if dry_run:
        summary = check_run(cfg, data)
        if as_json:
            emit_json(summary)
        else:
            source = (
                f"{summary['data_samples']} samples in {summary['data']}"
                if summary["data_samples"] is not None
                else f"{summary['data']} (to be generated: {cfg.data.n} samples)"
            )
            click.echo(
                f"config OK: {cfg.pde.name} {cfg.pde.resolution}^2 teacher, "
                f"{summary['parameters']:,} parameters, {cfg.train.steps} steps; data {source}; "
                f"nothing trained (--dry-run)"
            )
        return
    result = train(cfg, data=data, **run_options())
    report_run(result, as_json, "trained", with_loss=True)


def check_run(cfg: Config, data: Path | None) -> dict[str, Any]:
    """``piddm train --dry-run``: validate ``cfg`` as :func:`piddm.training.train` would, without
    training, generating data or touching a run directory.

    Checks the kind, the PDE, the dataset (if it exists: readable, of the config's PDE, grid
    and parameters, enough samples after ``data.n_holdout``; else that ``data.n`` lets the
    solver generate it) and builds the network on PyTorch's ``meta`` device (no memory) and
    runs one forward pass there, which catches architectures the U-Net cannot take. Returns a
    JSON-ready summary; raises :class:`PiddmError` for any problem.
    """
    if cfg.kind != "teacher":
        raise PiddmError(f"config kind: 'piddm train' trains teachers, got kind {cfg.kind!r}")
    if data is not None:
        cfg = cfg.replace({"data.path": str(data)})
    validate_config(cfg)
    pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
    if cfg.data.path is None:
        raise PiddmError("config data.path: no dataset given (set data.path or pass --data FILE)")
    path = Path(cfg.data.path)
    samples = None
    if path.exists():
        samples = int(load_training_fields(cfg, pde, path).shape[0])
    elif data is not None or cfg.data.n is None:
        hint = "" if data is not None else " (set data.n to generate it with the solver)"
        raise PiddmError(f"dataset {path} does not exist{hint}")
    if cfg.train.init_from is not None:
        resolve_model(cfg.train.init_from)
    shape = (1, pde.num_channels, pde.resolution, pde.resolution)
    try:
        with torch.device("meta"):
            model = EDMPrecond(
                build_unet(unet_config(cfg, pde)), sigma_data=cfg.diffusion.sigma_data
            )
            out = model(torch.zeros(shape), torch.ones(1))
    except (RuntimeError, TypeError, ValueError, OverflowError) as exc:  # e.g. sizes > int64
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PiddmError(
            f"config net: cannot build the network for {pde.name} {pde.resolution}^2 ({first})"
        ) from None
    if tuple(out.shape) != shape:  # pragma: no cover (a programming error)
        raise RuntimeError(f"the network maps {shape} to {tuple(out.shape)}")
    return {
        "dry_run": True,
        "config": config_to_dict(cfg),
        "data": str(path),
        "data_samples": samples,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
