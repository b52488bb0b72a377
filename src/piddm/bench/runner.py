"""The benchmark harness: every method on the same teacher, data, instances, masks and latents.

Fairness rules (docs/method.md, "Benchmark"), all in one process:

* **Generation**: sample ``i`` of every method starts from the latent
  ``latents([sample_seed(generate.seed, i)])``; a method with a smaller ``n`` (per-method
  override) uses the first ``n`` of the same sequence. Metrics:
  :func:`piddm.metrics.evaluate` against the held-out reference set.
* **Tasks** (forward, inverse, reconstruct): the instances are the first ``tasks.n`` reference
  fields (a method with a per-method ``n`` solves the first ``n`` of them); each task's masks
  are drawn once (:func:`piddm.bench.masks.bench_masks`: seeded by the task's place in the
  fixed task order, not in ``tasks.run``) and shared by every method; baselines start
  instance ``i`` from ``latents([sample_seed(tasks.seed, i)])`` (one sample per instance), the
  one-step students optimise ``tasks.ensemble`` latents per instance (settings of
  ``tasks.latent_settings(task)``: per-task overrides apply) drawn from
  ``Generator(tasks.seed)`` (the same for every student). Metrics:
  :func:`piddm.metrics.task_metrics`, with 95 % intervals over the instances, and the
  residual and relative residual of the estimates (:func:`task_row_metrics`).
* **Classical rows** (no network, tasks only): ``map``, the PDE-constrained MAP estimate
  (:func:`piddm.tasks.classical.map_estimate`: the solver and its adjoint), and
  ``bayes-floor``, the Bayes posterior mean (:func:`~piddm.tasks.classical.floor_estimate`:
  exact for the linear-Gaussian PDEs, sampled otherwise), the error no method can beat in
  expectation under the same observations; both see only the observed values, are seeded with
  ``tasks.seed``, take ``classical.<method>`` settings, and are timed like every method (NFE 0).
  A PDE and task they do not handle gets an unsupported row with their note.
* **Cost**: ``time.perf_counter`` around each method's sampling call only (inputs are built
  and outputs evaluated outside the clock; CUDA is synchronised). NFE per sample (per
  instance for tasks): the baselines' :class:`~piddm.baselines.CountingDenoiser` (forward
  evaluations, averaged over batches), :func:`piddm.sampling.make_sampler`'s count for the
  teachers and students (PIDDM-ref: the forward and backward passes its refinement measured,
  :func:`piddm.sampling.measured_nfe`, plus the final evaluation), and
  ``result.nfe + result.nfe_backward`` for latent optimisation (all ``ensemble`` latents).

Method names of the rows: ``piddm-1`` is the PIDDM student, which on the tasks runs the
latent optimisation (docs/method.md, "Tasks"), its refinement with data; the ``piddm-ref``
rows of the tasks are therefore marked unsupported with a note pointing there. Rows with a
``variant`` label (:func:`row_label`: ``method (label)``): the pure-distillation ablation,
``piddm-1 (lambda0)`` (generation, and the tasks if ``tasks.ablation``), and each config
``variants`` entry, e.g. DiffusionPDE with its published 2,000 guided steps beside the
200-step row, or PIDDM with a cheaper latent optimisation: a variant runs on the tasks only
(generation compares the methods' defaults), with its own settings and its own ``n``
(:class:`piddm.bench.config.Variant`).

Figures: the generated residual maps, one task instance solved by every method, and per
task the time-vs-error plane (:func:`piddm.bench.figures.plot_time_vs_error`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piddm.baselines import BASELINES, CountingDenoiser
from piddm.bench.config import (
    CLASSICAL_METHODS,
    STUDENT_METHODS,
    BenchConfig,
    baseline_overrides,
    bench_config_to_dict,
    classical_settings,
    config_variants,
)
from piddm.bench.figures import plot_residual_maps, plot_task_comparison, plot_time_vs_error
from piddm.bench.masks import bench_masks
from piddm.bench.models import METHOD_MODEL, BenchModel, Log, load_models
from piddm.data.generate import generate_dataset, sample_seed
from piddm.data.io import open_dataset_file, read_attrs, read_dataset
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.jsonio import json_default
from piddm.metrics import (
    EvalReport,
    evaluate,
    mean_interval,
    per_sample_residual,
    physics_summary,
    task_metrics_per_instance,
)
from piddm.pdes import PDE, get_pde
from piddm.sampling import latents, make_sampler, measured_nfe
from piddm.tasks.classical import floor_estimate, floor_supports, map_estimate, map_supports
from piddm.tasks.latent import LatentOptConfig, optimise_latents
from piddm.tasks.start import check_start_task
from piddm.training.distributed import DistInfo, resolve_device

#: The ``piddm eval`` keys, in :class:`piddm.metrics.EvalReport`'s order (task rows fill the
#: residual and relative-residual ones; their consistency keys stay ``None``).
GENERATE_METRICS: tuple[str, ...] = tuple(f.name for f in fields(EvalReport) if f.name != "n")
#: Task metrics: means over the instances, and their 95 % intervals (``*_ci``, ``[lo, hi]``,
#: ``None`` for one instance; :func:`piddm.metrics.mean_interval`).
TASK_METRICS: tuple[str, ...] = (
    "rel_l2_coefficient",
    "rel_l2_solution",
    "error_rate",
    "rel_l2_coefficient_ci",
    "rel_l2_solution_ci",
    "error_rate_ci",
)
#: Keys of every row (metrics that do not apply are ``None``).
ROW_KEYS: tuple[str, ...] = (
    "method",
    "task",
    "variant",
    "supported",
    "n",
    "nfe",
    "seconds_per_sample",
    "seconds",
    "model",
    "note",
    *GENERATE_METRICS,
    *TASK_METRICS,
)
BASELINE_METHODS = ("diffusionpde", "cocogen", "eci", "dflow")
#: Methods whose task estimates honour the observations exactly (hard constraints).
HARD_CONSTRAINT_METHODS = ("eci", "pid", "piddm-1")


def empty_row(method: str, task: str, variant: str | None = None) -> dict[str, Any]:
    """A row with every key of :data:`ROW_KEYS`; metrics ``None``."""
    row: dict[str, Any] = dict.fromkeys(ROW_KEYS)
    row.update(method=method, task=task, variant=variant, supported=True)
    return row


def row_label(row: dict[str, Any]) -> str:
    """``method`` or ``method (variant)``."""
    return row["method"] if row["variant"] is None else f"{row['method']} ({row['variant']})"


@dataclass(frozen=True)
class Entry:
    """The rows of one ``method`` (labelled ``variant``) run on ``model`` (``None``: no
    network) with ``settings`` overriding the method's own (config ``variants``) on ``n`` task
    instances (``None``: the method's ``tasks.n_per_method``); ``generate`` / ``tasks``: whether
    it has generation / task rows."""

    method: str
    variant: str | None
    model: BenchModel | None
    settings: dict[str, Any] = field(default_factory=dict)
    n: int | None = None
    generate: bool = True
    tasks: bool = True


@dataclass
class Outcome:
    """One method's output: physical fields ``(n, C, S, S)`` and its measured cost."""

    fields: np.ndarray
    nfe: float
    seconds: float


@dataclass
class BenchResult:
    """Rows, figure paths and notes of a benchmark run."""

    rows: list[dict[str, Any]]
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: ``(task, label) -> (n, C, S, S)`` physical outputs: samples (``generate``) or estimates.
    outputs: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: ``task -> (truth, mask)`` of the shared task instances, ``(n, C, S, S)`` each.
    instances: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def payload(self, cfg: BenchConfig, out_dir: Path) -> dict[str, Any]:
        """The ``--json`` object (also written to ``<out_dir>/bench.json``)."""
        return {
            "rows": self.rows,
            "pde": bench_config_to_dict(cfg.pde),
            "config": bench_config_to_dict(cfg),
            "figures": [str(p) for p in self.figures],
            "notes": list(self.notes),
            "out_dir": str(out_dir),
            "torch_threads": torch.get_num_threads(),
        }


@dataclass
class _Context:
    cfg: BenchConfig
    pde: PDE
    device: torch.device
    reference: np.ndarray
    models: dict[str, BenchModel]
    log: Log

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.pde.num_channels, self.pde.resolution, self.pde.resolution)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# ----------------------------------------------------------------------------- reference
def ensure_reference(cfg: BenchConfig, pde: PDE, progress: bool) -> np.ndarray:
    """The held-out reference fields ``(N, C, S, S)``; generated with the solver if missing."""
    path = Path(cfg.reference.path)
    if not path.exists():
        if cfg.reference.n is None:
            raise PiddmError(
                f"reference {path} does not exist (set reference.n to generate it with the solver)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        workers = max(1, min(os.cpu_count() or 1, 8)) if cfg.reference.n >= 256 else 1
        generate_dataset(
            pde, cfg.reference.n, cfg.reference.seed, path, workers=workers, progress=progress
        )
    data = read_dataset(path, pde=pde.name, resolution=pde.resolution)
    if data.pde.params != pde.params:
        raise PiddmError(
            f"reference {path} has {pde.name} parameters {data.pde.params}, the config {pde.params}"
        )
    if len(data) < 4:
        raise PiddmError(f"reference {path} holds {len(data)} samples; at least 4 are needed")
    if cfg.tasks.run and len(data) < cfg.tasks.n:
        raise PiddmError(
            f"config tasks.n: {cfg.tasks.n} instances but reference {path} holds {len(data)}"
        )
    return data.fields


def check_held_out(cfg: BenchConfig, models: dict[str, BenchModel]) -> None:
    """Refuse a reference that is the teacher's training data, or was generated with its seed."""
    teacher = models.get("teacher")
    if teacher is None:
        return
    data = teacher.metadata.get("config", {}).get("data", {})
    reference = Path(cfg.reference.path).resolve()
    train_path = Path(data["path"]).resolve() if data.get("path") else None
    if train_path == reference:
        raise PiddmError(
            f"reference {cfg.reference.path} is the teacher's training data; use held-out data"
        )
    # The training file's own generator seed if it is at hand, else the config's.
    train_seed = _generator_seed(train_path) if train_path and train_path.is_file() else None
    train_seed = data.get("seed") if train_seed is None else train_seed
    ref_seed = _generator_seed(reference)
    if ref_seed is not None and ref_seed == train_seed:
        raise PiddmError(
            f"reference {cfg.reference.path} was generated with seed {ref_seed}, the seed of "
            "the teacher's training data; generate held-out data with another seed"
        )


def _generator_seed(path: Path) -> int | None:
    """The ``seed`` a dataset file was generated with, if it records one."""
    try:
        with open_dataset_file(path) as handle:
            generator = read_attrs(handle).get("generator") or {}
    except PiddmError:
        return None
    seed = generator.get("seed") if isinstance(generator, dict) else None
    return int(seed) if isinstance(seed, int) else None


# ----------------------------------------------------------------------------- sampling
def _batches(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def _timed(ctx: _Context, fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    ctx.sync()
    start = time.perf_counter()
    out = fn()
    ctx.sync()
    return out, time.perf_counter() - start


def _seeds(seed: int, n: int) -> list[int]:
    return [sample_seed(seed, i) for i in range(n)]


def _to_physical(pde: PDE, x: torch.Tensor) -> np.ndarray:
    return pde.normalisation.denormalise(x.detach().double()).cpu().numpy()


def _model_sampler(ctx: _Context, method: str, model: BenchModel) -> tuple[Any, int]:
    gen = ctx.cfg.generate
    if method in ("teacher", "pidm"):
        return make_sampler(model.model, model.metadata, ctx.pde, steps=gen.teacher_steps)
    refine = gen.refine_steps if method == "piddm-ref" else 0
    return make_sampler(model.model, model.metadata, ctx.pde, refine=refine)


def _baseline(ctx: _Context, entry: Entry) -> tuple[Any, Any]:
    """``(registry entry, settings)`` of a baseline on the teacher's noise grid (unless
    overridden by ``baselines.<method>``, then by the entry's variant settings)."""
    method, model = entry.method, entry.model
    assert model is not None
    where = f"variants.{method}.{entry.variant}" if entry.settings else f"baselines.{method}"
    registered = BASELINES[method]
    diffusion = model.metadata.get("diffusion", {})
    grid = {k: float(diffusion[k]) for k in ("sigma_min", "sigma_max", "rho") if k in diffusion}
    overrides = baseline_overrides(ctx.cfg, method, entry.settings)
    try:
        settings = registered.defaults(ctx.pde, **{**grid, **overrides})
    except (TypeError, PiddmError) as exc:
        raise PiddmError(f"config {where}: {exc}") from None
    return registered, settings


def _run_baseline(
    ctx: _Context,
    entry: Entry,
    seeds: list[int],
    batch_size: int,
    obs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Outcome:
    """A baseline on latents of ``seeds``; ``obs = (mask, normalised values)`` for tasks."""
    registered, settings = _baseline(ctx, entry)
    assert entry.model is not None
    sigmas = settings.sigmas(device=ctx.device, dtype=torch.float32)
    out, seconds, nfe_total = [], 0.0, 0.0
    for rows in _batches(len(seeds), batch_size):
        x = latents(seeds[rows], ctx.shape, ctx.device) * sigmas[0]
        kwargs: dict[str, Any] = {"pde": ctx.pde, "settings": settings}
        if obs is not None:
            kwargs.update(mask=obs[0][rows], obs=obs[1][rows])
        if entry.method == "eci":
            kwargs["generator"] = torch.Generator().manual_seed(seeds[rows.start])
        counter = CountingDenoiser(entry.model.model)
        x, dt = _timed(ctx, lambda x=x, c=counter, k=kwargs: registered.sample(c, x, sigmas, **k))
        seconds += dt
        nfe_total += counter.nfe * len(seeds[rows])
        out.append(_to_physical(ctx.pde, x))
    return Outcome(np.concatenate(out), nfe_total / len(seeds), seconds)


def run_generate(ctx: _Context, entry: Entry, n: int) -> Outcome:
    """``n`` unconditional samples of an entry's method from the shared latents."""
    gen = ctx.cfg.generate
    seeds = _seeds(gen.seed, n)
    if entry.method in BASELINE_METHODS:
        return _run_baseline(ctx, entry, seeds, gen.batch_size)
    assert entry.model is not None
    sampler, nfe = _model_sampler(ctx, entry.method, entry.model)
    out, seconds = [], 0.0
    for rows in _batches(n, gen.batch_size):
        eps = latents(seeds[rows], ctx.shape, ctx.device)
        x, dt = _timed(ctx, lambda eps=eps: sampler(eps))
        seconds += dt
        out.append(_to_physical(ctx.pde, x))
    return Outcome(np.concatenate(out), measured_nfe(sampler, nfe), seconds)


def run_task(
    ctx: _Context, entry: Entry, task: str, truth: torch.Tensor, mask: torch.Tensor
) -> Outcome:
    """Estimates of ``truth`` ``(N, C, S, S)`` (physical, float64) observed where ``mask``."""
    tasks = ctx.cfg.tasks
    if entry.method in CLASSICAL_METHODS:
        return _run_classical(ctx, entry, task, truth, mask)
    assert entry.model is not None
    if entry.method in STUDENT_METHODS:
        settings = {**tasks.latent_settings(task), **entry.settings}
        start = _start_network(ctx, entry, task) if settings.pop("start") else None
        config = LatentOptConfig(**settings)
        generator = one_step_generator(entry.model.model, entry.model.metadata)
        rng = torch.Generator().manual_seed(tasks.seed)
        results: list[Any] = []

        def solve() -> torch.Tensor:
            results.append(
                optimise_latents(generator, ctx.pde, truth, mask, config, rng=rng, start=start)
            )
            return results[-1].estimate

        estimate, seconds = _timed(ctx, solve)
        result = results[-1]
        fields = estimate.detach().double().cpu().numpy()
        return Outcome(fields, float(result.nfe + result.nfe_backward), seconds)
    obs = (mask, ctx.pde.normalisation.normalise(truth).float())
    outcome = _run_baseline(ctx, entry, _seeds(tasks.seed, len(truth)), tasks.batch_size, obs)
    if entry.method in HARD_CONSTRAINT_METHODS:
        # ECI projects exactly in normalised space; undo the round trip's last-bit error.
        truth_np, mask_np = truth.cpu().numpy(), mask.cpu().numpy()
        outcome.fields = np.where(mask_np, truth_np, outcome.fields)
    return outcome


def _start_network(ctx: _Context, entry: Entry, task: str) -> torch.nn.Module:
    """The ``start`` model for a PIDDM row of ``task`` with ``start: true`` (:func:`_entries`
    skips such rows when there is none); it must have been trained on ``task``."""
    if entry.method != "piddm-1" or "start" not in ctx.models:
        raise PiddmError(
            f"config tasks.start / variants: the {entry.method} rows cannot start from an "
            "amortised start (it needs the PIDDM student and a models.start network)"
        )
    start = ctx.models["start"]
    try:
        check_start_task(start.metadata, task, str(start.path))
    except PiddmError as exc:
        raise PiddmError(f"config models.start: {exc}") from None
    return start.model


def _run_classical(
    ctx: _Context, entry: Entry, task: str, truth: torch.Tensor, mask: torch.Tensor
) -> Outcome:
    """MAP or the Bayes floor on the CPU; they see the observed values only (0 elsewhere)."""
    mask_cpu = mask.cpu()
    obs = torch.where(mask_cpu, truth.cpu(), torch.zeros((), dtype=truth.dtype))
    settings = classical_settings(ctx.cfg, entry.method, entry.settings)
    seed = ctx.cfg.tasks.seed
    if entry.method == "map":

        def solve() -> torch.Tensor:
            return map_estimate(ctx.pde, obs, mask_cpu, task, settings, seed=seed)
    else:
        samples = {} if settings.samples is None else {"samples": settings.samples}

        def solve() -> torch.Tensor:
            return floor_estimate(ctx.pde, obs, mask_cpu, task, seed=seed, **samples)

    estimate, seconds = _timed(ctx, solve)
    return Outcome(estimate.detach().double().cpu().numpy(), 0.0, seconds)


# ----------------------------------------------------------------------------- rows
def _finite_note(fields: np.ndarray) -> str | None:
    bad = int((~np.isfinite(fields)).any(axis=(1, 2, 3)).sum())
    return f"diverged: {bad} of {len(fields)} outputs are not finite" if bad else None


def _measured_row(entry: Entry, task: str, outcome: Outcome) -> dict[str, Any]:
    """A supported row with the cost of ``outcome``: n, NFE, seconds (per sample), model."""
    n = len(outcome.fields)
    row = empty_row(entry.method, task, entry.variant)
    row.update(
        n=n,
        nfe=outcome.nfe,
        seconds=outcome.seconds,
        seconds_per_sample=outcome.seconds / n,
        model=None if entry.model is None else str(entry.model.path),
        note=_finite_note(outcome.fields),
    )
    return row


def _describe(entry: Entry, task: str, n: int) -> str:
    return f"bench: {task} {entry.method}{f' ({entry.variant})' if entry.variant else ''}, n={n}"


def generate_row(ctx: _Context, entry: Entry, n: int) -> tuple[dict[str, Any], np.ndarray]:
    ctx.log(_describe(entry, "generate", n))
    outcome = run_generate(ctx, entry, n)
    row = _measured_row(entry, "generate", outcome)
    if row["note"] is None:
        report = evaluate(
            ctx.pde, outcome.fields, ctx.reference, consistency=ctx.cfg.generate.consistency
        ).as_dict()
        row.update({k: report[k] for k in GENERATE_METRICS})
    return row, outcome.fields


def task_row(
    ctx: _Context, entry: Entry, task: str, truth: torch.Tensor, mask: torch.Tensor
) -> tuple[dict[str, Any], np.ndarray]:
    ctx.log(_describe(entry, task, len(truth)))
    outcome = run_task(ctx, entry, task, truth, mask)
    truth_np = truth.cpu().numpy()
    row = _measured_row(entry, task, outcome)
    row["reference_residual_mean"] = float(per_sample_residual(ctx.pde, truth_np).mean())
    if row["note"] is None:
        row.update(task_row_metrics(ctx.pde, outcome.fields, truth_np))
    return row, outcome.fields


def task_row_metrics(pde: PDE, estimate: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """The metric keys of a task row for estimates and truth ``(N, C, S, S)``: the means of
    :func:`piddm.metrics.task_metrics` with their 95 % intervals over the ``N`` instances, and
    the residual and relative residual of :func:`piddm.metrics.physics_summary`."""
    out: dict[str, Any] = {}
    for key, values in task_metrics_per_instance(pde, estimate, truth).items():
        if key in TASK_METRICS:
            out[key] = None if values is None else float(values.mean())
            out[f"{key}_ci"] = None if values is None else mean_interval(values)
    physics = physics_summary(pde, estimate, consistency=False)
    out.update({k: v for k, v in physics.items() if v is not None})
    return out


def supports(pde: PDE, method: str, task: str) -> tuple[bool, str | None]:
    """Whether ``method`` handles ``task`` on ``pde``, and a note if not."""
    if method in CLASSICAL_METHODS:
        if task == "generate":
            return False, f"{method} estimates from observations only (tasks only)"
        return (map_supports if method == "map" else floor_supports)(pde, task)
    if task == "generate" or method in STUDENT_METHODS:
        return True, None
    if method in BASELINES:
        ok = BASELINES[method].supports_task(task)
        return ok, None if ok else f"{method} has no observation terms"
    if method == "piddm-ref":
        return False, "tasks run latent optimisation on the PIDDM student: see piddm-1"
    return False, "an unconditional diffusion model (no observation terms)"


def _entries(ctx: _Context, notes: list[str]) -> list[Entry]:
    """The row sources of every configured method whose model is available, each followed by
    its variants (the lambda0 ablation, then the config's)."""
    cfg, entries = ctx.cfg, []
    variants = config_variants(cfg)
    for method in cfg.methods:
        slot = METHOD_MODEL.get(method)
        model = None if slot is None else ctx.models.get(slot)
        if slot is not None and model is None:
            notes.append(f"method '{method}' skipped: no '{slot}' model")
            continue
        entries.append(Entry(method, None, model))
        if method == "piddm-1":
            if "piddm_lambda0" in ctx.models:
                ablation = ctx.models["piddm_lambda0"]
                entries.append(Entry(method, "lambda0", ablation, tasks=cfg.tasks.ablation))
            else:
                notes.append("ablation 'piddm-1 (lambda0)' skipped: no 'piddm_lambda0' model")
        for v in variants:
            if v.method != method:
                continue
            if v.settings.get("start") and "start" not in ctx.models:
                notes.append(f"variant '{method} ({v.label})' skipped: no 'start' model")
                continue
            entries.append(Entry(method, v.label, model, v.settings, v.n, generate=False))
    notes += [
        f"variant '{v.method} ({v.label})' skipped: {v.method} is not in methods"
        for v in variants
        if v.method not in cfg.methods
    ]
    return entries


def _check_starts(ctx: _Context, entries: list[Entry]) -> None:
    """Before any row runs: every student row that starts from ``models.start`` can (the
    errors of :func:`_start_network`)."""
    for entry in entries:
        if entry.method not in STUDENT_METHODS or not entry.tasks:
            continue
        for task in ctx.cfg.tasks.run:
            if {**ctx.cfg.tasks.latent_settings(task), **entry.settings}.get("start"):
                _start_network(ctx, entry, task)


# ----------------------------------------------------------------------------- driver
def run_bench(
    cfg: BenchConfig,
    *,
    device: str | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    log: Log | None = None,
    figures: bool = True,
) -> BenchResult:
    """Run the benchmark; writes figures and ``bench.json`` into ``out_dir``."""
    log = log or (lambda message: None)
    pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
    dev = resolve_device(device or cfg.device, DistInfo(0, 1, 0))
    out = Path(out_dir or cfg.out_dir)
    reference = ensure_reference(cfg, pde, progress)
    models, notes = load_models(cfg, pde, dev, progress, log)
    check_held_out(cfg, models)
    _warm_up(models.values(), pde, dev)
    ctx = _Context(cfg, pde, dev, reference, models, log)
    entries = _entries(ctx, notes)
    _check_starts(ctx, entries)
    for note in notes:
        log(f"warning: {note}")
    result = BenchResult(rows=[], notes=notes)
    rows = result.rows
    samples: list[tuple[str, np.ndarray]] = []
    for entry in entries:
        if not entry.generate:
            continue
        ok, why = supports(pde, entry.method, "generate")
        if not ok:
            rows.append(_unsupported_row(entry, "generate", why))
            continue
        n = cfg.generate.n_per_method.get(entry.method, cfg.generate.n)
        row, fields = generate_row(ctx, entry, n)
        rows.append(row)
        samples.append((row_label(row), fields[0]))
        result.outputs["generate", row_label(row)] = fields
    task_figures: dict[str, dict[str, Any]] = {}
    tasks = cfg.tasks
    for task in tasks.run:
        truth = torch.from_numpy(reference[: tasks.n]).double().to(dev)
        mask = bench_masks(pde, task, len(truth), tasks.obs_fraction, tasks.seed, tasks.masks)
        mask = mask.to(dev)
        index = min(tasks.figure_instance, len(truth) - 1)
        result.instances[task] = (truth.cpu().numpy(), mask.cpu().numpy())
        shown: list[tuple[str, np.ndarray]] = []
        for entry in entries:
            if not entry.tasks:
                continue
            ok, why = supports(pde, entry.method, task)
            if not ok:
                rows.append(_unsupported_row(entry, task, why))
                continue
            n = entry.n or tasks.n_per_method.get(entry.method, len(truth))
            row, fields = task_row(ctx, entry, task, truth[:n], mask[:n])
            rows.append(row)
            result.outputs[task, row_label(row)] = fields
            if index < n:
                shown.append((row_label(row), fields[index]))
        task_figures[task] = {
            "truth": truth[index].cpu().numpy(),
            "mask": mask[index].cpu().numpy(),
            "estimates": shown,
            "index": index,
        }
    out.mkdir(parents=True, exist_ok=True)
    if figures:
        result.figures += _write_figures(ctx, out, samples, task_figures, rows)
    payload = result.payload(cfg, out)
    (out / "bench.json").write_text(json.dumps(payload, indent=1, default=json_default) + "\n")
    return result


def _unsupported_row(entry: Entry, task: str, why: str | None) -> dict[str, Any]:
    row = empty_row(entry.method, task, entry.variant)
    row.update(supported=False, note=why)
    return row


def _write_figures(
    ctx: _Context,
    out: Path,
    samples: list[tuple[str, np.ndarray]],
    task_figures: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
) -> list[Path]:
    """The residual maps of the generated samples, one instance per task, and per task the
    time-vs-error plane of its rows."""
    pde, paths = ctx.pde, []
    if samples:
        paths.append(
            plot_residual_maps(pde, ctx.reference[0], samples, out / "generate-residuals.png")
        )
    for task, info in task_figures.items():
        if info["estimates"]:
            paths.append(
                plot_task_comparison(
                    pde,
                    task,
                    info["truth"],
                    info["mask"],
                    info["estimates"],
                    out / f"{task}-instance-{info['index']}.png",
                    obs_fraction=ctx.cfg.tasks.obs_fraction,
                )
            )
        measured = [r for r in rows if r["task"] == task and r["supported"]]
        if measured:
            paths.append(plot_time_vs_error(pde, task, measured, out / f"{task}-time-vs-error.png"))
    return paths


def _warm_up(models: Any, pde: PDE, device: torch.device) -> None:
    """One forward pass per model outside the clock (lazy initialisation, thread pools)."""
    x = torch.zeros((1, pde.num_channels, pde.resolution, pde.resolution), device=device)
    with torch.no_grad():
        for entry in models:
            if entry.name == "start":  # a start network takes observations and their mask
                entry.model(x, x)
            else:
                entry.model(x, torch.ones(1, device=device))
