"""The bench's models: resolve the ``models`` section, or train tiny ones (``build``).

Which model each method runs on (:data:`METHOD_MODEL`): the baselines DiffusionPDE, CoCoGen,
ECI and D-Flow all use the *same* teacher; ``pidm`` is a teacher trained with the residual
loss; ``piddm-1`` / ``piddm-ref`` the PIDDM student, ``pid`` the PID student, and the
``lambda0`` variant of ``piddm-1`` the pure-distillation student, its task rows with
``start: true`` the student's amortised start network (``start``). The classical rows (``map``,
``bayes-floor``) need no model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piddm.bench.config import MODEL_NAMES, BenchConfig, bench_config_to_dict, config_variants
from piddm.checkpoint import CHECKPOINT_DIR, FINAL_NAME, resolve_checkpoint
from piddm.config import config_to_dict, load_config
from piddm.distill.config import student_config
from piddm.distill.run import distill
from piddm.errors import PiddmError
from piddm.models import check_model_matches, load_any
from piddm.pdes import PDE
from piddm.training import train

#: The model each method samples with (the classical methods have none).
METHOD_MODEL: dict[str, str] = {
    "teacher": "teacher",
    "pidm": "pidm",
    "diffusionpde": "teacher",
    "cocogen": "teacher",
    "eci": "teacher",
    "dflow": "teacher",
    "pid": "pid",
    "piddm-1": "piddm",
    "piddm-ref": "piddm",
}
#: Checkpoint kinds each model slot accepts (a PIDM teacher is a ``teacher`` checkpoint).
EXPECTED_KINDS: dict[str, tuple[str, ...]] = {
    "teacher": ("teacher",),
    "pidm": ("teacher", "pidm"),
    "piddm": ("piddm",),
    "piddm_lambda0": ("piddm",),
    "pid": ("pid",),
    "start": ("start",),
}
BUILD_FILE = "build.json"

Log = Callable[[str], None]


@dataclass
class BenchModel:
    """A loaded model: ``D(x, sigma)`` or a student, its metadata and checkpoint path."""

    name: str
    path: Path
    model: nn.Module
    metadata: dict[str, Any]


def needed_models(cfg: BenchConfig) -> list[str]:
    """The model slots the configured methods use, in :data:`MODEL_NAMES` order."""
    names = {METHOD_MODEL[m] for m in cfg.methods if m in METHOD_MODEL}
    if "piddm-1" in cfg.methods:
        names.add("piddm_lambda0")
        if uses_start(cfg):
            names.add("start")
    return [n for n in MODEL_NAMES if n in names]


def uses_start(cfg: BenchConfig) -> bool:
    """Whether a PIDDM task row starts from the amortised start (``start: true`` in the
    ``tasks`` section, one task's overrides or a ``piddm-1`` variant)."""
    rows = [cfg.tasks.latent_settings(task) for task in cfg.tasks.run]
    rows += [v.settings for v in config_variants(cfg) if v.method == "piddm-1"]
    return any(row.get("start") for row in rows)


def build_models(
    cfg: BenchConfig, names: list[str], device: str, progress: bool, log: Log
) -> dict[str, Path]:
    """Train the models in ``names`` that the ``models`` section leaves open into the cache.

    A model whose run directory already holds a final checkpoint built with the same settings
    (``cache_dir/build.json``) is reused; changed settings retrain everything.
    """
    build = cfg.build
    assert build is not None
    cache = Path(build.cache_dir)
    todo = [n for n in names if cfg.model_path(n) is None]
    if not todo:
        return {}
    teacher_cfg = load_config(build.teacher_config, build.teacher_set)
    if teacher_cfg.kind != "teacher":
        raise PiddmError(
            f"config build.teacher_config: {build.teacher_config} has kind {teacher_cfg.kind!r}, "
            "expected teacher"
        )
    if (teacher_cfg.pde.name, teacher_cfg.pde.resolution) != (cfg.pde.name, cfg.pde.resolution):
        raise PiddmError(
            f"config build.teacher_config: {build.teacher_config} is for {teacher_cfg.pde.name} "
            f"{teacher_cfg.pde.resolution}^2, the bench for {cfg.pde.name} {cfg.pde.resolution}^2"
        )
    signature = {
        "build": bench_config_to_dict(build),
        "teacher": config_to_dict(teacher_cfg),
        "models": {n: cfg.model_path(n) for n in MODEL_NAMES},
    }
    stamp = cache / BUILD_FILE
    fresh = stamp.is_file() and json.loads(stamp.read_text()) == signature
    if stamp.is_file() and not fresh:
        log(f"bench: build settings changed, retraining the models in {cache}")
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(signature, indent=1, sort_keys=True))
    out: dict[str, Path] = {}

    def ensure(name: str, fit: Callable[[Path, bool], Any], stale: bool = False) -> bool:
        """Train ``name`` unless its cached final checkpoint is current; True if trained."""
        run_dir = cache / name.replace("_", "-")
        out[name] = run_dir
        if fresh and not stale and (run_dir / CHECKPOINT_DIR / FINAL_NAME).is_file():
            return False
        log(f"bench: building model '{name}' in {run_dir}")
        fit(run_dir, not fresh or stale)  # overwrite, else resume a killed build
        return True

    def teacher_fit(run_cfg: Any) -> Callable[[Path, bool], Any]:
        return lambda run_dir, overwrite: train(
            run_cfg,
            run_dir=run_dir,
            resume=not overwrite,
            overwrite=overwrite,
            device=device,
            progress=progress,
        )

    students = {
        "piddm": ("piddm", build.lambda_train),
        "piddm_lambda0": ("piddm", 0.0),
        "pid": ("pid", build.pid_lambda_train),
    }
    teacher_src = cfg.model_path("teacher")
    teacher_trained = False
    if "teacher" in todo or (teacher_src is None and set(todo) & set(students)):
        teacher_trained = ensure("teacher", teacher_fit(teacher_cfg))
        teacher_src = str(out["teacher"])
    if "pidm" in todo:
        pidm_cfg = teacher_cfg.replace(
            {"loss.residual_weight": build.pidm_residual_weight, "train.desc": "pidm"}
        )
        ensure("pidm", teacher_fit(pidm_cfg))
    for name, (kind, lam) in students.items():
        if name not in todo:
            continue
        assert teacher_src is not None
        extra = {**build.student_set, "distill.lambda_train": lam, "train.desc": name}
        run_cfg = student_config(teacher_src, None, kind, extra)

        def student_fit(run_dir: Path, overwrite: bool, c: Any = run_cfg) -> Any:
            return distill(
                c,
                teacher_src,
                run_dir=run_dir,
                resume=not overwrite,
                overwrite=overwrite,
                device=device,
                progress=progress,
            )

        ensure(name, student_fit, stale=teacher_trained)
    return out


