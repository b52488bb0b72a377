"""The typed, frozen config of ``piddm bench`` and its validating YAML loader.

A bench config is a YAML mapping::

    pde:       {name: darcy, resolution: 32, params: {}}
    reference: {path: data/darcy-32-test.h5, n: 1024, seed: 1}   # HELD-OUT solver data
    models:    {teacher: runs/darcy-32-teacher, pidm: ..., piddm: ..., piddm_lambda0: ...,
                pid: ..., start: ...}                             # each optional
    build:     {cache_dir: ..., teacher_config: configs/smoke.yaml, ...}  # optional (smoke)
    generate:  {n: 512, seed: 0, batch_size: 64, teacher_steps: 18, refine_steps: 10,
                n_per_method: {diffusionpde: 64}, consistency: true}
    tasks:     {run: [forward, inverse, reconstruct], n: 100, n_per_method: {diffusionpde: 20},
                ablation: true, obs_fraction: 0.03, masks: random, seed: 0, batch_size: 16,
                steps: 50, forward: {candidates: 0}}   # unset latent settings: the solver's
    baselines: {diffusionpde: {num_steps: 200}, dflow: {iterations: 10}}
    classical: {map: {steps: 200}, bayes-floor: {samples: 100}}
    variants:  {diffusionpde: {"2000 steps": {num_steps: 2000, n: 5}},
                piddm-1: {"2 x 10 steps": {steps: 10, ensemble: 2, candidates: 16}}}
    methods:   [teacher, pidm, diffusionpde, cocogen, eci, dflow, pid, piddm-1, piddm-ref,
                map, bayes-floor]
    device:    auto
    out_dir:   runs/bench-darcy-32

Only ``pde.name`` and ``reference.path`` are required; the latent-optimisation settings of
``tasks`` default to :class:`piddm.tasks.LatentOptConfig`'s (``piddm solve``'s). If
``reference.path`` does not exist and ``reference.n`` is set, the solver generates it with
``reference.seed`` (which must differ from the training data's seed). ``baselines`` maps a
method to overrides of ``BASELINES[method].defaults(pde, **overrides)``; ``classical`` the
classical rows to overrides of their settings (``map``: :class:`piddm.tasks.classical.MapConfig`
fields, ``bayes-floor``: ``samples`` of :func:`~piddm.tasks.classical.floor_estimate`);
``variants`` a method to labelled rows with other settings (:data:`VARIANT_METHODS`: a
baseline's mapping overrides ``baselines.<method>``, a student's the task's latent settings,
``map``'s ``classical.map``; ``n`` the variant's instances, else the method's);
``build.teacher_set`` / ``build.student_set`` are dotted overrides of the run configs of
built models. Any mistake raises :class:`PiddmError` with a one-line message naming the key
path.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from piddm.baselines import BASELINES
from piddm.config import (
    NON_NEGATIVE,
    POSITIVE,
    Check,
    DiffusionConfig,
    DistillConfig,
    PDEConfig,
    _build,
    _show,
    config_to_dict,
    read_yaml,
    replace_settings,
    setting,
)
from piddm.errors import PiddmError
from piddm.pdes import get_pde
from piddm.pdes.base import ResidualNorm
from piddm.tasks.classical import MapConfig
from piddm.tasks.latent import REFINE_CONFIG, LatentOptConfig
from piddm.tasks.masks import TASKS

#: Every method of the benchmark, in table order (docs/method.md, "Benchmark").
METHODS: tuple[str, ...] = (
    "teacher",
    "pidm",
    "diffusionpde",
    "cocogen",
    "eci",
    "dflow",
    "pid",
    "piddm-1",
    "piddm-ref",
    "map",
    "bayes-floor",
)
#: Downstream tasks the bench can run besides generation (their order seeds the masks:
#: :func:`piddm.bench.masks.task_mask_seed`).
TASK_NAMES: tuple[str, ...] = TASKS
#: Methods without a network: PDE-constrained MAP and the Bayes floor (tasks only).
CLASSICAL_METHODS: tuple[str, ...] = ("map", "bayes-floor")
#: The one-step students, whose task rows run latent optimisation.
STUDENT_METHODS: tuple[str, ...] = ("pid", "piddm-1")
#: The models a bench reads (``models`` keys).
MODEL_NAMES: tuple[str, ...] = ("teacher", "pidm", "piddm", "piddm_lambda0", "pid", "start")


def raw_mapping() -> Any:
    """A field holding a free-form mapping (validated by its consumer, not by type)."""
    return field(default_factory=dict, metadata={"raw": True})


@dataclass(frozen=True)
class ReferenceConfig:
    """Held-out solver data: instances of the tasks and the reference of the metrics."""

    path: str
    n: int | None = setting(None, check=Check(lo=4))
    seed: int = setting(1, check=NON_NEGATIVE)


@dataclass(frozen=True)
class ModelsConfig:
    """Checkpoint files or run directories; a missing one skips its rows with a note."""

    teacher: str | None = None
    pidm: str | None = None
    piddm: str | None = None
    piddm_lambda0: str | None = None
    pid: str | None = None
    #: The PIDDM student's amortised start network (``piddm amortise``): task rows whose
    #: settings say ``start: true`` begin their latent optimisation from it.
    start: str | None = None


@dataclass(frozen=True)
class BuildConfig:
    """Train the models the ``models`` section does not name into ``cache_dir`` (smoke runs).

    teacher: ``teacher_config`` (a ``kind: teacher`` YAML) with ``teacher_set`` overrides;
    pidm: the same with ``loss.residual_weight = pidm_residual_weight``; students: derived
    from the teacher's config (``piddm distill`` defaults) with ``student_set`` overrides,
    ``lambda_train`` for piddm, 0 for piddm_lambda0, ``pid_lambda_train`` for pid.
    """

    cache_dir: str
    teacher_config: str
    teacher_set: dict[str, Any] = raw_mapping()
    pidm_residual_weight: float = setting(1e-3, check=POSITIVE)
    student_set: dict[str, Any] = raw_mapping()
    lambda_train: float = setting(DistillConfig.lambda_train, check=POSITIVE)
    pid_lambda_train: float = setting(0.0, check=NON_NEGATIVE)


@dataclass(frozen=True)
class GenerateConfig:
    """Unconditional generation: ``n`` samples per method from shared seeded latents.

    ``n_per_method`` lowers ``n`` for expensive methods (they use the first latents of the
    same sequence); ``consistency`` toggles the solver-consistency metric.
    """

    n: int = setting(512, check=Check(lo=2))
    seed: int = setting(0, check=NON_NEGATIVE)
    batch_size: int = setting(64, check=POSITIVE)
    teacher_steps: int = setting(DiffusionConfig.steps, check=POSITIVE)
    refine_steps: int = setting(REFINE_CONFIG.steps, check=POSITIVE)
    n_per_method: dict[str, int] = setting(factory=dict)
    consistency: bool = True


@dataclass(frozen=True)
class LatentOverrides:
    """Settings of one task that replace :class:`TasksConfig`'s (``None`` keeps its value).

    Example: ``tasks: {candidates: 256, forward: {candidates: 0}}`` screens the inverse
    problem's starting latents but not the forward one's.
    """

    ensemble: int | None = setting(None, check=POSITIVE)
    steps: int | None = setting(None, check=NON_NEGATIVE)
    lr: float | None = setting(None, check=POSITIVE)
    lambda_infer: float | None = setting(None, check=NON_NEGATIVE)
    optimizer: Literal["adam", "lbfgs", "gauss-newton"] | None = None
    candidates: int | None = setting(None, check=NON_NEGATIVE)
    solver_members: bool | None = None
    residual_norm: ResidualNorm | None = None
    start: bool | None = None
    start_spread: float | None = setting(None, check=NON_NEGATIVE)
    damping: float | None = setting(None, check=POSITIVE)


#: The latent-optimisation settings of the tasks (fields of both classes below).
LATENT_SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LatentOverrides))


@dataclass(frozen=True)
class TasksConfig:
    """Forward / inverse problems on the first ``n`` reference instances.

    Masks (``obs_fraction`` of the observed channel) are drawn once per task from ``seed`` and
    shared by every method; ``masks: diffusionpde`` observes DiffusionPDE's fixed point sets
    instead (500 of 128^2 nodes per observed channel, ignoring ``obs_fraction`` and ``seed``;
    :func:`piddm.tasks.task_masks`, docs/diffusionpde.md); ``n_per_method`` lowers ``n``
    for expensive methods (they solve the first instances of the same set); ``ablation``:
    also run the lambda0 student on the tasks; ``batch_size`` instances go through a baseline
    at once; ``ensemble``, ``steps``,
    ``lr``, ``lambda_infer``, ``optimizer``, ``candidates``, ``solver_members``,
    ``residual_norm``, ``start_spread``, ``damping``: the latent
    optimisation of the one-step students (:class:`piddm.tasks.LatentOptConfig`, whose
    defaults they keep unless set); ``start``: begin it from the ``models.start`` network
    (PIDDM only; docs/method.md, "Amortised start");
    ``forward`` / ``inverse`` / ``reconstruct``: :class:`LatentOverrides` of those settings
    for one task.
    """

    run: tuple[str, ...] = TASK_NAMES
    n: int = setting(100, check=POSITIVE)
    n_per_method: dict[str, int] = setting(factory=dict)
    ablation: bool = True
    obs_fraction: float = setting(0.03, check=Check(lo=0, hi=1, lo_open=True))
    masks: Literal["random", "diffusionpde"] = "random"
    seed: int = setting(0, check=NON_NEGATIVE)
    batch_size: int = setting(16, check=POSITIVE)
    ensemble: int = setting(LatentOptConfig.ensemble, check=POSITIVE)
    steps: int = setting(LatentOptConfig.steps, check=NON_NEGATIVE)
    lr: float = setting(LatentOptConfig.lr, check=POSITIVE)
    lambda_infer: float = setting(LatentOptConfig.lambda_infer, check=NON_NEGATIVE)
    optimizer: Literal["adam", "lbfgs", "gauss-newton"] = LatentOptConfig.optimizer
    candidates: int = setting(LatentOptConfig.candidates, check=NON_NEGATIVE)
    solver_members: bool = LatentOptConfig.solver_members
    residual_norm: ResidualNorm = LatentOptConfig.residual_norm
    start: bool = False
    start_spread: float = setting(LatentOptConfig.start_spread, check=NON_NEGATIVE)
    damping: float = setting(LatentOptConfig.damping, check=POSITIVE)
    figure_instance: int = setting(0, check=NON_NEGATIVE)
    forward: LatentOverrides | None = None
    inverse: LatentOverrides | None = None
    reconstruct: LatentOverrides | None = None

    def latent_settings(self, task: str) -> dict[str, Any]:
        """The ``LatentOptConfig`` keywords of ``task``: these settings, then its overrides."""
        base = {name: getattr(self, name) for name in LATENT_SETTINGS}
        overrides = getattr(self, task, None) if task in TASK_NAMES else None
        if overrides is not None:
            base.update({k: v for k, v in dataclasses.asdict(overrides).items() if v is not None})
        return base


@dataclass(frozen=True)
class FloorSettings:
    """Settings of the ``bayes-floor`` rows (``samples`` ``None``: the default of
    :func:`~piddm.tasks.classical.floor_estimate`)."""

    samples: int | None = setting(None, check=POSITIVE)


#: The settings of each classical method: ``classical.<method>`` keys are its fields.
CLASSICAL_SETTINGS: dict[str, type] = {"map": MapConfig, "bayes-floor": FloorSettings}
#: Methods that take ``variants``: the baselines with observation terms, the students, MAP.
VARIANT_METHODS: tuple[str, ...] = (
    *(m for m, entry in BASELINES.items() if any(entry.supports.get(t) for t in TASK_NAMES)),
    *STUDENT_METHODS,
    "map",
)


@dataclass(frozen=True)
class Variant:
    """Labelled task rows of ``method`` with other ``settings`` (config ``variants``) on its
    first ``n`` instances (``None``: the method's own ``n``)."""

    method: str
    label: str
    settings: dict[str, Any]
    n: int | None


@dataclass(frozen=True)
class BenchConfig:
    """A complete benchmark configuration (see the module docstring)."""

    pde: PDEConfig
    reference: ReferenceConfig
    models: ModelsConfig = setting(factory=ModelsConfig)
    build: BuildConfig | None = None
    generate: GenerateConfig = setting(factory=GenerateConfig)
    tasks: TasksConfig = setting(factory=TasksConfig)
    baselines: dict[str, Any] = raw_mapping()
    classical: dict[str, Any] = raw_mapping()
    variants: dict[str, Any] = raw_mapping()
    methods: tuple[str, ...] = METHODS
    device: Literal["auto", "cpu", "cuda"] = "auto"
    out_dir: str = "runs/bench"

    def model_path(self, name: str) -> str | None:
        return getattr(self.models, name)


# ----------------------------------------------------------------------------- loading
def load_bench_config(
    path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None
) -> BenchConfig:
    """Read and validate a bench YAML config; ``overrides`` replace top-level sections."""
    p = Path(path)
    if not p.is_file():
        raise PiddmError(f"bench config {p} does not exist")
    raw = read_yaml(p, "bench config")
    if not isinstance(raw, dict):
        raise PiddmError(f"bench config {p}: expected a mapping of sections, got {_show(raw)}")
    return bench_config_from_dict({**raw, **(overrides or {})})


def bench_config_from_dict(data: Mapping[str, Any]) -> BenchConfig:
    """Build and validate a :class:`BenchConfig` from plain data."""
    return validate_bench_config(_build(BenchConfig, data, ""))


#: Plain JSON-ready data of a bench config (the package's converter).
bench_config_to_dict = config_to_dict


def validate_bench_config(cfg: BenchConfig) -> BenchConfig:
    """Cross-field checks: PDE, method and task names, per-method sizes, the settings of the
    baselines, classical methods and variants. Returns ``cfg``."""
    try:
        get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
    except PiddmError as exc:
        raise PiddmError(f"config pde: {exc}") from None
    _check_names("methods", cfg.methods, METHODS)
    if not cfg.methods:
        raise PiddmError("config methods: expected at least one method")
    _check_names("tasks.run", cfg.tasks.run, TASK_NAMES)
    if cfg.tasks.masks == "diffusionpde" and cfg.pde.name not in ("darcy", "poisson", "helmholtz"):
        raise PiddmError(
            f"config tasks.masks: DiffusionPDE's point masks are defined for darcy, poisson and "
            f"helmholtz, not {cfg.pde.name}"
        )
    _check_names("generate.n_per_method", tuple(cfg.generate.n_per_method), METHODS)
    for method, n in cfg.generate.n_per_method.items():
        if n < 2:
            raise PiddmError(f"config generate.n_per_method.{method}: expected >= 2, got {n}")
    _check_names("tasks.n_per_method", tuple(cfg.tasks.n_per_method), METHODS)
    for method, n in cfg.tasks.n_per_method.items():
        _check_task_n(f"tasks.n_per_method.{method}", n, cfg.tasks.n)
    if cfg.reference.n is not None and cfg.reference.n < cfg.tasks.n and cfg.tasks.run:
        raise PiddmError(
            f"config tasks.n: {cfg.tasks.n} instances but reference.n is {cfg.reference.n}"
        )
    _check_names("baselines", tuple(cfg.baselines), tuple(BASELINES))
    for method, overrides in cfg.baselines.items():
        _check_settings(f"baselines.{method}", overrides, setting_names(method))
    _check_names("classical", tuple(cfg.classical), CLASSICAL_METHODS)
    for method, overrides in cfg.classical.items():
        _check_settings(f"classical.{method}", overrides, setting_names(method))
        classical_settings(cfg, method)
    _check_variants(cfg)
    if cfg.build is not None:
        for name in ("teacher_set", "student_set"):
            for key in getattr(cfg.build, name):
                if not isinstance(key, str) or not key:
                    raise PiddmError(f"config build.{name}: keys must be dotted setting names")
    return cfg


def setting_names(method: str) -> list[str]:
    """The settings a method's ``baselines`` / ``classical`` / ``variants`` mapping may set."""
    if method in BASELINES:
        return [f.name for f in dataclasses.fields(BASELINES[method].settings_type)]
    if method in STUDENT_METHODS:
        return list(LATENT_SETTINGS)
    return [f.name for f in dataclasses.fields(CLASSICAL_SETTINGS[method])]


def config_variants(cfg: BenchConfig) -> list[Variant]:
    """The ``variants`` of the config, in its order, with their settings read as their
    section's are (validated by :func:`validate_bench_config`)."""
    out = []
    for method, labels in cfg.variants.items():
        for label, spec in labels.items():
            settings = {k: v for k, v in spec.items() if k != "n"}
            out.append(Variant(method, str(label), _typed(method, settings), spec.get("n")))
    return out


def baseline_overrides(
    cfg: BenchConfig, method: str, variant: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``defaults(pde, **overrides)`` keywords of a baseline: ``baselines.<method>``, then a
    variant's settings (YAML lists become tuples)."""
    return {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in {**cfg.baselines.get(method, {}), **(variant or {})}.items()
    }


def classical_settings(
    cfg: BenchConfig,
    method: str,
    variant: Mapping[str, Any] | None = None,
    where: str | None = None,
) -> Any:
    """The settings of a classical method (:data:`CLASSICAL_SETTINGS`): its type's defaults,
    ``classical.<method>``, then a variant's settings (named ``where`` in an error)."""
    overrides = {**cfg.classical.get(method, {}), **(variant or {})}
    return _read(CLASSICAL_SETTINGS[method](), overrides, where or f"classical.{method}")


def _read(defaults: Any, overrides: Mapping[str, Any], where: str) -> Any:
    """:func:`piddm.config.replace_settings`, its type's own checks also naming ``where``."""
    try:
        return replace_settings(defaults, overrides, where)
    except PiddmError as exc:
        if str(exc).startswith("config "):
            raise
        raise PiddmError(f"config {where}: {exc}") from None


def _typed(method: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A student's variant settings converted as the ``tasks`` section converts them."""
    if method not in STUDENT_METHODS:
        return settings
    typed = _read(LatentOverrides(), settings, f"variants.{method}")
    return {name: getattr(typed, name) for name in settings}


def _check_variants(cfg: BenchConfig) -> None:
    """``variants``: methods of :data:`VARIANT_METHODS`, each a mapping of labels to mappings of
    its settings (checked as its own section's are) and an optional ``n``."""
    _check_names("variants", tuple(cfg.variants), VARIANT_METHODS)
    for method, labels in cfg.variants.items():
        if not isinstance(labels, Mapping) or not labels:
            raise PiddmError(
                f"config variants.{method}: expected a mapping of row labels to settings, "
                f"got {_show(labels)}"
            )
        for label, spec in labels.items():
            where = f"variants.{method}.{label}"
            if not isinstance(label, str | int | float) or not str(label).strip():
                raise PiddmError(f"config variants.{method}: labels must be non-empty strings")
            if method == "piddm-1" and str(label) == "lambda0":
                raise PiddmError(f"config {where}: 'lambda0' labels the ablation's rows")
            _check_settings(where, spec, [*setting_names(method), "n"])
            if "n" in spec:
                _check_task_n(f"{where}.n", spec["n"], cfg.tasks.n)
            settings = {k: v for k, v in spec.items() if k != "n"}
            if method in STUDENT_METHODS:
                _read(LatentOverrides(), settings, where)
            elif method in CLASSICAL_SETTINGS:
                classical_settings(cfg, method, settings, where)


def _check_task_n(key: str, n: Any, limit: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise PiddmError(f"config {key}: expected 1 <= n <= tasks.n ({limit}), got {_show(n)}")


def _check_settings(key: str, overrides: Any, known: list[str]) -> None:
    """``overrides`` is a mapping whose keys are all in ``known`` (one-line error naming the
    key path, with the closest known name)."""
    if not isinstance(overrides, Mapping):
        raise PiddmError(f"config {key}: expected a mapping, got {_show(overrides)}")
    for name in overrides:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PiddmError(
                f"config {key}.{name}: unknown setting{hint}; known: {', '.join(known)}"
            )


def _check_names(key: str, names: tuple[str, ...], known: tuple[str, ...]) -> None:
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PiddmError(
                f"config {key}: unknown name {name!r}{hint}; expected one of: {', '.join(known)}"
            )
    if len(set(names)) != len(names):
        raise PiddmError(f"config {key}: names must not repeat, got {list(names)}")
