"""``piddm distill``: train a one-step student (PIDDM or PID) of a teacher."""

from __future__ import annotations

import os
from pathlib import Path

import click

from piddm.commands.options import device_option, json_option
from piddm.config import parse_overrides
from piddm.distill.config import student_config
from piddm.distill.run import distill
from piddm.jsonio import emit_json


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
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Student config (YAML) [the teacher's, with default distill settings].",
)
@click.option(
    "--lambda-train", type=float, default=None, help="Residual weight (0: pure distillation)."
)
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Student training steps.")
@click.option(
    "--resume", is_flag=True, help="Continue the run in --run-dir from its latest checkpoint."
)
@click.option("--overwrite", is_flag=True, help="Delete the checkpoints of an existing run dir.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config setting, e.g. --set distill.pairs=2048 (repeatable).",
)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
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
    extra = parse_overrides(overrides)
    if steps is not None:
        extra["train.steps"] = steps
    if lambda_train is not None:
        extra["distill.lambda_train"] = lambda_train
    cfg = student_config(teacher, config_path, method, extra)
    result = distill(
        cfg,
        teacher,
        run_dir=run_dir,
        resume=resume,
        overwrite=overwrite,
        device=device,
        progress=progress,
    )
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        emit_json(result.to_json())
    else:
        residual = result.extra.get("sample_residual_mean")
        tail = f", sample residual {residual:.4g}" if residual is not None else ""
        click.echo(
            f"distilled {result.steps} steps in {result.seconds:.1f} s{tail}; "
            f"weights: {result.checkpoint}"
        )
