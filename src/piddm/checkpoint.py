"""Checkpoint I/O: model weights in ``.safetensors``, training state in a separate file.

**Weights** (``checkpoints/step-NNNNNNNN.safetensors``, ``checkpoints/final.safetensors``):
the EMA weights of the denoiser as a flat ``state_dict`` plus three header entries,
``format = "piddm-checkpoint"``, ``sha256`` (:func:`content_digest` of the stored tensors,
checked on every read) and ``metadata``, a JSON object holding everything needed to rebuild
the model without the config file or the code that trained it::

    {"format_version": 1, "kind": "teacher", "step": 3000, "ema": true,
     "net": {UNetConfig fields}, "precond": {"type": "edm", "sigma_data": 0.5},
     "pde": {pde, resolution, h, params, channels, norm_shift, norm_scale},
     "diffusion": {sigma_min, sigma_max, rho, steps}, "config": {...}, "piddm_version": ...}

**Training state** (``checkpoints/state-NNNNNNNN.pt``, a ``torch.save`` dict of tensors and
plain values, loadable with ``weights_only=True``): raw weights, EMA weights, optimizer,
step, cumulative seconds, RNG states, and ``sha256``, the :func:`content_digest` of all the
rest. Both are written atomically (temp file + fsync + rename); ``checkpoints/latest.json``
names the newest complete pair and is written last. Files without ``sha256`` (written before
it existed) still load, unchecked.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from piddm.atomic import atomic_output
from piddm.data.io import FORMAT_NAME, HDF5_SIGNATURE
from piddm.diffusion.one_step import build_pid_student
from piddm.diffusion.preconditioning import EDMPrecond
from piddm.errors import PiddmError
from piddm.nets import UNetConfig, build_unet
from piddm.nets.start import build_start_net

CHECKPOINT_FORMAT = "piddm-checkpoint"
CHECKPOINT_VERSION = 1
STATE_FORMAT = "piddm-training-state"
FINAL_NAME = "final.safetensors"
LATEST_NAME = "latest.json"
CHECKPOINT_DIR = "checkpoints"
HASH_KEY = "sha256"


def _build_edm(net: nn.Module, spec: dict[str, Any]) -> nn.Module:
    return EDMPrecond(net, sigma_data=float(spec["sigma_data"]))


#: Builders of the outer denoiser around the inner U-Net, by ``metadata["precond"]["type"]``:
#: the teacher's and the PIDDM student's ``edm``, the PID student's ``pid``
#: (:mod:`piddm.diffusion.one_step`), the amortised start network's ``start``
#: (:mod:`piddm.nets.start`); another parametrisation adds itself with
#: :func:`register_precond`.
PRECONDITIONERS: dict[str, Callable[[nn.Module, dict[str, Any]], nn.Module]] = {
    "edm": _build_edm,
    "pid": build_pid_student,
    "start": build_start_net,
}


def register_precond(name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``builder(inner_net, precond_metadata) -> denoiser`` as ``name``."""

    def wrap(builder: Callable) -> Callable:
        PRECONDITIONERS[name] = builder
        return builder

    return wrap


def step_weights_name(step: int) -> str:
    return f"step-{step:08d}.safetensors"


def step_state_name(step: int) -> str:
    return f"state-{step:08d}.pt"


