"""``piddm amortise``: train the amortised start network of a one-step student."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from piddm.commands.options import (
    config_option,
    device_option,
    json_option,
    override_options,
    path_option,
    run_dir_options,
)
from piddm.commands.runs import report_run, run_options, run_overrides
from piddm.config import load_config
from piddm.tasks.amortise import amortise


@click.command(name="amortise")
@click.option(
    "--student",
    required=True,
    help="One-step student: checkpoint, run directory or pretrained name.",
)
@config_option("YAML config of kind start (e.g. configs/darcy-32-start-cpu.yaml).")
@path_option("--data", as_path=True, help="Training FILE.h5 (overrides data.path; must exist).")
@run_dir_options(
    "Run directory (default: runs/NNNNN-<pde>-<res>-<desc>, the next free number).",
    "Training steps (overrides train.steps).",
    "Continue the run in --run-dir from its latest checkpoint.",
)
@override_options("start.obs_fraction_max=0.05")
@device_option
@json_option
def command(
    student: str,
    config_path: Path,
    data: Path | None,
    steps: int | None,
    overrides: tuple[str, ...],
    as_json: bool,
    **_run: Any,
) -> None:
    """Train STUDENT's amortised start (docs/method.md, "Amortised start"): a network E that
    maps observations and their mask to a starting latent, so that `piddm solve --start RUN`
    needs few optimiser steps. Loss |G(E(y, M)) - x|^2 + latent_penalty ((|eps0|^2 - d)/d)^2
    on the training set with random tasks and observed fractions, G frozen; the run is the
    teacher's loop (checkpoints, --resume, torchrun DDP, stats.jsonl) and reports the
    start-only error on the data.n_holdout held-out training fields.
    """
    # ``_run`` (--run-dir, --resume, --overwrite, --device, --progress): read by run_options()
    cfg = load_config(config_path, run_overrides(overrides, {"train.steps": steps}))
    result = amortise(cfg, student, data=data, **run_options())
    report_run(result, as_json, "trained", with_loss=True)
