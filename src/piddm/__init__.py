"""piddm: physics-informed distillation of diffusion models for PDE-constrained generation."""

from piddm.errors import PiddmError
from piddm.models import load_any, load_pretrained, pretrained_names
from piddm.pdes import PDE, available_pdes, get_pde, register_pde

__version__ = "0.1.0"

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
