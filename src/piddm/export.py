"""Pretrained models shipped in the package: fp16 export of a trained run, and model cards.

A shipped model is two files in ``src/piddm/pretrained/``:

* ``<name>.safetensors``: the EMA weights in float16 (half the bytes of float32; the model
  is rebuilt in float32 on load, see :func:`piddm.checkpoint.load_model`) with the usual
  checkpoint metadata plus ``metadata["pretrained"] = {"name", "source_step", "dtype"}``;
* ``<name>.json``: its model card (:class:`ModelCard`): where it came from (config, command,
  steps, wall time on the machine that trained it) and its metrics on held-out solver data,
  measured on the exported float16 weights, plus two cheap *checks* that a test recomputes
  to catch a regression in the code that reads the weights:

  - ``check.residual_mean``: mean squared PDE residual (physical units, the metric of
    :func:`piddm.metrics.per_sample_residual`) of the first ``check.n``
    samples (seed ``check.seed``) of the model (a student: one step; a teacher: Heun with
    ``check.steps`` steps);
  - ``check.denoising_mse`` (teachers): ``E |D(x + sigma n, sigma) - x|^2`` in normalised
    units at ``sigma = check.sigma`` over held-out solver fields ``x``.

A shipped *start network* (``kind: start``, :mod:`piddm.tasks.start`; named
``<pde>-<S>-start`` or ``<pde>-<S>-start-<task>``) predicts latents of the shipped student
named in ``source.student``. Its card's ``eval`` holds, per task it was trained on, the task
metrics (:func:`piddm.metrics.task_metrics`) of ``piddm solve --start`` on the first
``eval.n`` held-out instances at ``eval.obs_fraction`` observed (masks and member spread from
seed ``eval.seed``): with no optimiser step (``ensemble x 0``) and with the solver's start
settings (:data:`piddm.tasks.latent.START_CONFIG`); its ``check.tasks`` holds the start
alone's metrics (:func:`piddm.tasks.amortise.start_report`) on ``check.n`` fresh solver
instances (seeds from ``check.seed``), which a test recomputes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from piddm.atomic import atomic_output
from piddm.checkpoint import load_model, resolve_checkpoint, save_weights
from piddm.config import DiffusionConfig
from piddm.data.generate import sample_seed
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.metrics import evaluate, per_sample_residual, task_metrics
from piddm.models import PRETRAINED_DIR, PRETRAINED_NAME, load_any
from piddm.pdes import PDE
from piddm.sampling import TEACHER_KINDS, SampleRun, pde_of, sample_checkpoint
from piddm.tasks.amortise import REPORT_FRACTION, start_report
from piddm.tasks.latent import START_CONFIG, solve_task
from piddm.tasks.start import trained_tasks

CHECK_SAMPLES = 64
CHECK_SEED = 0
CHECK_SIGMA = 0.5
CHECK_TEACHER_STEPS = DiffusionConfig.steps  # the teachers' own default Heun steps
#: Fresh solver instances of a start network's check (seeds disjoint from training (0), test
#: (1) and the demo's), and the held-out instances its card's eval solves.
START_CHECK_INSTANCES = 16
START_CHECK_SEED = 4242
START_EVAL_INSTANCES = 200


@dataclass
class ModelCard:
    """What a shipped model is and how well it does (written as ``<name>.json``)."""

    name: str
    kind: str
    pde: str
    resolution: int
    parameters: int
    weights_dtype: str
    size_bytes: int
    nfe: int
    source: dict[str, Any]
    data: dict[str, Any]
    eval: dict[str, Any]
    check: dict[str, Any]
    seconds_per_sample: float
    timing: str = "batches of 64, machine shared with training"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        return cls(**json.loads(text))


def export_weights(source: str | Path, name: str, out_dir: str | Path = PRETRAINED_DIR) -> Path:
    """Write the EMA weights of run / checkpoint ``source`` as ``out_dir/<name>.safetensors``
    in float16; returns the path."""
    checkpoint = resolve_checkpoint(source)
    model, metadata = load_model(checkpoint)
    metadata = dict(metadata)
    metadata["pretrained"] = {
        "name": name,
        "source_step": metadata.get("step"),
        "dtype": "float16",
    }
    out = Path(out_dir) / f"{name}.safetensors"
    return save_weights(out, model.half(), metadata)


@torch.no_grad()
def denoising_mse(
    denoiser: nn.Module, pde: PDE, fields: np.ndarray, sigma: float, seed: int = 0
) -> float:
    """``mean |D(x + sigma n, sigma) - x|^2`` over normalised solver ``fields`` ``(N, C, S, S)``."""
    x = pde.normalisation.normalise(torch.from_numpy(np.asarray(fields, dtype=np.float32)))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    sigmas = torch.full((x.shape[0],), float(sigma))
    errors = []
    for begin in range(0, len(x), 128):
        xb, nb, sb = x[begin : begin + 128], noise[begin : begin + 128], sigmas[begin : begin + 128]
        errors.append(((denoiser(xb + sigma * nb, sb) - xb) ** 2).flatten(1).mean(1))
    return float(torch.cat(errors).mean())


def check_residual(model: nn.Module, metadata: dict[str, Any], n: int = CHECK_SAMPLES) -> float:
    """Mean squared residual of the first ``n`` samples (seed :data:`CHECK_SEED`)."""
    steps = CHECK_TEACHER_STEPS if metadata.get("kind") in TEACHER_KINDS else None
    run = sample_checkpoint(model, metadata, n, CHECK_SEED, steps=steps)
    return float(per_sample_residual(pde_of(metadata), run.fields).mean())


def measure(
    model: nn.Module, metadata: dict[str, Any], reference: np.ndarray, n_eval: int = 512
) -> tuple[dict[str, Any], SampleRun]:
    """A card's ``eval``: ``n_eval`` samples of the seed-7 latents (teacher: Heun 18; student:
    one step) scored by :func:`piddm.metrics.evaluate` against ``reference``; and the run."""
    run = sample_checkpoint(model, metadata, n_eval, seed=7)
    return evaluate(pde_of(metadata), run.fields, reference).as_dict(), run


def model_card(
    weights: Path,
    reference: np.ndarray,
    source: dict[str, Any],
    data: dict[str, Any],
    n_eval: int = 512,
    notes: list[str] | None = None,
) -> ModelCard:
    """Measure a card for exported ``weights`` against held-out solver ``reference`` fields.

    Draws ``n_eval`` samples (teacher: Heun 18; student: one step), evaluates them with every
    metric of :func:`piddm.metrics.evaluate`, and computes the cheap checks (module doc).
    """
    model, metadata = load_model(weights)
    pde = pde_of(metadata)
    report, run = measure(model, metadata, reference, n_eval)
    check: dict[str, Any] = {
        "n": CHECK_SAMPLES,
        "seed": CHECK_SEED,
        "residual_mean": check_residual(model, metadata),
    }
    kind = str(metadata.get("kind"))
    if kind in TEACHER_KINDS:
        check.update(
            steps=CHECK_TEACHER_STEPS,
            sigma=CHECK_SIGMA,
            denoising_mse=denoising_mse(model, pde, reference, CHECK_SIGMA),
        )
    return ModelCard(
        name=str(metadata["pretrained"]["name"]),
        kind=kind,
        pde=pde.name,
        resolution=pde.resolution,
        parameters=sum(p.numel() for p in model.parameters()),
        weights_dtype="float16",
        size_bytes=weights.stat().st_size,
        nfe=run.nfe,
        source=source,
        data=data,
        eval=report,
        check=check,
        seconds_per_sample=run.seconds_per_sample,
        notes=list(notes or []),
    )


def start_student(metadata: dict[str, Any]) -> str:
    """The pretrained student whose latents a start network (its ``metadata``) predicts;
    :class:`PiddmError` if it was trained with another student (it cannot ship)."""
    student = str(metadata.get("student", {}).get("path"))
    if not PRETRAINED_NAME.match(student):
        raise PiddmError(
            f"a shipped start network must be trained with a shipped student (piddm amortise "
            f"--student <pde>-32-piddm), not {student}"
        )
    return student


def check_start(
    start: nn.Module, metadata: dict[str, Any], n: int = START_CHECK_INSTANCES
) -> dict[str, dict[str, float | None]]:
    """Per trained task, the start alone's task metrics (:func:`start_report`, 3 % observed,
    masks from seed 0) on ``n`` fresh solver instances (seeds from :data:`START_CHECK_SEED`),
    with the student :func:`start_student` names."""
    pde = pde_of(metadata)
    student, s_meta = load_any(start_student(metadata))
    fresh = [pde.generate(sample_seed(START_CHECK_SEED, i)) for i in range(n)]
    truth = torch.from_numpy(np.stack(fresh)).double()
    return start_report(
        start, one_step_generator(student, s_meta), pde, truth, trained_tasks(metadata)
    )


def start_card(
    weights: Path,
    reference: np.ndarray,
    source: dict[str, Any],
    data: dict[str, Any],
    n_eval: int = START_EVAL_INSTANCES,
    notes: list[str] | None = None,
) -> ModelCard:
    """Measure the card of an exported start network (module doc) against the first
    ``n_eval`` held-out solver fields of ``reference`` ``(N, C, S, S)``."""
    start, metadata = load_model(weights)
    pde = pde_of(metadata)
    student_name = start_student(metadata)
    student, s_meta = load_any(student_name)
    generator = one_step_generator(student, s_meta)
    truth_np = np.asarray(reference[:n_eval], dtype=np.float64)
    truth = torch.from_numpy(truth_np)
    seed = 0
    tasks: dict[str, dict[str, Any]] = {}
    seconds = []
    for task in trained_tasks(metadata):
        rows = {}
        for config in (replace(START_CONFIG, steps=0), START_CONFIG):
            _, result = solve_task(
                generator,
                pde,
                truth,
                task,
                REPORT_FRACTION,
                config,
                rng=torch.Generator().manual_seed(seed),
                start=start,
            )
            rows[f"{config.ensemble} x {config.steps}"] = {
                **task_metrics(pde, result.estimate.numpy(), truth_np),
                "seconds_per_instance": result.seconds_per_instance,
            }
            if config.steps == 0:
                seconds.append(result.seconds_per_instance)
        tasks[task] = rows
    check = {"n": START_CHECK_INSTANCES, "seed": START_CHECK_SEED, "obs_fraction": REPORT_FRACTION}
    return ModelCard(
        name=str(metadata["pretrained"]["name"]),
        kind="start",
        pde=pde.name,
        resolution=pde.resolution,
        parameters=sum(p.numel() for p in start.parameters()),
        weights_dtype="float16",
        size_bytes=weights.stat().st_size,
        nfe=1,
        source={**source, "student": student_name},
        data=data,
        eval={"n": len(truth_np), "obs_fraction": REPORT_FRACTION, "seed": seed, "tasks": tasks},
        check={**check, "tasks": check_start(start, metadata)},
        seconds_per_sample=min(seconds),
        timing=f"wall time of piddm solve --start on batches of {len(truth_np)} instances (its "
        "seconds_per_sample: the start alone's)",
        notes=list(notes or []),
    )


def time_per_sample(weights: Path, n: int, repeats: int = 3) -> float:
    """Seconds per sample of ``n`` samples in one batch: the best of ``repeats`` runs after a
    warm-up batch (the minimum is the least disturbed by other processes, as in ``timeit``)."""
    model, metadata = load_model(weights)
    sample_checkpoint(model, metadata, 2, 1)  # warm-up
    return min(
        sample_checkpoint(model, metadata, n, 0, batch_size=n).seconds_per_sample
        for _ in range(repeats)
    )


def write_card(card: ModelCard, out_dir: str | Path = PRETRAINED_DIR) -> Path:
    """Write ``<out_dir>/<name>.json`` atomically."""
    out = Path(out_dir) / f"{card.name}.json"
    with atomic_output(out) as tmp:
        tmp.write_text(card.to_json())
    return out


def read_cards(directory: str | Path = PRETRAINED_DIR) -> list[ModelCard]:
    """Every model card in ``directory``, by name."""
    return [ModelCard.from_json(p.read_text()) for p in sorted(Path(directory).glob("*.json"))]


def _ratio(value: float | None, floor: float | None) -> str:
    if value is None or not floor:
        return "-"
    return f"{value:.3g} ({value / floor:.2g}x floor)"


def _interval(ci: list[float] | None) -> str:
    """`` [lo, hi]`` of a 95 % interval, or nothing if there is none."""
    return "" if ci is None else f" [{ci[0]:.3g}, {ci[1]:.3g}]"


def _median_mean(ev: dict[str, Any], median: str, mean: str) -> str:
    """``median / mean`` table cell of a card's eval keys; ``-`` for a key that a card
    measured before it existed lacks (cards are only re-measured by an export)."""
    if ev.get(median) is None and ev.get(mean) is None:
        return "-"
    return " / ".join("-" if ev.get(k) is None else f"{ev[k]:.3g}" for k in (median, mean))


def physics_sentence(ev: dict[str, Any]) -> str:
    """The card page's words on solver consistency and the relative residual of a card's
    ``eval``: median and mean with their 95 % intervals, each ending in ``"; "``; a measure
    the card lacks is left out (an older card has the consistency mean alone)."""
    parts = []
    for label, median, mean in (
        ("solver consistency", "solver_consistency_median", "solver_consistency"),
        ("relative residual", "relative_residual_median", "relative_residual_mean"),
    ):
        if ev.get(mean) is None:
            continue
        text = f"{label} "
        if ev.get(median) is not None:
            text += f"median {ev[median]:.3g}{_interval(ev.get(median + '_ci'))}, "
        parts.append(f"{text}mean {ev[mean]:.3g}{_interval(ev.get(mean + '_ci'))}; ")
    return "".join(parts)


def _percent(row: dict[str, Any], key: str) -> str:
    return "-" if row.get(key) is None else f"{row[key]:.1%}"


def render_start_cards(cards: list[ModelCard]) -> list[str]:
    """The start networks' section of ``docs/pretrained.md``: one table row per network and
    task (every error as ``start alone / solver's start settings``), then one section each."""
    if not cards:
        return []
    lines = [
        "## Start networks",
        "",
        "A start network maps a task's observations to starting latents of its student, so",
        "that `piddm solve --start NAME` needs a few optimiser steps (docs/method.md,",
        '"Amortised start"). Errors on the first held-out instances of the test set at 3 %',
        "observed, same masks for both: the start's latents with no optimiser step / with",
        "`START_CONFIG`'s 4 x 10 steps. `piddm solve --start` (and its default `--start auto`)",
        "takes no step on forward problems, where the start alone is more accurate, and 4 x 10",
        "on the others.",
        "",
        "| name | student | task | params | MB | rel. L2 of coefficient | rel. L2 of solution "
        "| error rate | s/instance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        for task, rows in c.eval["tasks"].items():
            alone, solved = rows.values()
            cells = [
                f"{_percent(alone, key)} / {_percent(solved, key)}"
                for key in ("rel_l2_coefficient", "rel_l2_solution", "error_rate")
            ]
            lines.append(
                f"| `{c.name}` | `{c.source['student']}` | {task} | {c.parameters / 1e6:.2f} M "
                f"| {c.size_bytes / 1e6:.1f} | {' | '.join(cells)} "
                f"| {alone['seconds_per_instance']:.2f} / {solved['seconds_per_instance']:.2f} |"
            )
    lines.append("")
    for c in cards:
        s = c.source
        labels = " and ".join(next(iter(c.eval["tasks"].values())))
        lines += [
            f"### `{c.name}`",
            "",
            f"- Start network of `{s['student']}` for {c.pde} at {c.resolution}^2, trained on "
            f"{', '.join(c.eval['tasks'])} problems, {c.parameters:,} parameters, "
            f"{c.weights_dtype} weights ({c.size_bytes / 1e6:.2f} MB).",
            f"- Trained by `{s['command']}`, {s['steps']} steps, "
            f"{s['train_seconds'] / 60:.0f} min on {s['machine']}.",
            f"- Data: {c.data['train']}; evaluated ({labels}) on the first {c.eval['n']} of "
            f"{c.data['test']}.",
            f"- Seconds per instance: {c.timing}.",
        ]
        lines += [f"- {note}" for note in c.notes]
        lines.append("")
    return lines


def render_cards(cards: list[ModelCard]) -> str:
    """The Markdown page of the shipped models (``docs/pretrained.md``): the generators'
    table and sections, then the start networks' (:func:`render_start_cards`)."""
    starts = [c for c in cards if c.kind == "start"]
    cards = [c for c in cards if c.kind != "start"]
    lines = [
        "# Pretrained models",
        "",
        "Generated by `python benchmarks/export_pretrained.py` from the model cards in",
        "`src/piddm/pretrained/*.json`; do not edit by hand. Every model loads without network:",
        "`piddm.load_pretrained(NAME)` in Python, or NAME wherever the CLI takes `--model`.",
        "Metrics are those of [concepts.md](concepts.md), measured on the shipped float16",
        "weights against 1,024 held-out solver samples (seed 1, never seen in training).",
        "Solver consistency (relative L2 between a sample's solution and the solver's for its",
        "own input) and the relative residual (|R| over the zero field's |R|) are scale-free,",
        "given as median / mean with 95 % intervals below (`-`: a card measured before they",
        "existed); residual is the mean squared PDE residual per sample in physical units, a",
        "diagnostic (the float32 solver data's own is ~1e-11).",
        "Times per sample: best of 3 batches of 64 on 2 idle CPU cores",
        "(`python benchmarks/export_pretrained.py --retime`).",
        "",
        "| name | kind | params | MB | NFE | ms/sample | consistency median / mean "
        "| rel. residual median / mean | residual mean | MMSE | SMSE | SFD |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cards:
        e = c.eval
        lines.append(
            f"| `{c.name}` | {c.kind} | {c.parameters / 1e6:.2f} M | {c.size_bytes / 1e6:.1f} "
            f"| {c.nfe} | {1e3 * c.seconds_per_sample:.2f} "
            f"| {_median_mean(e, 'solver_consistency_median', 'solver_consistency')} "
            f"| {_median_mean(e, 'relative_residual_median', 'relative_residual_mean')} "
            f"| {e['residual_mean']:.3g} "
            f"| {_ratio(e['mmse'], e['mmse_floor'])} | {_ratio(e['smse'], e['smse_floor'])} "
            f"| {_ratio(e['sfd'], e['sfd_floor'])} |"
        )
    lines.append("")
    for c in cards:
        s = c.source
        lines += [
            f"## `{c.name}`",
            "",
            f"- {c.kind} for {c.pde} at {c.resolution}^2, {c.parameters:,} parameters, "
            f"{c.weights_dtype} weights ({c.size_bytes / 1e6:.2f} MB).",
            f"- Trained by `{s['command']}`, {s['steps']} steps, "
            f"{s['train_seconds'] / 60:.0f} min on {s['machine']}; the whole pipeline is "
            f"`{s['pipeline']}`.",
            f"- Data: {c.data['train']}; evaluated against {c.data['test']}.",
            f"- Evaluation ({c.eval['n']} samples): {physics_sentence(c.eval)}residual mean "
            f"{c.eval['residual_mean']:.3g}{_interval(c.eval.get('residual_mean_ci'))}, "
            f"median {c.eval['residual_median']:.3g}; {1e3 * c.seconds_per_sample:.2f} ms per "
            f"sample ({c.nfe} network evaluation{'s' if c.nfe > 1 else ''}; {c.timing}).",
        ]
        lines += [f"- {note}" for note in c.notes]
        lines.append("")
    lines += render_start_cards(starts)
    return "\n".join(lines)


__all__ = [
    "ModelCard",
    "check_residual",
    "check_start",
    "denoising_mse",
    "export_weights",
    "model_card",
    "read_cards",
    "render_cards",
    "render_start_cards",
    "start_card",
    "start_student",
    "time_per_sample",
    "write_card",
]