def load_models(
    cfg: BenchConfig,
    pde: PDE,
    device: torch.device,
    progress: bool,
    log: Log,
) -> tuple[dict[str, BenchModel], list[str]]:
    """Load (and with ``build``, first train) every model the methods need.

    Returns ``(models by slot, notes)``; a slot without a model is absent and noted. Raises
    :class:`PiddmError` for a model of the wrong kind, PDE or resolution.
    """
    names = needed_models(cfg)
    paths: dict[str, Path] = {n: Path(p) for n in names if (p := cfg.model_path(n)) is not None}
    if cfg.build is not None:
        paths.update(build_models(cfg, names, str(device.type), progress, log))
    models: dict[str, BenchModel] = {}
    notes: list[str] = []
    for name in names:
        path = paths.get(name)
        if path is None or not path.exists():
            where = "not configured" if path is None else f"{path} does not exist"
            notes.append(f"model '{name}' {where}: its rows are skipped")
            continue
        checkpoint = resolve_checkpoint(path)
        model, metadata = load_any(checkpoint, device)
        kind = metadata.get("kind")
        if kind not in EXPECTED_KINDS[name]:
            raise PiddmError(
                f"config models.{name}: {path} is a '{kind}' model, expected "
                f"{' or '.join(EXPECTED_KINDS[name])}"
            )
        try:
            check_model_matches(metadata, pde.name, pde.resolution)
        except PiddmError as exc:
            raise PiddmError(f"config models.{name}: {exc}") from None
        if name == "pidm":
            weight = metadata.get("config", {}).get("loss", {}).get("residual_weight", 0.0)
            if not weight:
                notes.append(f"model 'pidm' ({path}) was trained without a residual loss")
        if name == "piddm_lambda0":
            lam = metadata.get("distill", {}).get("lambda_train")
            if lam:
                notes.append(f"model 'piddm_lambda0' ({path}) has lambda_train {lam}, not 0")
        models[name] = BenchModel(name, checkpoint, model, metadata)
    return models, notes