# ------------------------------------------------------------------------------ integrity
def content_digest(value: Any) -> str:
    """SHA-256 (hex) of a nest of dicts, lists and tensors, independent of the file format.

    Dicts contribute their keys in sorted order, tensors their dtype, shape and raw bytes in
    row-major order, other values their ``repr`` (the plain values of a checkpoint).
    """
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"tensor {flat.dtype} {tuple(value.shape)}\n".encode())
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}\n".encode())
        for key in sorted(value, key=repr):
            digest.update(f"{key!r}\n".encode())
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(f"list {len(value)}\n".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{value!r}\n".encode())


def _check_complete(path: Path) -> None:
    """Raise :class:`PiddmError` if a ``.safetensors`` file is shorter than its header says.

    The layout is an 8-byte little-endian header length, a JSON header (``{...}``) giving each
    tensor's byte range, then the tensor bytes. Files that do not look like that are left to
    the safetensors reader to reject.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(9)
        if len(prefix) < 9 or prefix[8:9] != b"{":
            return
        header_len = int.from_bytes(prefix[:8], "little")
        expected = 8 + header_len
        if expected <= size:
            handle.seek(8)
            try:
                header = json.loads(handle.read(header_len))
                expected += max(
                    (int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                    default=0,
                )
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                return
    if size < expected:
        raise PiddmError(
            f"checkpoint {path} is truncated ({size} of at least {expected} bytes); it was not "
            f"completely written or copied"
        )


# ------------------------------------------------------------------------------- weights
def save_weights(path: str | os.PathLike[str], module: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write ``module``'s ``state_dict`` (as stored: a float16 module gives float16 tensors),
    its :func:`content_digest` and ``metadata`` (JSON) atomically (``.safetensors``)."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    header = {
        "format": CHECKPOINT_FORMAT,
        HASH_KEY: content_digest(tensors),
        "metadata": json.dumps(metadata, sort_keys=True),
    }
    target = Path(path)
    with atomic_output(target) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return target


#: What ``--model`` takes, for the errors of a file that is something else.
MODEL_ARGUMENT = "--model takes a .safetensors checkpoint, a run directory or a pretrained name"


def _check_not_a_dataset(path: Path) -> None:
    """Raise :class:`PiddmError` saying what ``path`` is if it is an HDF5 file (a piddm
    dataset, samples or solve output passed where a model belongs) rather than weights."""
    with open(path, "rb") as handle:
        if handle.read(len(HDF5_SIGNATURE)) != HDF5_SIGNATURE:
            return
    what = "an HDF5 file"
    try:
        with h5py.File(path, "r") as h5:
            if h5.attrs.get("format") in (FORMAT_NAME, FORMAT_NAME.encode()):
                what = "a piddm dataset (pass it as --data or --reference)"
    except OSError:
        pass  # damaged HDF5: still not a checkpoint
    raise PiddmError(f"{path} is {what}, not a model checkpoint: {MODEL_ARGUMENT}")


def _readable_file(path: str | os.PathLike[str]) -> Path:
    """``path`` if it is a complete ``.safetensors`` file, else :class:`PiddmError`."""
    p = Path(path)
    if not p.is_file():
        raise PiddmError(f"checkpoint {p} does not exist")
    _check_not_a_dataset(p)
    _check_complete(p)
    return p


def _unreadable(p: Path, exc: Exception) -> PiddmError:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return PiddmError(f"checkpoint {p} is not a readable .safetensors file ({first})")


def _check_format(p: Path, header: dict[str, str]) -> None:
    if header.get("format") != CHECKPOINT_FORMAT or "metadata" not in header:
        raise PiddmError(f"{p} is a .safetensors file but not a piddm checkpoint (no metadata)")


def _parse_metadata(p: Path, header: dict[str, str]) -> dict[str, Any]:
    try:
        return json.loads(header["metadata"])
    except json.JSONDecodeError:
        raise PiddmError(f"checkpoint {p} has corrupt metadata") from None


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict on CPU, metadata)`` of a weights file.

    Raises :class:`PiddmError` if the file is missing, truncated, unreadable, foreign, or if
    its tensors do not match the content hash stored with them.
    """
    p = _readable_file(path)
    try:
        with safe_open(str(p), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _unreadable(p, exc) from None
    _check_format(p, header)
    if HASH_KEY in header and header[HASH_KEY] != content_digest(tensors):
        raise PiddmError(
            f"checkpoint {p} is corrupted (content hash mismatch); the file was damaged after "
            f"it was written: copy or export it again"
        )
    return tensors, _parse_metadata(p, header)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a weights file (a run directory resolves to its final checkpoint),
    from its header alone: the tensors are neither read nor hashed (loading them checks
    them), with the same errors as :func:`read_checkpoint` otherwise."""
    p = _readable_file(resolve_checkpoint(path))
    try:
        with safe_open(str(p), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise _unreadable(p, exc) from None
    _check_format(p, header)
    return _parse_metadata(p, header)


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A weights file as given, or for a run directory its final (else latest) checkpoint."""
    p = Path(path)
    if p.is_dir():
        ckpt_dir = p / CHECKPOINT_DIR if (p / CHECKPOINT_DIR).is_dir() else p
        if (ckpt_dir / FINAL_NAME).is_file():
            return ckpt_dir / FINAL_NAME
        latest = read_latest(ckpt_dir)
        if latest is not None:
            return ckpt_dir / latest["weights"]
        raise PiddmError(f"run directory {p} holds no checkpoint")
    if not p.exists():
        raise PiddmError(f"checkpoint {p} does not exist")
    return p


def build_model(metadata: dict[str, Any]) -> nn.Module:
    """A fresh (untrained) denoiser with the architecture that ``metadata`` describes."""
    try:
        net = build_unet(UNetConfig(**metadata["net"]))
        spec = metadata["precond"]
        builder = PRECONDITIONERS[spec["type"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise PiddmError(f"checkpoint metadata is incomplete or malformed ({exc})") from None
    return builder(net, spec)


def load_model(
    checkpoint_path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the denoiser stored in a ``.safetensors`` file (or a run directory).

    Returns ``(denoiser, metadata)``; the denoiser ``D(x (B, C, S, S), sigma (B,))`` is in eval
    mode on ``device`` with gradients disabled for its parameters. Raises :class:`PiddmError`
    for a missing, corrupt or foreign file.
    """
    path = resolve_checkpoint(checkpoint_path)
    tensors, metadata = read_checkpoint(path)
    model = build_model(metadata)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise PiddmError(
            f"checkpoint {path}: weights do not match its metadata ({first})"
        ) from None
    model.to(device).eval()
    model.requires_grad_(False)
    return model, metadata


# ------------------------------------------------------------------------ training state
def save_training_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write the training-state dict and its :func:`content_digest` atomically (``torch.save``)."""
    payload = {"format": STATE_FORMAT, **state}
    payload[HASH_KEY] = content_digest(payload)
    target = Path(path)
    with atomic_output(target) as tmp:
        torch.save(payload, tmp)
    return target


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training-state file saved by :func:`save_training_state` (tensors on CPU).

    Raises :class:`PiddmError` if it is missing, truncated, unreadable, foreign, or if its
    content does not match its stored hash.
    """
    p = Path(path)
    if not p.is_file():
        raise PiddmError(f"training state {p} does not exist")
    if not zipfile.is_zipfile(p):  # torch.save writes a zip; a cut one lacks its end record
        raise PiddmError(f"training state {p} is truncated or corrupt (not a complete torch file)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PiddmError(f"training state {p} is corrupt ({first})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise PiddmError(f"{p} is not a piddm training-state file")
    stored = state.pop(HASH_KEY, None)
    if stored is not None and stored != content_digest(state):
        raise PiddmError(f"training state {p} is corrupted (content hash mismatch)")
    return state


def write_latest(ckpt_dir: Path, step: int, weights: str, state: str) -> None:
    """Point ``latest.json`` at a complete (weights, state) pair, atomically."""
    with atomic_output(ckpt_dir / LATEST_NAME) as tmp:
        tmp.write_text(json.dumps({"step": step, "weights": weights, "state": state}) + "\n")


def read_latest(ckpt_dir: Path) -> dict[str, Any] | None:
    """The ``latest.json`` record of a checkpoint directory, or ``None`` if there is none."""
    path = Path(ckpt_dir) / LATEST_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        int(record["step"]), str(record["weights"]), str(record["state"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise PiddmError(f"{path} is corrupt; delete it to restart from scratch") from None
    return record


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run directory holds any checkpoint (weights, state or pointer)."""
    ckpt_dir = Path(run_dir) / CHECKPOINT_DIR
    if not ckpt_dir.is_dir():
        return False
    return any(
        p.suffix in (".safetensors", ".pt") or p.name == LATEST_NAME for p in ckpt_dir.iterdir()
    )
