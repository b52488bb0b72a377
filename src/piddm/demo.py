"""The newcomer's first minute (``piddm demo``): pretrained models against fresh solver data.

With the shipped ``<pde>-32-teacher`` and ``<pde>-32-piddm`` models, :func:`run_demo`

1. solves ``instances`` fresh PDE instances with the numerical solver (seeds never used in
   training or in the model cards' test sets);
2. draws ``samples`` one-step student samples and ``teacher_samples`` Heun-18 teacher samples
   from the same latents, and compares their solver consistency (median), relative residual
   (median) and raw mean squared residual (mean) (docs/concepts.md, "Physics measures") and
   time per sample;
3. solves the forward and the inverse problem on the fresh instances from the PDE's own
   observation model (:meth:`~piddm.pdes.PDE.observation_mask`: ``obs_fraction`` random
   nodes of the steady PDEs; Burgers' initial condition and sensors) by latent optimisation
   (docs/concepts.md): from the start network shipped for the task and the student
   (:func:`~piddm.tasks.start.auto_start`) with ``piddm solve --start``'s settings
   (:func:`~piddm.tasks.latent.start_config`) where there is one, else from screened prior
   draws; it reports relative L2 (and Darcy's coefficient error rate) against the solver's
   truth, next to the task's yardstick under the same observations
   (:mod:`piddm.tasks.yardstick`: the exact Bayes floor, or the prior mean's error);
4. writes figures (samples with their residual maps; truth / estimate / error / std of one
   forward and one inverse instance) to ``out``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piddm.data.generate import sample_seed
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.metrics import physics_summary, task_metrics
from piddm.models import load_any, pretrained_names
from piddm.pdes import available_pdes
from piddm.plotting import plot_dataset_samples
from piddm.sampling import TEACHER_KINDS, pde_of, sample_checkpoint
from piddm.tasks import LatentOptConfig, plot_task_instance, solve_task
from piddm.tasks.latent import start_config
from piddm.tasks.start import auto_start, load_start
from piddm.tasks.yardstick import yardstick_entries

#: Seed of the demo's fresh instances: disjoint from training (0) and test (1) data.
DEMO_SEED = 20261122


def demo_pdes() -> list[str]:
    """The registered PDEs that ship the demo's pair ``<pde>-32-teacher`` and ``<pde>-32-piddm``
    (``piddm demo --pde``), sorted."""
    shipped = set(pretrained_names())
    return [
        name for name in available_pdes() if {f"{name}-32-teacher", f"{name}-32-piddm"} <= shipped
    ]


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo; the defaults run in about a minute on 2 CPU cores. ``ensemble``,
    ``candidates`` and ``steps`` solve the tasks without a shipped start network (all of them
    unless ``start``)."""

    pde: str = "darcy"
    samples: int = 64
    teacher_samples: int = 8
    instances: int = 4
    ensemble: int = 4
    candidates: int = 256
    steps: int = 100
    obs_fraction: float = 0.03
    seed: int = DEMO_SEED
    teacher: str | None = None
    student: str | None = None
    start: bool = True

    def __post_init__(self) -> None:
        for name in ("samples", "teacher_samples", "instances", "ensemble", "steps"):
            if getattr(self, name) < 1:
                raise PiddmError(f"--{name.replace('_', '-')} must be >= 1")
        if self.candidates < 0:
            raise PiddmError(f"--candidates must be >= 0, got {self.candidates}")
        if self.samples < 2:
            raise PiddmError("--samples must be >= 2")
        if not 0.0 < self.obs_fraction <= 1.0:
            raise PiddmError(f"--obs-fraction must be in (0, 1], got {self.obs_fraction}")


