"""``piddm distill``: train a one-step student (PIDDM or PID) of a teacher."""

from __future__ import annotations

from pathlib import Path

import click

from piddm.commands.options import (
    config_option,
    device_option,
    json_option,
    override_options,
    run_dir_options,
)
from piddm.commands.runs import report_run, run_options, run_overrides
from piddm.distill.config import student_config
from piddm.distill.run import distill


@click.command(name="distill")
@click.option(
    "--teacher", required=True, help="Teacher checkpoint, run directory or pretrained name."
)
@click.option(
    "--method",
    type=click.Choice(["piddm", "pid"]),
    default=None,
    help="piddm (pairs + residual) or pid (data-free trajectory) [config's kind].",
)
@config_option(
    "Student config (YAML) [the teacher's, with default distill settings].", required=False
)
@click.option(
    "--lambda-train", type=float, default=None, help="Residual weight (0: pure distillation)."
)
@run_dir_options(
    None, "Student training steps.", "Continue the run in --run-dir from its latest checkpoint."
)
@override_options("distill.pairs=2048")
@device_option
@json_option
def command(
    teacher: str,
    method: str | None,
    config_path: Path | None,
    lambda_train: float | None,
    run_dir: Path | None,
    steps: int | None,
    resume: bool,
    overwrite: bool,
    overrides: tuple[str, ...],
    progress: bool,
    device: str,
    as_json: bool,
) -> None:
    """Distil TEACHER into a one-step student (docs/method.md, "PIDDM student").

    piddm: teacher pairs (eps, Phi(eps)) from N_s Heun steps, cached in the run directory and
    partly refreshed every K steps; loss |G(eps) - x0|^2 + lambda_train Rn(G(eps)).
    pid: PID's trajectory student, no pairs. Both run in the teacher's training loop:
    checkpoints, --resume, torchrun DDP, stats.jsonl.
    """
    extra = run_overrides(overrides, {"train.steps": steps, "distill.lambda_train": lambda_train})
    cfg = student_config(teacher, config_path, method, extra)
    result = distill(cfg, teacher, **run_options())
    report_run(result, as_json, "distilled", with_loss=False)
