"""Resolve ``--model`` arguments: a pretrained name (``darcy-32-piddm``,
``darcy-32-start-inverse``), a file or a run dir."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piddm.checkpoint import load_model
from piddm.errors import PiddmError

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
#: ``<pde>-<resolution>-<role>``, the role one or more dash-joined words (``start-inverse``).
PRETRAINED_NAME = re.compile(r"^[a-z0-9]+-\d+-[a-z0-9]+(-[a-z0-9]+)*$")


def pretrained_names() -> list[str]:
    """Names of the models shipped inside the package."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors"))


def resolve_model(name_or_path: str | Path) -> Path:
    """A checkpoint path for a pretrained name, a ``.safetensors`` file or a run directory."""
    path = Path(name_or_path)
    if path.exists():
        return path
    if PRETRAINED_NAME.match(str(name_or_path)):
        candidate = PRETRAINED_DIR / f"{name_or_path}.safetensors"
        if candidate.is_file():
            return candidate
        known = ", ".join(pretrained_names()) or "none"
        raise PiddmError(f"no pretrained model named '{name_or_path}' (shipped: {known})")
    raise PiddmError(
        f"model {name_or_path} does not exist (a path, run directory or pretrained name)"
    )


def load_any(
    name_or_path: str | Path, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a denoiser / student and its metadata from a name, file or run directory."""
    return load_model(resolve_model(name_or_path), device=device)


def check_model_matches(metadata: dict[str, Any], pde: str | None, resolution: int | None) -> None:
    """Raise :class:`PiddmError` if the checkpoint is for another PDE or resolution."""
    info = metadata.get("pde", {})
    if pde is not None and info.get("pde") != pde:
        raise PiddmError(f"the model was trained for PDE '{info.get('pde')}', not '{pde}'")
    if resolution is not None and int(info.get("resolution", -1)) != resolution:
        raise PiddmError(
            f"the model was trained at resolution {info.get('resolution')}, not {resolution}"
        )


def load_pretrained(
    name: str, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model shipped with the package, e.g. ``load_pretrained("darcy-32-piddm")``."""
    if not (PRETRAINED_DIR / f"{name}.safetensors").is_file():
        known = ", ".join(pretrained_names()) or "none"
        raise PiddmError(f"no pretrained model named '{name}' (shipped: {known})")
    return load_any(PRETRAINED_DIR / f"{name}.safetensors", device)
