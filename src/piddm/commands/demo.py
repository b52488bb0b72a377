"""``piddm demo``: the shipped models on fresh solver data, in about a minute."""

from __future__ import annotations

import click

from piddm.cli import emit_json
from piddm.commands.options import INT64, SEED, device_option, json_option


@click.command(name="demo")
@click.option(
    "--pde",
    type=click.Choice(["darcy", "poisson", "helmholtz", "burgers"]),
    default="darcy",
    show_default=True,
    help="Which PDE's pretrained models to run.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="piddm-demo",
    show_default=True,
    help="Directory for the figures (created if missing; figures in it are replaced).",
)
@click.option("--samples", type=INT64, default=64, show_default=True, help="Student samples.")
@click.option(
    "--teacher-samples", type=INT64, default=8, show_default=True, help="Teacher samples."
)
@click.option("--instances", type=INT64, default=4, show_default=True, help="Task instances.")
@click.option("--ensemble", type=INT64, default=4, show_default=True, help="Latents per instance.")
@click.option(
    "--candidates",
    type=INT64,
    default=256,
    show_default=True,
    help="Prior latents screened per task instance (none unless it exceeds --ensemble).",
)
@click.option("--steps", type=INT64, default=100, show_default=True, help="Task optimiser steps.")
@click.option("--obs-fraction", type=float, default=0.03, show_default=True)
@click.option("--seed", type=SEED, default=None, help="Seed of the fresh instances [20261122].")
@click.option("--teacher", default=None, help="Teacher instead of the pretrained one.")
@click.option("--student", default=None, help="Student instead of the pretrained one.")
@device_option
@json_option
def command(
    pde: str,
    out: str,
    samples: int,
    teacher_samples: int,
    instances: int,
    ensemble: int,
    candidates: int,
    steps: int,
    obs_fraction: float,
    seed: int | None,
    teacher: str | None,
    student: str | None,
    device: str,
    as_json: bool,
) -> None:
    """Run the pretrained PDE-32 teacher and PIDDM student on fresh solver data.

    Solves fresh instances with the numerical solver, samples the one-step student and the
    Heun teacher from the same latents (solver consistency, relative and raw residual, time
    per sample), solves a forward and an inverse problem from 3 % random observations,
    prints two small tables and writes figures to --out. Nothing is trained and nothing is
    downloaded.
    """
    from pathlib import Path

    from piddm.demo import DEMO_SEED, DemoSettings, format_report, run_demo
    from piddm.errors import PiddmError
    from piddm.training.distributed import DistInfo, resolve_device

    settings = DemoSettings(
        pde=pde,
        samples=samples,
        teacher_samples=teacher_samples,
        instances=instances,
        ensemble=ensemble,
        candidates=candidates,
        steps=steps,
        obs_fraction=obs_fraction,
        seed=DEMO_SEED if seed is None else seed,
        teacher=teacher,
        student=student,
    )
    if Path(out).exists() and not Path(out).is_dir():
        raise PiddmError(f"--out {out} exists and is not a directory")
    report = run_demo(settings, out, resolve_device(device, DistInfo(0, 1, 0)))
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(format_report(report))
    click.echo(f"figures: {', '.join(report.figures)}")
    click.echo(f"done in {report.seconds:.1f} s")
