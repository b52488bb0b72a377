"""Typed, nested, frozen run configurations and their validating YAML loader.

A config file is a YAML mapping with one section per dataclass below::

    kind: teacher          # what the run trains (see "Kinds")
    pde:  {name: darcy, resolution: 32, params: {}}
    data: {path: data/darcy-32.h5, n: 4000, seed: 0, n_holdout: 0}
    net:  {base_channels: 32, channel_mult: [1, 2, 2], num_res_blocks: 2, ...}
    diffusion: {sigma_data: 0.5, P_mean: -1.2, P_std: 1.2, sigma_min: 0.002, ...}
    loss: {residual_weight: 0.0}
    optim: {lr: 2.0e-3, warmup_steps: 200, batch_size: 32, ema_decay: 0.999, ...}
    train: {steps: 3000, log_every: 50, checkpoint_every: 500, seed: 0, desc: teacher}

Every key except ``pde.name`` has a default. Relative paths (``data.path``,
``train.runs_root``) are relative to the working directory. Any mistake -- an unknown key
(with a did-you-mean suggestion), a wrong type, an out-of-range value or inconsistent
settings -- raises :class:`PiddmError` with a one-line message naming the key path, e.g.
``config optim.lr: expected a positive number, got 'abc'``.

The loader is generic: it walks the dataclass fields and their type hints, so adding a
setting is adding one annotated field (with an optional range check in its metadata).

Kinds
-----
``kind`` names what a run trains; :data:`KINDS` lists the accepted values: ``teacher`` (an
EDM denoiser, docs/method.md, "EDM teacher", ``piddm train``), ``piddm`` and ``pid``
(one-step students, docs/method.md, "PIDDM student" and "PID student", ``piddm distill``),
``start`` (a student's amortised start network, docs/method.md, "Amortised start",
``piddm amortise``, which reads the ``start`` section, :class:`StartConfig`).
Students read the ``distill`` section
(:class:`DistillConfig`); teachers ignore it. A student's ``net`` and ``diffusion`` sections
are the teacher's (its checkpoint is authoritative).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from piddm.diffusion import schedules
from piddm.errors import PiddmError
from piddm.nets.unet import UNetConfig
from piddm.pdes import get_pde
from piddm.pdes.base import ResidualNorm

_Settings = TypeVar("_Settings")

#: Accepted values of :attr:`Config.kind`.
KINDS: tuple[str, ...] = ("teacher", "piddm", "pid", "start")


# ----------------------------------------------------------------------------- range checks
@dataclass(frozen=True)
class Check:
    """A range check on a numeric setting: ``lo <(=) value <(=) hi``."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def ok(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def describe(self, noun: str) -> str:
        if self.lo == 0 and self.lo_open and self.hi is None:
            return f"a positive {noun}"
        if self.lo == 0 and not self.lo_open and self.hi is None:
            return f"a non-negative {noun}"
        if self.hi is None:
            article = "an" if noun[0] in "aeiou" else "a"
            return f"{article} {noun} {'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"a {noun} in {left}{_fmt(self.lo)}, {_fmt(self.hi)}{right}"


