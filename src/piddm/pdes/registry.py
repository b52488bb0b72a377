"""Name -> PDE class registry. A PDE is one file: a subclass decorated with :func:`register_pde`.

# src/piddm/pdes/my_pde.py      (imported by piddm.pdes itself: every module of the package is)
@register_pde
class MyPDE(PDE):
    name = "my-pde"
    ...

A PDE outside the package registers the same way when its module is imported: in a script or a
test, import it before calling :func:`get_pde`; for the ``piddm`` command, an installed package
names the module in the entry-point group :data:`ENTRY_POINT_GROUP`, which :func:`get_pde` and
:func:`available_pdes` import on first use (docs/adding-a-pde.md).
"""

from __future__ import annotations

import difflib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeVar

from piddm.errors import PiddmError

if TYPE_CHECKING:
    from piddm.pdes.base import PDE

PDE_REGISTRY: dict[str, type[PDE]] = {}

#: Entry-point group of PDE plugins: ``[project.entry-points."piddm.pdes"] my-pde = "pkg.mod"``.
ENTRY_POINT_GROUP = "piddm.pdes"

T = TypeVar("T", bound="type[PDE]")

_plugins_loaded = False


def register_pde(cls: T) -> T:
    """Class decorator: make ``cls`` available as ``get_pde(cls.name, ...)``."""
    name = cls.name
    if name in PDE_REGISTRY and PDE_REGISTRY[name] is not cls:
        raise ValueError(f"a PDE named '{name}' is already registered")
    PDE_REGISTRY[name] = cls
    return cls


def unregister_pde(name: str) -> type[PDE]:
    """Remove the PDE ``name`` from the registry and return its class (tests, notebooks)."""
    if name not in PDE_REGISTRY:
        raise PiddmError(f"unknown PDE '{name}'; available: {', '.join(available_pdes())}")
    return PDE_REGISTRY.pop(name)


def load_plugins() -> None:
    """Import the modules of the :data:`ENTRY_POINT_GROUP` entry points of the installed
    packages, once per process; their ``@register_pde`` classes register on import."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # first: a plugin may itself ask for the registered PDEs
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:  # any failure of foreign code: name the plugin
            raise PiddmError(
                f"PDE plugin '{entry.name}' ({entry.value}) failed to load: {exc}"
            ) from exc


def available_pdes() -> list[str]:
    """Sorted names of the registered PDEs (plugins included)."""
    load_plugins()
    return sorted(PDE_REGISTRY)


def get_pde(name: str, resolution: int, **params: float) -> PDE:
    """Instantiate the registered PDE ``name`` at ``resolution`` with parameter overrides."""
    load_plugins()
    if name not in PDE_REGISTRY:
        close = difflib.get_close_matches(str(name), available_pdes(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PiddmError(f"unknown PDE '{name}'{hint}; available: {', '.join(available_pdes())}")
    return PDE_REGISTRY[name](resolution, **params)
