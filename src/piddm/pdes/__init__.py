"""PDE suite: input samplers, solvers and residual operators sharing one discretisation.

To add a PDE, write one module in this package with a ``@register_pde`` subclass of
:class:`PDE`: every module of the package is imported below, which registers it
(``docs/adding-a-pde.md``; a PDE outside the package: :mod:`piddm.pdes.registry`).
"""

import importlib
import pkgutil

from piddm.pdes.base import PDE, Normalisation
from piddm.pdes.registry import (
    PDE_REGISTRY,
    available_pdes,
    get_pde,
    register_pde,
    unregister_pde,
)

# Registration: import every module of the package (the PDEs register on import), in name
# order (burgers, darcy, ...); a new PDE needs no line here.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "PDE",
    "Normalisation",
    "PDE_REGISTRY",
    "available_pdes",
    "get_pde",
    "register_pde",
    "unregister_pde",
]