def _fmt(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


POSITIVE = Check(lo=0, lo_open=True)
NON_NEGATIVE = Check(lo=0)
UNIT_OPEN = Check(lo=0, hi=1, hi_open=True)  # [0, 1)
PROBABILITY_OPEN = Check(lo=0, hi=1, lo_open=True, hi_open=True)  # (0, 1)


def setting(default: Any = dataclasses.MISSING, *, check: Check | None = None, factory: Any = None):
    """A dataclass field with an optional range :class:`Check` (stored in its metadata)."""
    metadata = {"check": check} if check is not None else {}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class PDEConfig:
    """Which PDE the fields obey: a registered name, the grid size and parameter overrides."""

    name: str
    resolution: int = setting(32, check=Check(lo=8))
    params: dict[str, float] = setting(factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """The training set. If ``path`` does not exist and ``n`` is set, the solver generates it.

    ``n_holdout``: the last ``n_holdout`` samples of the file are not trained on (kept for
    evaluation).
    """

    path: str | None = None
    n: int | None = setting(None, check=POSITIVE)
    seed: int = setting(0, check=NON_NEGATIVE)
    n_holdout: int = setting(0, check=NON_NEGATIVE)


#: Range checks of the ``net`` keys, whose names, types and defaults are the fields of
#: :class:`piddm.nets.UNetConfig` (defined there once).
NET_CHECKS: dict[str, Check] = {
    "in_channels": POSITIVE,
    "out_channels": POSITIVE,
    "base_channels": POSITIVE,
    "num_res_blocks": POSITIVE,
    "dropout": UNIT_OPEN,
    "num_groups": POSITIVE,
    "embedding_dim": POSITIVE,
    "refine_blocks": NON_NEGATIVE,
}


def _unet_fields() -> list[tuple[str, Any, Any]]:
    """``UNetConfig``'s fields as ``(name, type, field)`` of the ``net`` section, with the
    checks of :data:`NET_CHECKS`; ``in_channels`` becomes optional (the PDE's)."""
    hints = typing.get_type_hints(UNetConfig)
    fields = []
    for f in dataclasses.fields(UNetConfig):
        tp, default = (int | None, None) if f.name == "in_channels" else (hints[f.name], f.default)
        fields.append((f.name, tp, setting(default, check=NET_CHECKS.get(f.name))))
    return fields


@dataclass(frozen=True)
class NetConfig(
    dataclasses.make_dataclass(
        "UNetFields", _unet_fields(), frozen=True, namespace={"__module__": __name__}
    )
):
    """The U-Net: the fields of :class:`piddm.nets.UNetConfig`, with the defaults given
    there; ``in_channels`` and ``out_channels`` default to the PDE's channel count."""

    def unet(self, channels: int) -> UNetConfig:
        """The :class:`UNetConfig` of this section for a PDE with ``channels`` channels."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return UNetConfig(
            **{
                **values,
                "in_channels": self.in_channels or channels,
                "out_channels": self.out_channels or channels,
            }
        )


@dataclass(frozen=True)
class DiffusionConfig:
    """EDM preconditioning, training noise distribution and the Heun sampler
    (docs/method.md, "EDM teacher")."""

    sigma_data: float = setting(0.5, check=POSITIVE)
    P_mean: float = -1.2
    P_std: float = setting(1.2, check=POSITIVE)
    sigma_min: float = setting(schedules.SIGMA_MIN, check=POSITIVE)
    sigma_max: float = setting(schedules.SIGMA_MAX, check=POSITIVE)
    rho: float = setting(schedules.RHO, check=POSITIVE)
    steps: int = setting(schedules.STEPS, check=Check(lo=2))


@dataclass(frozen=True)
class LossConfig:
    """Extra loss terms. ``residual_weight > 0`` is the PIDM baseline: ``+ w Rn(D(x_t; s))``."""

    residual_weight: float = setting(0.0, check=NON_NEGATIVE)


@dataclass(frozen=True)
class OptimConfig:
    """Adam with linear warm-up to ``lr``, EMA of the weights, gradient-norm clipping.

    ``lr_schedule``: ``constant`` after the warm-up, or ``cosine``: after the warm-up the rate
    falls as ``lr_min + (lr - lr_min) (1 + cos(pi p)) / 2`` with ``p`` the fraction of the
    remaining ``train.steps`` done, ``lr_min = lr_min_ratio * lr`` (short runs end sharper).

    ``batch_size`` is global (split over DDP ranks); ``grad_clip: null`` disables clipping.
    ``ema_rampup`` (EDM's ``ema_rampup_ratio``, e.g. 0.05; null: off): the EMA half-life after
    ``t`` steps is ``min(H, ema_rampup * t)`` steps, where ``H`` is the half-life of
    ``ema_decay``, so that a short run's EMA does not average in its early weights.
    """

    lr: float = setting(2e-3, check=POSITIVE)
    warmup_steps: int = setting(200, check=NON_NEGATIVE)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    lr_min_ratio: float = setting(0.0, check=Check(lo=0, hi=1))
    batch_size: int = setting(32, check=POSITIVE)
    ema_decay: float = setting(0.999, check=UNIT_OPEN)
    ema_rampup: float | None = setting(None, check=POSITIVE)
    grad_clip: float | None = setting(1.0, check=POSITIVE)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = setting(1e-8, check=POSITIVE)


@dataclass(frozen=True)
class TrainConfig:
    """Length, logging and checkpoint cadence, seed and run-directory naming."""

    steps: int = setting(3000, check=POSITIVE)
    log_every: int = setting(50, check=POSITIVE)
    checkpoint_every: int = setting(500, check=POSITIVE)
    seed: int = setting(0, check=NON_NEGATIVE)
    desc: str = "teacher"
    runs_root: str = "runs"
    #: Samples drawn with the EMA model at the end (``samples/``, ``figures/``); 0 disables.
    num_samples: int = setting(8, check=NON_NEGATIVE)
    #: A checkpoint (file, run directory or pretrained name) whose weights initialise the
    #: run: a teacher (e.g. the PIDM baseline fine-tuned from a trained teacher; null: random
    #: weights) or a student of the same kind (a fine-tune; null: the teacher's weights).
    init_from: str | None = None


@dataclass(frozen=True)
class DistillConfig:
    """Student settings (docs/method.md, "PIDDM student", "PID student"); ignored by teachers.

    ``lambda_train``: weight of ``Rn(G(eps))`` (0: the pure-distillation ablation);
    ``pairs`` (P) teacher pairs from ``pair_steps`` (N_s) Heun steps, computed
    ``pair_batch_size`` at a time; every ``refresh_every`` (K) steps a ``refresh_fraction``
    of them is replaced (0: never); ``pid_grid`` (N): PID trains on the ``N - 1`` noise
    levels of ``karras_sigmas(N - 1)`` without its final 0 (docs/method.md, "PID student");
    ``pairs_cache``: where the pairs are cached (default: the run directory);
    ``residual_grad``: which output channels the gradient of ``lambda_train Rn`` reaches:
    ``all`` (docs/method.md, "PIDDM student") or ``solution``: the other channels (coefficient,
    source) enter ``Rn`` detached, so the physics term corrects the solution to fit them and
    cannot reshape them; they follow the teacher's pairs alone. The loss value is the same.
    ``residual_norm``: the physics term ``Rn``: ``plain``, the paper's normalised mean squared
    residual, or ``preconditioned``, the mean squared ``P^-1 R`` (``P`` the PDE's own
    discrete operator, so its minimum is the solver's solution; docs/concepts.md, "Physics
    measures"), in the normalised units of the solution channel.
    ``std_weight`` (PIDDM only): weight of the spread term, the squared difference between
    the student's and the teacher pairs' standard deviation over the batch at each node
    (0: off; needs a batch of at least 2).
    ``pair_targets`` (PIDDM only): what the student regresses onto: ``teacher``, the
    teacher's endpoints (the paper's), or ``solved``, the teacher's endpoints with their
    solution replaced by the solver's for their own coefficient (initial condition), so the
    distillation loss and the physics term agree (docs/concepts.md, "Solver targets").
    ``grow_blocks``: the student's U-Net gets this many refinement blocks at the end of each
    decoder level (``net.refine_blocks``), identity at initialisation, so the grown student
    starts as its teacher (or its ``train.init_from`` student) and has more capacity than it
    (0: the teacher's architecture; docs/method.md, "PIDDM student").
    """

    lambda_train: float = setting(1e-2, check=NON_NEGATIVE)
    pairs: int = setting(1024, check=POSITIVE)
    pair_steps: int = setting(18, check=POSITIVE)
    pair_batch_size: int = setting(128, check=POSITIVE)
    refresh_every: int = setting(500, check=NON_NEGATIVE)
    refresh_fraction: float = setting(0.1, check=Check(lo=0, hi=1, lo_open=True))
    pid_grid: int = setting(250, check=Check(lo=2))
    #: Directory of the teacher-pair cache (shared by students of one teacher, e.g. the
    #: ablation); null: ``pairs/`` in the run directory.
    pairs_cache: str | None = None
    residual_grad: Literal["all", "solution"] = "all"
    residual_norm: ResidualNorm = "plain"
    std_weight: float = setting(0.0, check=NON_NEGATIVE)
    pair_targets: Literal["teacher", "solved"] = "teacher"
    grow_blocks: int = setting(0, check=NON_NEGATIVE)


#: The tasks an amortised start network can be trained on (:mod:`piddm.tasks.masks`).
StartTask = Literal["forward", "inverse", "reconstruct"]


@dataclass(frozen=True)
class StartConfig:
    """Amortised-start settings (``kind: start``; docs/method.md, "Amortised start").

    Every training step draws one of ``tasks`` and an observed fraction log-uniformly in
    ``[obs_fraction_min, obs_fraction_max]`` (the same for the whole batch), masks each
    training field with the PDE's observation model and trains ``E`` so that the frozen
    student's ``G(E(y, M))`` matches the whole field: the loss is the mean squared error in
    normalised units plus ``latent_penalty * ((|eps0|^2 - d) / d)^2``, which keeps the start
    at the norm of typical latents (``d = C S S``).
    """

    tasks: tuple[StartTask, ...] = ("forward", "inverse", "reconstruct")
    obs_fraction_min: float = setting(0.01, check=Check(lo=0, hi=1, lo_open=True))
    obs_fraction_max: float = setting(0.1, check=Check(lo=0, hi=1, lo_open=True))
    latent_penalty: float = setting(0.1, check=NON_NEGATIVE)


@dataclass(frozen=True)
class Config:
    """A complete run configuration (see the module docstring)."""

    pde: PDEConfig
    kind: Literal["teacher", "piddm", "pid", "start"] = "teacher"
    data: DataConfig = setting(factory=DataConfig)
    net: NetConfig = setting(factory=NetConfig)
    diffusion: DiffusionConfig = setting(factory=DiffusionConfig)
    loss: LossConfig = setting(factory=LossConfig)
    optim: OptimConfig = setting(factory=OptimConfig)
    train: TrainConfig = setting(factory=TrainConfig)
    distill: DistillConfig = setting(factory=DistillConfig)
    start: StartConfig = setting(factory=StartConfig)

    def replace(self, overrides: Mapping[str, Any]) -> Config:
        """A validated copy with ``overrides`` (nested or dotted keys) applied."""
        return config_from_dict(_deep_merge(config_to_dict(self), _expand_dotted(overrides)))


# ----------------------------------------------------------------------------- public API
def read_yaml(path: Path, label: str) -> Any:
    """The parsed YAML document in ``path``; :class:`PiddmError` (``"{label} {path}: ..."``)
    if it cannot be read or parsed, with the line and column of a syntax error."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PiddmError(f"{label} {path}: {problem}{where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PiddmError(f"{label} {path}: cannot read ({exc})") from None
    except RecursionError:
        raise PiddmError(f"{label} {path}: nested too deeply to be a config") from None


def load_config(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> Config:
    """Read a YAML config, apply ``overrides`` (``{"train.steps": 10}`` or nested), validate."""
    p = Path(path)
    if not p.is_file():
        raise PiddmError(f"config file {p} does not exist")
    raw = read_yaml(p, "config")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PiddmError(f"config {p}: expected a mapping of sections, got {type(raw).__name__}")
    if overrides:
        raw = _deep_merge(raw, _expand_dotted(overrides))
    return config_from_dict(raw)


def parse_overrides(
    items: Iterable[str], option: str = "--set", example: str = "optim.lr=1e-3"
) -> dict[str, Any]:
    """Command-line ``KEY=VALUE`` items of ``option`` -> ``{KEY: VALUE}``, each value read as
    YAML (``1e-3`` stays a string there; the loader reads it as a number when it applies it)."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PiddmError(f"{option} expects KEY=VALUE (e.g. {example}), got {item!r}")
        try:
            overrides[key.strip()] = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError):
            raise PiddmError(f"{option} {key}: cannot parse value {value!r}") from None
    return overrides


def replace_settings(settings: _Settings, overrides: Mapping[str, Any], where: str) -> _Settings:
    """A copy of the dataclass ``settings`` with ``overrides`` (field name -> value), each
    converted to its field's type and checked as a config key is (``where`` names them in a
    message), e.g. the values of :func:`parse_overrides`."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return _build(type(settings), {**values, **overrides}, where)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config` from plain data (inverse of :func:`config_to_dict`)."""
    if not isinstance(data, Mapping):
        raise PiddmError(f"config: expected a mapping of sections, got {type(data).__name__}")
    cfg = _build(Config, data, "")
    validate_config(cfg)
    return cfg


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON/YAML-ready data (tuples become lists); ``config_from_dict`` inverts it exactly."""
    return _plain(cfg)


def validate_config(cfg: Config) -> None:
    """Cross-field checks (ranges and types are checked while building)."""
    if cfg.kind not in KINDS:
        raise PiddmError(f"config kind: expected one of {list(KINDS)}, got {cfg.kind!r}")
    try:
        pde = get_pde(cfg.pde.name, cfg.pde.resolution, **cfg.pde.params)
    except PiddmError as exc:
        text = str(exc)
        key = (
            "pde.name" if "unknown PDE" in text else "pde.params" if "parameter" in text else "pde"
        )
        raise PiddmError(f"config {key}: {exc}") from None
    for key in ("in_channels", "out_channels"):
        value = getattr(cfg.net, key)
        if value is not None and value != pde.num_channels:
            raise PiddmError(
                f"config net.{key}: {value} does not match PDE '{pde.name}' with "
                f"{pde.num_channels} channel(s) {list(pde.channels)} (omit it to use the PDE's)"
            )
    if not cfg.net.channel_mult or any(m <= 0 for m in cfg.net.channel_mult):
        raise PiddmError(
            f"config net.channel_mult: expected a non-empty list of positive integers, "
            f"got {list(cfg.net.channel_mult)}"
        )
    for mult in cfg.net.channel_mult:
        if (cfg.net.base_channels * mult) % cfg.net.num_groups:
            raise PiddmError(
                f"config net.num_groups: {cfg.net.num_groups} does not divide the channel count "
                f"{cfg.net.base_channels * mult} (base_channels {cfg.net.base_channels} x {mult})"
            )
    factor = 2 ** (len(cfg.net.channel_mult) - 1)
    if cfg.pde.resolution % factor:
        raise PiddmError(
            f"config net.channel_mult: {len(cfg.net.channel_mult)} levels halve the grid "
            f"{len(cfg.net.channel_mult) - 1} times, so pde.resolution must be a multiple of "
            f"{factor}, got {cfg.pde.resolution}"
        )
    if cfg.diffusion.sigma_min >= cfg.diffusion.sigma_max:
        raise PiddmError(
            f"config diffusion.sigma_min: {cfg.diffusion.sigma_min:g} must be below "
            f"diffusion.sigma_max {cfg.diffusion.sigma_max:g}"
        )
    for i, beta in enumerate(cfg.optim.betas):
        if not 0.0 <= beta < 1.0:
            raise PiddmError(f"config optim.betas[{i}]: expected a number in [0, 1), got {beta}")
    if cfg.data.n is not None and cfg.data.n_holdout >= cfg.data.n:
        raise PiddmError(
            f"config data.n_holdout: {cfg.data.n_holdout} leaves no training samples of data.n "
            f"= {cfg.data.n}"
        )
    if cfg.distill.std_weight > 0 and cfg.optim.batch_size < 2:
        raise PiddmError(
            f"config distill.std_weight: the spread term needs optim.batch_size >= 2, got "
            f"{cfg.optim.batch_size}"
        )
    if cfg.start.obs_fraction_min > cfg.start.obs_fraction_max:
        raise PiddmError(
            f"config start.obs_fraction_min: {cfg.start.obs_fraction_min:g} is above "
            f"start.obs_fraction_max {cfg.start.obs_fraction_max:g}"
        )
    if not cfg.start.tasks or len(set(cfg.start.tasks)) != len(cfg.start.tasks):
        raise PiddmError(
            f"config start.tasks: expected a non-empty list of distinct tasks, got "
            f"{list(cfg.start.tasks)}"
        )
    if not cfg.train.desc or any(c in cfg.train.desc for c in "/\\ \t\n"):
        raise PiddmError(
            f"config train.desc: expected a non-empty name without spaces or slashes, "
            f"got {cfg.train.desc!r}"
        )


# ----------------------------------------------------------------------------- internals
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(cls: type, data: Any, path: str) -> Any:
    """Instantiate dataclass ``cls`` from mapping ``data`` found at key path ``path``."""
    where = path or "config"
    if not isinstance(data, Mapping):
        raise PiddmError(f"config {where}: expected a mapping, got {_show(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    for key in data:
        if key not in fields:
            key_path = f"{path}.{key}" if path else str(key)
            close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise PiddmError(
                f"config {key_path}: unknown key{hint}; known keys: {', '.join(fields)}"
            )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise PiddmError(f"config {key_path}: required key missing")
            continue
        if f.metadata.get("raw"):
            values[name] = _raw_mapping(data[name], key_path)
        else:
            values[name] = _convert(data[name], hints[name], key_path, f.metadata.get("check"))
    return cls(**values)


def _raw_mapping(value: Any, path: str) -> dict[str, Any]:
    """A free-form mapping field (``metadata={"raw": True}``): validated by its consumer."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PiddmError(f"config {path}: expected a mapping, got {_show(value)}")
    return {str(k): v for k, v in value.items()}


def _convert(value: Any, tp: Any, path: str, check: Check | None) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None and len(inner) < len(args):
            return None
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return _build(inner[0], value, path)  # an optional section: keep its own message
        if len(inner) == 1:
            try:
                return _convert(value, inner[0], path, check)
            except PiddmError:
                raise PiddmError(
                    f"config {path}: expected {_describe(inner[0], check)} or null, "
                    f"got {_show(value)}"
                ) from None
        raise TypeError(f"unsupported config type {tp}")  # pragma: no cover (a programming error)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is Literal or tp is bool or tp is str:
        if not (value in args if origin is Literal else isinstance(value, tp)):
            raise PiddmError(f"config {path}: expected {_describe(tp, check)}, got {_show(value)}")
        return value
    if tp is int:
        number = _as_int(value)
        if number is not None and not -(2**63) <= number < 2**63:
            raise PiddmError(f"config {path}: {_show(value)} is too large (the limit is 2**63)")
        if number is None or (check is not None and not check.ok(number)):
            raise PiddmError(f"config {path}: expected {_describe(tp, check)}, got {_show(value)}")
        return number
    if tp is float:
        number = _as_float(value)
        if (
            number is None
            or not math.isfinite(number)
            or (check is not None and not check.ok(number))
        ):
            raise PiddmError(f"config {path}: expected {_describe(tp, check)}, got {_show(value)}")
        return number
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise PiddmError(f"config {path}: expected {_describe(tp, None)}, got {_show(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            items = [args[0]] * len(value)
        else:
            items = list(args)
            if len(items) != len(value):
                raise PiddmError(
                    f"config {path}: expected {_describe(tp, None)}, got {_show(value)}"
                )
        return tuple(
            _convert(v, t, f"{path}[{i}]", None)
            for i, (v, t) in enumerate(zip(value, items, strict=True))
        )
    if origin is dict:
        if not isinstance(value, Mapping):
            raise PiddmError(f"config {path}: expected a mapping, got {_show(value)}")
        key_type, value_type = args
        return {
            _convert(k, key_type, f"{path}", None): _convert(v, value_type, f"{path}.{k}", None)
            for k, v in value.items()
        }
    raise TypeError(f"unsupported config type {tp}")  # pragma: no cover (a programming error)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        # YAML 1.1 reads "1e-3" (no dot) as a string; accept numeric strings like that.
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _describe(tp: Any, check: Check | None) -> str:
    if typing.get_origin(tp) is Literal:
        return f"one of {list(typing.get_args(tp))}"
    if tp is int:
        return check.describe("integer") if check else "an integer"
    if tp is float:
        return check.describe("number") if check else "a finite number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        noun = "integers" if args[0] is int else "numbers"
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {noun}"
        return f"a list of {len(args)} {noun}"
    return str(tp)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": {"d": 2}}`` -> ``{"a": {"b": 1}, "c": {"d": 2}}``."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        leaf = parts[-1]
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf] = _deep_merge(node[leaf], _expand_dotted(value))
        else:
            node[leaf] = _expand_dotted(value) if isinstance(value, Mapping) else value
    return out


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
