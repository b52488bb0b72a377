"""``piddm solve forward|inverse|reconstruct``: PDE problems from sparse observations."""

from __future__ import annotations

import click

from piddm.commands.options import (
    INT64,
    SEED,
    default_option,
    device_option,
    json_option,
    model_option,
    out_option,
    overwrite_option,
    path_option,
    settings_from_params,
)
from piddm.jsonio import emit_json
from piddm.pdes.base import RESIDUAL_NORMS
from piddm.progress import show_progress
from piddm.tasks.latent import (
    GAUSS_NEWTON_CONFIG,
    OPTIMIZERS,
    START_CONFIG,
    START_NO_STEP_TASKS,
    LatentOptConfig,
    start_config,
)
from piddm.tasks.masks import MASK_MODES, TASKS
from piddm.tasks.solve import (
    START_AUTO,
    START_NONE,
    check_solve_inputs,
    choose_start,
    default_optimizer,
    run_solve,
)


@click.command(name="solve")
@click.argument("task", type=click.Choice(TASKS))
@model_option
@path_option(
    "--data",
    help="Instances (.h5 dataset): the truth. Required with --obs-fraction; optional with --obs "
    "(then only for the metrics).",
)
@click.option(
    "--obs-fraction",
    type=float,
    default=None,
    help="Observe a random fraction in (0, 1] of the truth's nodes (needs --data).",
)
@path_option(
    "--obs",
    "obs_file",
    help="Observation file (.h5, .hdf5 or .npz) with 'values' and 'mask' (see above); "
    "instead of --obs-fraction.",
)
@click.option(
    "--masks",
    type=click.Choice(MASK_MODES),
    default="random",
    show_default=True,
    help="diffusionpde: DiffusionPDE's fixed point sets of --data's nodes (500 of 128^2 per "
    "observed channel, as many per node on coarser grids; docs/diffusionpde.md) instead of "
    "--obs-fraction.",
)
@click.option("--n", "n", type=INT64, default=None, help="Solve the first N instances [all].")
@click.option(
    "--start",
    "start_option",
    default=START_AUTO,
    show_default=True,
    help="The student's amortised start network (piddm amortise: checkpoint, run directory or "
    "pretrained name): every instance's latents start near its prediction, nothing is "
    f"screened, and the options below that are not given take its settings (ensemble "
    f"{START_CONFIG.ensemble}, steps {START_CONFIG.steps} (0 for {', '.join(START_NO_STEP_TASKS)} "
    "problems, where the start alone is more accurate), lambda-infer "
    f"{START_CONFIG.lambda_infer:g}, residual-norm {START_CONFIG.residual_norm}). It must have "
    "been trained on the task (start.tasks); one trained on that task alone is more accurate. "
    f"{START_AUTO}: the start shipped for the task if --model is the shipped student it was "
    "trained with and --obs-fraction is in its training range (docs/pretrained.md lists them), "
    "else none. "
    f"{START_NONE}: screened prior draws.",
)
# 8 latents x 100 steps: at the cost of 4 x 200, a lower error (benchmarks/task_sweep.py).
@default_option("--ensemble", LatentOptConfig, INT64, "Latents per instance.")
# Screening 256 draws lowered the task errors by 2-6 points on training instances, except
# Poisson's forward error, which rose by 2 (benchmarks/task_sweep.py).
@default_option(
    "--candidates",
    LatentOptConfig,
    INT64,
    "Prior latents screened per instance; the --ensemble best fits start the optimisation "
    "(no screening unless it exceeds --ensemble; 0 is better for the Poisson forward problem).",
)
@click.option(
    "--optimizer",
    type=click.Choice(["auto", *OPTIMIZERS]),
    default="auto",
    show_default=True,
    help="gauss-newton: minimum-norm Gauss-Newton steps on the observations from prior draws "
    '(randomise-then-optimise; docs/method.md, "Tasks"): the options below that are not '
    f"given take its settings (ensemble {GAUSS_NEWTON_CONFIG.ensemble}, steps "
    f"{GAUSS_NEWTON_CONFIG.steps}, lambda-infer 0, candidates 0). auto: gauss-newton for "
    "PDEs whose data are Gaussian (Poisson, Helmholtz), adam otherwise, with --start and "
    "with a --lambda-infer above 0.",
)
@default_option("--steps", LatentOptConfig, INT64, "Optimiser steps.")
@default_option("--lr", LatentOptConfig, float, "Adam learning rate.")
@default_option("--damping", LatentOptConfig, float, "Gauss-Newton damping mu.")
# 0.1 rather than 1.0: the Poisson forward error 29 % -> 19 %, Darcy's 13.8 % -> 12.7 %, the
# inverse problems unchanged (benchmarks/task_sweep.py, training instances).
@default_option("--lambda-infer", LatentOptConfig, float, "Residual weight.")
@click.option(
    "--residual-norm",
    type=click.Choice(RESIDUAL_NORMS),
    default=LatentOptConfig.residual_norm,
    show_default=True,
    help="Physics term of the latent objective: the plain residual, or the preconditioned "
    "residual P^-1 R (the squared error to the solver's solution; docs/concepts.md).",
)
# Re-solving the members took Darcy's forward error from 12.5 % to 4.8 % at 30 % observed,
# from 14.1 % to 13.1 % at 3 % (benchmarks/observation_count.py, held-out instances); on the
# inverse problem it raised the error of u from 7.1 % to 10.2 % (task_sweep.py).
@click.option(
    "--solver-members",
    is_flag=True,
    default=LatentOptConfig.solver_members,
    help="Replace every optimised member by the numerical solver's field for its own input "
    "(coefficient / initial condition), observations kept: the members satisfy the PDE "
    "exactly where the solution is not observed. For forward problems (it raises the "
    "solution's error of inverse ones).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Masks and initial latents.")
