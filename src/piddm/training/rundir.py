"""Run directories: naming, the refusal to clobber, and the run's log files.

Layout of ``runs/NNNNN-<pde>-<res>-<desc>/`` (the number is the next free one under
``train.runs_root``)::

    config.json        the resolved config (rewritten at every start)
    log.txt            human-readable log (appended on resume)
    stats.jsonl        one JSON object per log step: step, loss, lr, samples_per_s, seconds, ...
    checkpoints/       step-NNNNNNNN.safetensors (EMA weights + metadata), state-NNNNNNNN.pt
                       (latest training state only), latest.json, final.safetensors
    samples/           final.h5: samples of the final EMA model (physical units)
    figures/           samples.png
    tensorboard/       only if TensorBoard is installed
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from piddm.checkpoint import CHECKPOINT_DIR, has_checkpoint, read_latest
from piddm.config import Config, config_from_dict, config_to_dict
from piddm.errors import PiddmError

SUBDIRS = (CHECKPOINT_DIR, "samples", "figures")
RUN_FILES = ("config.json", "log.txt", "stats.jsonl")
_NUMBERED = re.compile(r"^(\d+)-")

#: Settings that may change between a run and its resumption without changing its result.
RESUMABLE_CHANGES = frozenset(
    {
        "data.path",
        "train.steps",
        "train.log_every",
        "train.checkpoint_every",
        "train.num_samples",
        "train.runs_root",
    }
)


def run_suffix(cfg: Config) -> str:
    return f"{cfg.pde.name}-{cfg.pde.resolution}-{cfg.train.desc}"


def next_run_dir(cfg: Config) -> Path:
    """``runs_root/NNNNN-<pde>-<res>-<desc>`` with the next free number."""
    root = Path(cfg.train.runs_root)
    numbers = [-1]
    if root.is_dir():
        numbers += [int(m.group(1)) for p in root.iterdir() if (m := _NUMBERED.match(p.name))]
    return root / f"{max(numbers) + 1:05d}-{run_suffix(cfg)}"


def latest_run_dir(cfg: Config) -> Path | None:
    """The highest-numbered run of this pde/resolution/desc under ``runs_root``, if any."""
    root = Path(cfg.train.runs_root)
    if not root.is_dir():
        return None
    suffix = "-" + run_suffix(cfg)
    runs = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _NUMBERED.match(p.name)) and p.name.endswith(suffix) and p.is_dir()
    ]
    return max(runs)[1] if runs else None


def prepare_run_dir(
    cfg: Config, run_dir: str | Path | None, resume: bool, overwrite: bool
) -> tuple[Path, dict[str, Any] | None]:
    """Choose and create the run directory; returns ``(run_dir, latest record or None)``.

    Refuses (``PiddmError``) a directory that already holds checkpoints unless ``resume``
    (continue from ``checkpoints/latest.json``) or ``overwrite`` (delete the run's files).
    ``resume`` without ``run_dir`` picks the newest matching run under ``runs_root``; with
    nothing to resume, a run starts from scratch.
    """
    if resume and overwrite:
        raise PiddmError("--resume and --overwrite exclude each other")
    if run_dir is None:
        # --resume without --run-dir: the newest matching run, else a fresh one (so a job
        # script can always pass --resume).
        found = latest_run_dir(cfg) if resume else None
        path = found if found is not None else next_run_dir(cfg)
    else:
        path = Path(run_dir)
        if path.exists() and not path.is_dir():
            raise PiddmError(f"run directory {path} exists and is not a directory")
    record = None
    if path.is_dir() and has_checkpoint(path):
        if overwrite:
            clean_run_dir(path)
        elif resume:
            record = read_latest(path / CHECKPOINT_DIR)
            if record is None:
                raise PiddmError(
                    f"run directory {path} holds checkpoint files but no "
                    f"{CHECKPOINT_DIR}/latest.json to resume from (pass --overwrite to start over)"
                )
            check_resumable(path, cfg)
        else:
            raise PiddmError(
                f"run directory {path} already holds checkpoints; pass --resume to continue "
                f"it or --overwrite to start over"
            )
    for sub in SUBDIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)
    if record is None:  # a fresh start: old logs (if any) belong to nothing
        for name in ("log.txt", "stats.jsonl"):
            (path / name).unlink(missing_ok=True)
    write_config(path, cfg)
    return path, record


def clean_run_dir(path: Path) -> None:
    """Delete what a training run writes (and nothing else) from ``path``."""
    for sub in (*SUBDIRS, "tensorboard"):
        shutil.rmtree(path / sub, ignore_errors=True)
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)


def check_resumable(path: Path, cfg: Config) -> None:
    """Refuse to resume a run whose stored config differs in a setting that changes results."""
    stored_path = path / "config.json"
    if not stored_path.is_file():
        return
    try:
        stored = config_from_dict(json.loads(stored_path.read_text()))
    except (json.JSONDecodeError, PiddmError) as exc:
        raise PiddmError(f"cannot resume {path}: its config.json is unreadable ({exc})") from None
    old, new = _flatten(config_to_dict(stored)), _flatten(config_to_dict(cfg))
    for key in sorted(set(old) | set(new)):
        if key not in RESUMABLE_CHANGES and old.get(key) != new.get(key):
            raise PiddmError(
                f"cannot resume {path}: config {key} was {old.get(key)!r} and is now "
                f"{new.get(key)!r} (only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
            )


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "params":
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def write_config(path: Path, cfg: Config) -> None:
    (path / "config.json").write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")


class RunLog:
    """Appends to ``log.txt`` and ``stats.jsonl`` (only on the main rank: ``enabled``)."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def log(self, message: str) -> None:
        if not self.enabled:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path / "log.txt", "a") as handle:
            handle.write(f"[{stamp}] {message}\n")

    def stats(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path / "stats.jsonl", "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def last_loss(self) -> float | None:
        """The ``loss`` of the last complete ``stats.jsonl`` record (``None`` if there is none)."""
        records = read_stats(self.path)
        losses = [r["loss"] for r in records if isinstance(r.get("loss"), int | float)]
        return float(losses[-1]) if losses else None

    def truncate_stats(self, step: int) -> None:
        """Drop records past ``step`` (logged after the checkpoint a resume starts from)."""
        stats = self.path / "stats.jsonl"
        if not self.enabled or not stats.is_file():
            return
        kept = [r for r in read_stats(self.path) if r["step"] <= step]
        stats.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


def read_stats(run_dir: Path) -> list[dict[str, Any]]:
    """The complete records of ``run_dir/stats.jsonl`` in order (``[]`` without the file);
    a line cut by a kill, or one without an integer ``step``, is skipped."""
    stats = Path(run_dir) / "stats.jsonl"
    if not stats.is_file():
        return []
    records = []
    for line in stats.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
    return records
