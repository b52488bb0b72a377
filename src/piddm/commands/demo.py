"""``piddm demo``: the shipped models on fresh solver data, in about a minute."""

from __future__ import annotations

from pathlib import Path

import click

from piddm.commands.options import (
    INT64,
    SEED,
    default_option,
    device_option,
    json_option,
    settings_from_params,
)
from piddm.demo import DEMO_SEED, DemoSettings, demo_pdes, format_report, run_demo
from piddm.errors import PiddmError
from piddm.jsonio import emit_json
from piddm.training.distributed import DistInfo, resolve_device


@click.command(name="demo")
@click.option(
    "--pde",
    type=click.Choice(demo_pdes()),
    default=DemoSettings.pde,
    show_default=True,
    help="Which PDE's pretrained models to run.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="piddm-demo",
    show_default=True,
    help="Directory for the figures: each PDE writes to OUT/<pde>/ (created if missing; "
    "figures in it are replaced).",
)
@default_option("--samples", DemoSettings, INT64, "Student samples.")
@default_option("--teacher-samples", DemoSettings, INT64, "Teacher samples.")
@default_option("--instances", DemoSettings, INT64, "Task instances.")
@click.option(
    "--start/--no-start",
    default=DemoSettings.start,
    show_default=True,
    help="Solve a task from the start network the package ships for it (Darcy; docs/"
    "pretrained.md) with piddm solve --start's settings; --no-start: from screened prior "
    "draws with the three options below.",
)
@default_option(
    "--ensemble", DemoSettings, INT64, "Latents per instance of a task without a start network."
)
@default_option(
    "--candidates",
    DemoSettings,
    INT64,
    "Prior latents screened per task instance without a start network (none unless it "
    "exceeds --ensemble).",
)
@default_option(
    "--steps", DemoSettings, INT64, "Optimiser steps of a task without a start network."
)
@click.option("--obs-fraction", type=float, default=DemoSettings.obs_fraction, show_default=True)
@click.option("--seed", type=SEED, default=None, help=f"Seed of the fresh instances [{DEMO_SEED}].")
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
    start: bool,
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
    per sample), solves a forward and an inverse problem (Darcy, Poisson, Helmholtz: 3 %
    random nodes of the coefficient / the solution; Burgers: the initial condition / sensors
    at all times; from the shipped start network where there is one), each error next to its
    yardstick in brackets, prints two small tables and writes figures to --out/<pde>/.
    Nothing is trained and nothing is downloaded.
    """
    settings = settings_from_params(DemoSettings, seed=DEMO_SEED if seed is None else seed)
    out_dir = Path(out) / pde
    for path in (Path(out), out_dir):
        if path.exists() and not path.is_dir():
            raise PiddmError(f"--out {path} exists and is not a directory")
    report = run_demo(settings, out_dir, resolve_device(device, DistInfo(0, 1, 0)))
    if as_json:
        emit_json(report.to_json())
        return
    click.echo(format_report(report))
    click.echo(f"figures: {', '.join(report.figures)}")
    click.echo(f"done in {report.seconds:.1f} s")
