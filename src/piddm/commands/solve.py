"""``piddm solve forward|inverse|reconstruct``: PDE problems from sparse observations."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from piddm.cli import emit_json
from piddm.commands.options import INT64, SEED, device_option, json_option, model_option
from piddm.errors import PiddmError
from piddm.pdes.base import RESIDUAL_NORMS
from piddm.tasks.diffusionpde import diffusionpde_error_rate, observed_count
from piddm.tasks.latent import LatentOptConfig
from piddm.tasks.masks import MASK_MODES

if TYPE_CHECKING:
    import numpy as np

    from piddm.pdes import PDE

FIGURES = 3  # instances drawn as figures


@click.command(name="solve")
@click.argument("task", type=click.Choice(["forward", "inverse", "reconstruct"]))
@model_option
@click.option(
    "--data",
    type=click.Path(dir_okay=False),
    default=None,
    help="Instances (.h5 dataset): the truth. Required with --obs-fraction; optional with --obs "
    "(then only for the metrics).",
)
@click.option(
    "--obs-fraction",
    type=float,
    default=None,
    help="Observe a random fraction in (0, 1] of the truth's nodes (needs --data).",
)
@click.option(
    "--obs",
    "obs_file",
    type=click.Path(dir_okay=False),
    default=None,
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
# 8 latents x 100 steps: at the cost of 4 x 200, a lower error (benchmarks/task_sweep.py).
@click.option("--ensemble", type=INT64, default=8, show_default=True, help="Latents per instance.")
# Screening 256 draws lowered the task errors by 2-6 points on training instances, except
# Poisson's forward error, which rose by 2 (benchmarks/task_sweep.py).
@click.option(
    "--candidates",
    type=INT64,
    default=256,
    show_default=True,
    help="Prior latents screened per instance; the --ensemble best fits start the "
    "optimisation (no screening unless it exceeds --ensemble; 0 is better for the Poisson "
    "forward problem).",
)
@click.option("--steps", type=INT64, default=100, show_default=True, help="Optimiser steps.")
@click.option("--lr", type=float, default=0.05, show_default=True, help="Adam learning rate.")
# 0.1 rather than 1.0: the Poisson forward error 29 % -> 19 %, Darcy's 13.8 % -> 12.7 %, the
# inverse problems unchanged (benchmarks/task_sweep.py, training instances).
@click.option("--lambda-infer", type=float, default=0.1, show_default=True, help="Residual weight.")
# Re-solving the members took Darcy's forward error from 12.5 % to 4.8 % at 30 % observed,
# from 14.1 % to 13.1 % at 3 % (benchmarks/observation_count.py, held-out instances); on the
# inverse problem it raised the error of u from 7.1 % to 10.2 % (task_sweep.py).
@click.option(
    "--residual-norm",
    type=click.Choice(RESIDUAL_NORMS),
    default=LatentOptConfig.residual_norm,
    show_default=True,
    help="Physics term of the latent objective: the plain residual, or the preconditioned "
    "residual P^-1 R (the squared error to the solver's solution; docs/concepts.md).",
)
@click.option(
    "--solver-members",
    is_flag=True,
    default=False,
    help="Replace every optimised member by the numerical solver's field for its own input "
    "(coefficient / initial condition), observations kept: the members satisfy the PDE "
    "exactly where the solution is not observed. For forward problems (it raises the "
    "solution's error of inverse ones).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Masks and initial latents.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .h5 file.")
@click.option(
    "--figures",
    type=click.Path(file_okay=False),
    default=None,
    help="Figure directory [OUT without .h5 + '-figures'].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
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
    ensemble: int,
    candidates: int,
    steps: int,
    lr: float,
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

    forward: the coefficient (initial condition) is observed at a random --obs-fraction of
    its nodes (all of them with 1.0); inverse: the solution is observed; reconstruct: random
    subsets of both. An ensemble of latents per instance is optimised (SPEC 3.6); the
    estimate is the ensemble mean, the uncertainty its std. Writes truth, mask, estimate and
    std (N, C, S, S) to --out and truth / estimate / |error| / std figures.

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
    import numpy as np
    import torch

    from piddm.atomic import check_output_path
    from piddm.data.io import read_dataset
    from piddm.distill import one_step_generator
    from piddm.metrics import per_sample_residual, task_metrics
    from piddm.models import load_any
    from piddm.sampling import TEACHER_KINDS, check_model_matches, pde_of
    from piddm.tasks import (
        check_against_truth,
        check_fraction,
        check_observation_path,
        optimise_latents,
        read_observations,
        solve_task,
        task_masks,
    )
    from piddm.training.distributed import DistInfo, resolve_device

    if masks == "diffusionpde":
        if obs_fraction is not None or obs_file is not None:
            raise PiddmError(
                "--masks diffusionpde fixes the observed nodes: drop --obs-fraction and --obs"
            )
        if data is None:
            raise PiddmError("--masks diffusionpde observes the truth: pass it with --data FILE.h5")
    elif (obs_fraction is None) == (obs_file is None):
        raise PiddmError(
            "pass exactly one of --obs-fraction F (random observations of --data) and "
            "--obs FILE (your own observations)"
        )
    if obs_file is not None:
        check_observation_path(obs_file)
    if obs_fraction is not None:
        check_fraction(obs_fraction)
        if data is None:
            raise PiddmError("--obs-fraction observes the truth: pass it with --data FILE.h5")
    if n is not None and n <= 0:
        raise PiddmError(f"--n must be positive, got {n}")
    out_path = check_output_path(out, overwrite)
    figure_dir = Path(figures) if figures else out_path.with_name(out_path.stem + "-figures")
    if figure_dir.exists() and not figure_dir.is_dir():
        raise PiddmError(f"--figures {figure_dir} exists and is not a directory")
    config = LatentOptConfig(
        steps=steps,
        lr=lr,
        lambda_infer=lambda_infer,
        ensemble=ensemble,
        candidates=candidates,
        solver_members=solver_members,
        residual_norm=residual_norm,
    )
    instances = read_dataset(data, limit=n) if data is not None else None
    torch_device = resolve_device(device, DistInfo(0, 1, 0))
    student, metadata = load_any(model, torch_device)
    if metadata.get("kind") in TEACHER_KINDS:
        raise PiddmError("solve needs a one-step student (piddm distill), not a diffusion teacher")
    if instances is not None:
        check_model_matches(metadata, instances.pde.name, instances.pde.resolution)
        pde = instances.pde
    else:
        pde = pde_of(metadata)
    observations = None
    if obs_file is not None:
        observations = read_observations(obs_file, pde, limit=n)
        if instances is not None:
            check_against_truth(observations, instances.fields.shape, data)
    generator = one_step_generator(student, metadata)
    rng = torch.Generator().manual_seed(seed)
    truth = None
    if instances is not None:
        truth = torch.from_numpy(instances.fields).double().to(torch_device)
    if observations is None and masks == "diffusionpde":
        assert truth is not None
        count = observed_count(pde.resolution)
        mask = task_masks(pde, task, 1.0, rng, n=len(truth), mode=masks).to(torch_device)
        fraction = count / pde.resolution**2
        mask, result = solve_task(generator, pde, truth, task, fraction, config, rng=rng, mask=mask)
        label = f"DiffusionPDE's {count} points per observed channel"
    elif observations is None:
        assert truth is not None and obs_fraction is not None
        mask, result = solve_task(generator, pde, truth, task, obs_fraction, config, rng=rng)
        label = f"{100 * obs_fraction:g} % observed"
    else:
        values = torch.from_numpy(observations.values).to(torch_device)
        mask = torch.from_numpy(observations.mask).to(torch_device)
        result = optimise_latents(generator, pde, values, mask, config, rng=rng)
        label = f"{100 * observations.observed_fraction:.3g} % of nodes observed ({obs_file})"
    truth_np = None if truth is None else truth.cpu().numpy()
    mask_np = mask.cpu().numpy()
    estimate, std = result.estimate.cpu().numpy(), result.std.cpu().numpy()
    if not (np.isfinite(estimate).all() and np.isfinite(std).all()):
        raise PiddmError(
            "the latent optimisation diverged (NaN/Inf estimates); lower --lr or --lambda-infer"
        )
    attrs = {"obs_fraction": obs_fraction} if obs_file is None else {"observations": obs_file}
    if masks == "diffusionpde":
        attrs = {"masks": masks, "obs_count": observed_count(pde.resolution)}
    _write(out_path, truth_np, mask_np, estimate, std, task, attrs, str(model), pde)
    figure_dir.mkdir(parents=True, exist_ok=True)
    from piddm.tasks import plot_task_instance

    for i in range(min(FIGURES, len(estimate))):
        plot_task_instance(
            pde,
            None if truth_np is None else truth_np[i],
            estimate[i],
            std[i],
            mask_np[i],
            figure_dir / f"{task}-{i}.png",
            title=f"{pde.name} {task}, {label}, instance {i}",
        )
    if truth_np is not None:
        metrics = task_metrics(pde, estimate, truth_np)
    else:  # no truth: only the residual of the estimates
        metrics = {
            "rel_l2_coefficient": None,
            "rel_l2_solution": None,
            "error_rate": None,
            "residual_mean": float(per_sample_residual(pde, estimate).mean()),
        }
    if masks == "diffusionpde":  # their metric too (equal to error_rate for a 3 / 12 truth)
        c = pde.coefficient_channel
        metrics["error_rate_diffusionpde"] = (
            float(diffusionpde_error_rate(estimate[:, c], truth_np[:, c]).mean())
            if pde.name == "darcy" and truth_np is not None
            else None
        )
    summary = {
        **metrics,
        "seconds_per_instance": result.seconds_per_instance,
        "nfe": result.nfe + result.nfe_backward,
        "n": len(estimate),
        "task": task,
        "observed_fraction": float(mask_np.mean()),
        "out": str(out_path),
        "figures": str(figure_dir),
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(f"{task}: {len(estimate)} {pde.name} instances, {label}")
    keys = ("rel_l2_coefficient", "rel_l2_solution", "error_rate", "error_rate_diffusionpde")
    for key in (*keys, "residual_mean"):
        if summary.get(key) is not None:
            click.echo(f"  {key:<20} {summary[key]:.4g}")
    click.echo(
        f"  {result.seconds_per_instance:.2f} s per instance; output {out_path}, "
        f"figures {figure_dir}"
    )


def _write(
    path: Path,
    truth: np.ndarray | None,
    mask: np.ndarray,
    estimate: np.ndarray,
    std: np.ndarray,
    task: str,
    attrs: dict[str, Any],
    model: str,
    pde: PDE,
) -> None:
    """Write the solve output atomically: ``truth`` (if known), ``mask``, ``estimate``, ``std``."""
    import h5py
    import numpy as np

    from piddm.atomic import atomic_output

    arrays = {"truth": truth, "mask": mask, "estimate": estimate, "std": std}
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, value in arrays.items():
            if value is None:
                continue
            handle.create_dataset(
                name, data=np.asarray(value, dtype=bool if name == "mask" else np.float32)
            )
        handle.attrs.update(
            format="piddm-solve",
            task=task,
            model=model,
            pde=pde.name,
            resolution=pde.resolution,
            **attrs,
        )
