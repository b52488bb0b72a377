"""``piddm solve`` as a library: a one-step student estimates PDE instances from observations.

The observations are random nodes of solver data (``obs_fraction``), DiffusionPDE's fixed
point sets (``masks="diffusionpde"``, docs/diffusionpde.md) or the user's own file
(``obs_file``, docs/observations.md). Latent optimisation (:func:`optimise_latents`,
docs/method.md, "Tasks") gives every instance ``(C, S, S)`` an estimate (the ensemble
mean) and its uncertainty (the ensemble's std). :func:`run_solve` writes them in the format
of :mod:`piddm.data.solutions`, draws the first :data:`FIGURES` instances and returns the
metrics; :func:`check_solve_inputs` validates a request before anything is loaded.

Not re-exported from :mod:`piddm.tasks`: it loads models through :mod:`piddm.sampling`,
which itself imports :mod:`piddm.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piddm.atomic import check_output_path
from piddm.checkpoint import read_metadata
from piddm.data.io import read_dataset
from piddm.data.solutions import write_solutions
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.metrics import per_sample_residual, task_metrics
from piddm.models import check_model_matches, load_any, resolve_model
from piddm.sampling import TEACHER_KINDS, pde_of
from piddm.tasks.diffusionpde import diffusionpde_error_rate, observed_count
from piddm.tasks.figures import plot_task_instance
from piddm.tasks.latent import LatentOptConfig, optimise_latents, solve_task
from piddm.tasks.masks import check_fraction, check_task, task_masks
from piddm.tasks.observations import (
    check_against_truth,
    check_observation_path,
    read_observations,
)
from piddm.tasks.start import auto_start, load_start
from piddm.tasks.yardstick import yardstick_entries
from piddm.training.distributed import DistInfo, resolve_device

FIGURES = 3  # instances drawn as figures


@dataclass
class SolveReport:
    """What :func:`run_solve` measured and wrote.

    ``summary`` is the ``piddm solve --json`` object (metrics, cost, sizes, paths); ``label``
    says what was observed and ``pde`` names the PDE (for the text output).
    """

    summary: dict[str, Any]
    label: str
    pde: str


def check_solve_inputs(
    *,
    data: str | None,
    obs_fraction: float | None,
    obs_file: str | None,
    masks: str,
    n: int | None,
    out: str,
    figures: str | None,
    overwrite: bool,
) -> tuple[Path, Path]:
    """Validate the observation source, ``n`` and the outputs; returns ``(output file,
    figure directory)`` (default: the output's name without ``.h5`` + ``-figures``).

    Exactly one source: ``masks="diffusionpde"`` (needs ``data``), ``obs_fraction`` (needs
    ``data``) or ``obs_file``. Raises :class:`PiddmError` for anything else.
    """
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
    return out_path, figure_dir


#: ``piddm solve --start``'s values besides a start network's name or path.
START_AUTO, START_NONE = "auto", "none"


def choose_start(start: str, model: str, task: str, obs_fraction: float | None) -> str | None:
    """The start network of ``piddm solve --start START`` for ``model`` (a checkpoint, run
    directory or pretrained name): :data:`START_NONE` none (screened prior draws);
    :data:`START_AUTO` the one shipped for the task and model at ``obs_fraction`` random
    observations (:func:`~piddm.tasks.start.auto_start`; ``None`` for other observations);
    anything else is a start network, checked when :func:`run_solve` loads it."""
    if start == START_NONE:
        return None
    if start == START_AUTO:
        pde = pde_of(read_metadata(resolve_model(model)))
        return auto_start(model, pde, check_task(task), obs_fraction)
    return start


def default_optimizer(model: str, start: str | None = None, physics: bool = False) -> str:
    """``piddm solve``'s optimizer for ``model`` (a checkpoint, run directory or pretrained
    name): Gauss-Newton from prior draws where the PDE's data are Gaussian
    (``PDE.linear_gaussian``: its members are near-posterior draws there; benchmarks/LOG.md,
    "Gauss-Newton"), Adam elsewhere, from an amortised ``start`` and when a ``physics`` term
    is asked for (Gauss-Newton fits the observations alone)."""
    if start is not None or physics:
        return "adam"
    pde = pde_of(read_metadata(resolve_model(model)))
    return "gauss-newton" if pde.linear_gaussian else "adam"


def run_solve(
    task: str,
    model: str,
    config: LatentOptConfig,
    *,
    data: str | None,
    obs_fraction: float | None,
    obs_file: str | None,
    masks: str,
    n: int | None,
    seed: int,
    out_path: Path,
    figure_dir: Path,
    device: str,
    start: str | None = None,
    progress: bool = False,
) -> SolveReport:
    """Solve ``task`` (forward, inverse, reconstruct) for the first ``n`` instances with the
    student ``model`` and write the output and figures (inputs as :func:`check_solve_inputs`
    accepted them).

    ``data``, when given, is the truth: observed at random (``obs_fraction``) or at
    DiffusionPDE's points (``masks``), or only the reference of the metrics of an
    ``obs_file``'s observations. Masks and initial latents come from ``seed``; ``device``
    is ``auto``, ``cpu`` or ``cuda``; ``start`` names the student's amortised start network
    (:mod:`piddm.tasks.start`; ``None``: prior draws); ``progress`` shows the latent
    optimisation's progress
    bar. Without a truth the metrics are ``None`` except the residual of the estimates. The
    summary carries the task's yardstick under the same observations
    (:mod:`piddm.tasks.yardstick`): ``yardstick`` names it (``bayes_floor`` or
    ``prior_mean_error``) and the key of that name holds its metrics.
    """
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
    start_net = None if start is None else load_start(start, pde, torch_device, task)
    rng = torch.Generator().manual_seed(seed)
    truth = None
    if instances is not None:
        truth = torch.from_numpy(instances.fields).double().to(torch_device)
    if observations is None and masks == "diffusionpde":
        assert truth is not None
        count = observed_count(pde.resolution)
        mask = task_masks(pde, task, 1.0, rng, n=len(truth), mode=masks).to(torch_device)
        fraction = count / pde.resolution**2
        mask, result = solve_task(
            generator,
            pde,
            truth,
            task,
            fraction,
            config,
            rng=rng,
            mask=mask,
            start=start_net,
            progress=progress,
        )
        label = f"DiffusionPDE's {count} points per observed channel"
        values = truth
    elif observations is None:
        assert truth is not None and obs_fraction is not None
        mask, result = solve_task(
            generator,
            pde,
            truth,
            task,
            obs_fraction,
            config,
            rng=rng,
            start=start_net,
            progress=progress,
        )
        label = f"observed: {pde.observation_label(check_task(task), obs_fraction)}"
        values = truth
    else:
        values = torch.from_numpy(observations.values).to(torch_device)
        mask = torch.from_numpy(observations.mask).to(torch_device)
        result = optimise_latents(
            generator, pde, values, mask, config, rng=rng, start=start_net, progress=progress
        )
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
    write_solutions(out_path, truth_np, mask_np, estimate, std, task, attrs, str(model), pde)
    figure_dir.mkdir(parents=True, exist_ok=True)
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
        **yardstick_entries(pde, values, mask_np, truth_np),
        "seconds_per_instance": result.seconds_per_instance,
        "nfe": result.nfe + result.nfe_backward,
        "n": len(estimate),
        "task": task,
        "start": start,
        "observed_fraction": float(mask_np.mean()),
        "out": str(out_path),
        "figures": str(figure_dir),
    }
    return SolveReport(summary, label, pde.name)
