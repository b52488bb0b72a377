"""Student configs: a YAML file, or the teacher's own config with student defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from piddm.checkpoint import read_metadata
from piddm.config import Config, config_from_dict, load_config
from piddm.errors import PiddmError
from piddm.models import resolve_model

#: Student-run defaults over a teacher's config (docs/method.md, "Student run defaults":
#: a student initialised from the teacher needs a smaller learning rate and few steps).
STUDENT_DEFAULTS: dict[str, Any] = {
    "optim.lr": 2e-4,
    "optim.warmup_steps": 50,
    "optim.ema_decay": 0.99,
    "train.steps": 1500,
    "train.checkpoint_every": 250,
    "loss.residual_weight": 0.0,
}


def student_config(
    teacher: str,
    config_path: Path | None,
    method: str | None,
    overrides: dict[str, Any],
) -> Config:
    """The validated config of a student run (``kind`` = ``method``)."""
    extra = dict(overrides)
    if method is not None:
        extra["kind"] = method
    if config_path is not None:
        cfg = load_config(config_path, extra)
        if cfg.kind not in ("piddm", "pid"):
            raise PiddmError(f"config {config_path}: kind must be piddm or pid, got {cfg.kind!r}")
        return cfg
    base = read_metadata(resolve_model(teacher)).get("config")
    if not isinstance(base, dict):
        raise PiddmError(f"teacher {teacher} carries no config; pass --config")
    base = {**base, "kind": extra.pop("kind", "piddm")}
    base.pop("distill", None)
    flat = {**STUDENT_DEFAULTS, "train.desc": base["kind"], **extra}
    return Config.replace(config_from_dict(base), flat)