@dataclass
class DemoReport:
    """What the demo measured (``piddm demo --json``)."""

    pde: str
    resolution: int
    generation: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    figures: list[str]
    seconds: float
    solver_seconds_per_instance: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _generation_row(
    name: str, model: torch.nn.Module, metadata: dict[str, Any], n: int, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """``n`` samples of ``model`` (latent seed ``seed``): their table row and fields
    ``(n, C, S, S)`` in physical units."""
    pde = pde_of(metadata)
    run = sample_checkpoint(model, metadata, n, seed)
    row = {
        "method": name,
        "n": n,
        "nfe": run.nfe,
        "seconds_per_sample": run.seconds_per_sample,
        **physics_summary(pde, run.fields),
    }
    return row, run.fields


def solver_label(config: LatentOptConfig, start: str | None) -> str:
    """``"darcy-32-start + 4 x 10"`` or ``"256 -> 4 x 100"``: where a task's latents start (a
    start network, or the best of ``candidates`` prior draws) and members x optimiser steps."""
    origin = f"{start} + " if start else f"{config.candidates} -> " if config.candidates else ""
    return f"{origin}{config.ensemble} x {config.steps}"


def run_demo(settings: DemoSettings, out_dir: str | Path, device: torch.device) -> DemoReport:
    """Run the demo (module doc) and write its figures to ``out_dir``."""
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    student_name = settings.student or f"{settings.pde}-32-piddm"
    teacher_name = settings.teacher or f"{settings.pde}-32-teacher"
    student, s_meta = load_any(student_name, device)
    teacher, t_meta = load_any(teacher_name, device)
    if s_meta.get("kind") in TEACHER_KINDS:
        raise PiddmError(f"{student_name} is a diffusion teacher, not a one-step student")
    pde = pde_of(s_meta)
    if pde_of(t_meta).describe() != pde.describe():
        raise PiddmError(f"{teacher_name} and {student_name} are models of different problems")

    solve_start = time.perf_counter()
    truth_np = np.stack(
        [pde.generate(sample_seed(settings.seed, i)) for i in range(settings.instances)]
    )
    solver_seconds = (time.perf_counter() - solve_start) / settings.instances

    latent_seed = settings.seed + 1
    student_row, student_fields = _generation_row(
        f"PIDDM student ({student_name})", student, s_meta, settings.samples, latent_seed
    )
    teacher_row, teacher_fields = _generation_row(
        f"teacher, Heun ({teacher_name})", teacher, t_meta, settings.teacher_samples, latent_seed
    )
    solver_row = {
        "method": "numerical solver (fresh data)",
        "n": settings.instances,
        "nfe": 0,
        "seconds_per_sample": solver_seconds,
        **physics_summary(pde, truth_np),
    }
    figures = [
        plot_dataset_samples(
            student_fields[:3],
            pde,
            out / "student-samples.png",
            title=f"{pde.name}: PIDDM student samples (1 network evaluation) and residual maps",
        ),
        plot_dataset_samples(
            teacher_fields[:3],
            pde,
            out / "teacher-samples.png",
            title=f"{pde.name}: teacher samples (Heun, {teacher_row['nfe']} evaluations)",
        ),
    ]

    generator = one_step_generator(student, s_meta)
    screened = LatentOptConfig(
        steps=settings.steps, ensemble=settings.ensemble, candidates=settings.candidates
    )
    truth = torch.from_numpy(truth_np).double().to(device)
    tasks = []
    for task in ("forward", "inverse"):
        start_name = None
        if settings.start:
            start_name = auto_start(student_name, pde, task, settings.obs_fraction)
        config = start_config(task) if start_name else screened
        rng = torch.Generator().manual_seed(settings.seed)
        mask, result = solve_task(
            generator,
            pde,
            truth,
            task,
            settings.obs_fraction,
            config,
            rng=rng,
            start=None if start_name is None else load_start(start_name, pde, device, task),
        )
        estimate, std = result.estimate.cpu().numpy(), result.std.cpu().numpy()
        tasks.append(
            {
                "task": task,
                "instances": settings.instances,
                "obs_fraction": settings.obs_fraction,
                "observed": pde.observation_label(task, settings.obs_fraction),
                "observed_fraction": float(mask.float().mean()),
                "start": start_name,
                "solver": solver_label(config, start_name),
                **task_metrics(pde, estimate, truth_np),
                **yardstick_entries(pde, truth_np, mask, truth_np),
                "seconds_per_instance": result.seconds_per_instance,
            }
        )
        figures.append(
            plot_task_instance(
                pde,
                truth_np[0],
                estimate[0],
                std[0],
                mask[0].cpu().numpy(),
                out / f"{task}.png",
                title=f"{pde.name} {task} problem, observed: "
                f"{pde.observation_label(task, settings.obs_fraction)} (red crosses), "
                f"{solver_label(config, start_name)}",
            )
        )
    return DemoReport(
        pde=pde.name,
        resolution=pde.resolution,
        generation=[solver_row, teacher_row, student_row],
        tasks=tasks,
        figures=[str(f) for f in figures],
        seconds=time.perf_counter() - start,
        solver_seconds_per_instance=solver_seconds,
    )


#: What the bracketed number of a demo task line is (:mod:`piddm.tasks.yardstick`).
YARDSTICK_HELP = {
    "bayes_floor": "Bayes floor: the exact posterior mean's error (none does better on average)",
    "prior_mean_error": "prior mean: the data's mean field, observations put in (no model)",
}


#: The yardsticks' names in the legend of a line with two of them.
YARDSTICK_SHORT = {"bayes_floor": "Bayes floor", "prior_mean_error": "prior mean"}


def _with_yardstick(value: float | None, *references: float | None) -> str:
    """``"13.1% [40.0%]"`` (or ``"23.1% [14.8% / 98.0%]"`` with a floor and the prior mean):
    a metric and its yardsticks; ``"-"`` when the PDE has none."""
    marks = [r for r in references if r is not None]
    if value is None or not marks:
        return "-"
    return f"{value:.1%} [{' / '.join(f'{r:.1%}' for r in marks)}]"


def format_report(report: DemoReport) -> str:
    """The demo's two small tables as plain text."""
    teacher = report.generation[1]["residual_mean"]
    lines = [
        f"{report.pde} at {report.resolution}x{report.resolution}: samples",
        "  consistency: median relative L2 to the solver's solution for the sample's own input",
        "  rel. res.:   median |R| / |R of the zero field| (1: no better than a zero solution)",
        "  residual:    mean squared PDE residual, physical units (a diagnostic)",
        f"  {'method':<44} {'NFE':>4} {'ms/sample':>10} {'consistency':>11} {'rel. res.':>10} "
        f"{'residual':>10} {'vs teacher':>10}",
    ]
    for row in report.generation:
        lines.append(
            f"  {row['method']:<44} {row['nfe']:>4} {1e3 * row['seconds_per_sample']:>10.2f} "
            f"{row['solver_consistency_median']:>11.3g} {row['relative_residual_median']:>10.3g} "
            f"{row['residual_mean']:>10.3g} {row['residual_mean'] / teacher:>10.2g}"
        )
    lines.append("tasks (fresh instances, solved with the student; truth from the solver)")
    kinds = [kind for kind in YARDSTICK_HELP if any(kind in row for row in report.tasks)]
    label = " / ".join(YARDSTICK_SHORT[kind] for kind in kinds)
    lines.extend(f"  [in brackets] {YARDSTICK_HELP[kind]}" for kind in kinds)
    lines.append(
        "  solver: start network + members x optimiser steps, or prior draws screened -> "
        "members x steps"
    )
    width = 16 if len(kinds) == 1 else 22
    lines.append(
        f"  {'task':<8} {'observed':<20} {'rel L2 coef':>{width}} {'rel L2 sol':>{width}} "
        f"{'error rate':>{width}} {'s/instance':>11}  solver"
    )
    for row in report.tasks:
        references = [row[kind] for kind in kinds if kind in row]
        cells = [
            _with_yardstick(row[key], *(reference[key] for reference in references))
            for key in ("rel_l2_coefficient", "rel_l2_solution", "error_rate")
        ]
        lines.append(
            f"  {row['task']:<8} {row['observed']:<20} {cells[0]:>{width}} {cells[1]:>{width}} "
            f"{cells[2]:>{width}} {row['seconds_per_instance']:>11.2f}  {row['solver']}"
        )
    if len(kinds) > 1:
        lines.append(f"  (brackets: {label})")
    return "\n".join(lines)


__all__ = [
    "DEMO_SEED",
    "DemoReport",
    "DemoSettings",
    "format_report",
    "run_demo",
    "solver_label",
]
