"""piddm: physics-informed distillation of diffusion models for PDE-constrained generation."""

import importlib.metadata

from piddm.errors import PiddmError
from piddm.models import load_any, load_pretrained, pretrained_names
from piddm.pdes import PDE, available_pdes, get_pde, register_pde

__version__ = importlib.metadata.version("piddm")

__all__ = [
    "PDE",
    "PiddmError",
    "__version__",
    "available_pdes",
    "get_pde",
    "load_any",
    "load_pretrained",
    "pretrained_names",
    "register_pde",
]