@out_option()
@path_option("--figures", kind="dir", help="Figure directory [OUT without .h5 + '-figures'].")
@overwrite_option()
@device_option
@json_option
def command(
    task: str,
    model: str,
    data: str | None,
    obs_fraction: float | None,
    obs_file: str | None,
    masks: str,
    n: int | None,
    start_option: str,
    ensemble: int,
    candidates: int,
    optimizer: str,
    steps: int,
    lr: float,
    damping: float,
    lambda_infer: float,
    residual_norm: str,
    solver_members: bool,
    seed: int,
    out: str,
    figures: str | None,
    overwrite: bool,
    device: str,
    as_json: bool,
) -> None:
    """Solve TASK for the instances in --data (or --obs) with a one-step student.

    What each task observes is the PDE's (docs/observations.md): Darcy, Poisson, Helmholtz:
    forward observes a random --obs-fraction of the coefficient's nodes (all of them with
    1.0), inverse of the solution's, reconstruct of both; Burgers: forward the whole initial
    condition, inverse sensor columns at all times (both ignore --obs-fraction), reconstruct
    a random fraction of the space-time field. Every result carries its yardstick under the
    same observations: bayes_floor (Poisson, Helmholtz: the exact posterior mean's error) or
    prior_mean_error (the data's mean field with the observations put in). An ensemble of
    latents per instance is optimised (docs/method.md, "Tasks"); the estimate is the ensemble
    mean, the uncertainty its std. Writes truth, mask, estimate and std (N, C, S, S) to --out
    and truth / estimate / |error| / std figures.

    \b
    Your own observations: --obs FILE instead of --obs-fraction. FILE is .h5/.hdf5 (datasets)
    or .npz (numpy.savez) with two arrays:
      values  (N, C, S, S), or (C, S, S) for one instance: physical units, the PDE's channel
              order; NaN allowed at unobserved nodes only
      mask    (N, C, S, S), or (C, S, S) shared by all instances: bool or 0/1, 1 = observed
    Each instance must observe some but not all nodes. TASK then only labels the output. With
    --data as well, its first N instances are the truth for the metrics; without it the
    output holds mask, estimate and std only and the truth metrics are null. Observed values
    are kept exactly in the estimate.
    """
    out_path, figure_dir = check_solve_inputs(
        data=data,
        obs_fraction=obs_fraction,
        obs_file=obs_file,
        masks=masks,
        n=n,
        out=out,
        figures=figures,
        overwrite=overwrite,
    )
    start = choose_start(start_option, model, task, obs_fraction)
    if optimizer == "auto":
        ctx = click.get_current_context()
        given = ctx.get_parameter_source("lambda_infer") is not click.core.ParameterSource.DEFAULT
        optimizer = default_optimizer(model, start, physics=given and lambda_infer > 0)
    base = None
    if optimizer == "gauss-newton":
        base = GAUSS_NEWTON_CONFIG
    elif start:
        base = start_config(task)
    config = settings_from_params(LatentOptConfig, base=base, optimizer=optimizer)
    report = run_solve(
        task,
        model,
        config,
        data=data,
        obs_fraction=obs_fraction,
        obs_file=obs_file,
        masks=masks,
        n=n,
        seed=seed,
        out_path=out_path,
        figure_dir=figure_dir,
        device=device,
        start=start,
        progress=show_progress(quiet=as_json),
    )
    summary = report.summary
    if as_json:
        emit_json(summary)
        return
    start_label = f", from start network {start}" if start else ""
    click.echo(f"{task}: {summary['n']} {report.pde} instances, {report.label}{start_label}")
    keys = ("rel_l2_coefficient", "rel_l2_solution", "error_rate", "error_rate_diffusionpde")
    kinds = list(dict.fromkeys((summary["yardstick"], "prior_mean_error")))
    click.echo(f"  {'metric':<24} {'estimate':>10}" + "".join(f" {k:>16}" for k in kinds))
    for key in (*keys, "residual_mean"):
        if summary.get(key) is not None:
            marks = [summary[kind].get(key) for kind in kinds]
            yards = "".join(f" {'' if m is None else f'{m:.4g}':>16}" for m in marks)
            click.echo(f"  {key:<24} {summary[key]:>10.4g}{yards}")
    click.echo(
        f"  {summary['seconds_per_instance']:.2f} s per instance; output {out_path}, "
        f"figures {figure_dir}"
    )
