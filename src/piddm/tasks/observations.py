"""Observation files for ``piddm solve --obs FILE``: reading and validation.

Format
------
An HDF5 file (``.h5`` / ``.hdf5``, two datasets at the root) or a NumPy archive (``.npz``,
e.g. ``numpy.savez(path, values=..., mask=...)``) holding two arrays:

* ``values``: real numbers (integer or floating point), shape ``(N, C, S, S)`` for ``N``
  instances or ``(C, S, S)`` for a single instance, in the physical units of the PDE's fields
  (as in dataset files), channels in the PDE's order (``pde.channels``, e.g. ``[a, u]`` for
  Darcy). Only the values at observed nodes are used: unobserved nodes may hold anything,
  NaN included; observed values must be finite (and within float32 range, the precision of
  the output file).
* ``mask``: bool or 0/1 numbers, ``True`` / 1 where a value is observed; shape
  ``(N, C, S, S)`` (one mask per instance) or ``(C, S, S)`` / ``(1, C, S, S)`` (one mask
  shared by every instance).

``(C, S, S)`` must match the model's PDE and grid. Every instance must observe at least one
node and leave at least one node unobserved (otherwise there is nothing to fit or nothing to
solve). Other arrays in the file are ignored. Any violation raises :class:`PiddmError` with
a one-line message naming the file, before any work starts.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from piddm.errors import PiddmError
from piddm.pdes import PDE

#: File suffixes (lower case) accepted for observation files.
OBS_SUFFIXES: tuple[str, ...] = (".h5", ".hdf5", ".npz")
#: The two arrays an observation file must hold.
OBS_KEYS: tuple[str, ...] = ("values", "mask")

_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Observations:
    """Validated observations of ``N`` instances.

    * ``values``: float64 ``(N, C, S, S)``, physical units; finite at observed nodes,
      arbitrary (possibly NaN) elsewhere.
    * ``mask``: bool ``(N, C, S, S)``, ``True`` where observed (a shared mask is repeated).
    * ``source``: the file they were read from.
    """

    values: np.ndarray
    mask: np.ndarray
    source: Path

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def observed_fraction(self) -> float:
        """Fraction of all nodes (every instance and channel) that are observed."""
        return float(self.mask.mean())


def read_observations(path: str | Path, pde: PDE, limit: int | None = None) -> Observations:
    """Read and validate the observation file ``path`` for ``pde``'s fields.

    ``limit`` keeps the first ``limit`` instances (``None``: all). Raises :class:`PiddmError`
    for a missing or unreadable file, an unsupported suffix, a missing array, a non-numeric
    array, a shape that does not match ``pde`` (``(N, C, S, S)``), masks that are not 0/1,
    observe no node or every node of an instance, or NaN / infinite observed values.
    """
    p = check_observation_path(path)
    if limit is not None and (int(limit) != limit or limit < 1):
        raise PiddmError(f"number of instances must be a positive integer, got {limit!r}")
    reader = _read_npz if p.suffix.lower() == ".npz" else _read_hdf5
    values, mask = reader(p, pde, limit)
    return check_observations(values, mask, pde, source=p)


def check_observation_path(path: str | Path) -> Path:
    """Return ``path`` as a :class:`Path` if it names an existing file with a supported suffix
    (:data:`OBS_SUFFIXES`), else raise :class:`PiddmError` (a cheap check before any work)."""
    p = Path(path)
    if p.suffix.lower() not in OBS_SUFFIXES:
        raise PiddmError(
            f"observations {p}: unsupported file type '{p.suffix}' "
            f"(expected {', '.join(OBS_SUFFIXES)})"
        )
    if not p.exists():
        raise PiddmError(f"observations {p} does not exist")
    if not p.is_file():
        raise PiddmError(f"observations {p} is not a file")
    return p


def check_observations(
    values: np.ndarray, mask: np.ndarray, pde: PDE, source: str | Path = "(in memory)"
) -> Observations:
    """Validate in-memory ``values`` and ``mask`` arrays (the file format's rules).

    ``source`` (their file) names them in error messages. Returns :class:`Observations` with
    float64 values and a bool mask, both ``(N, C, S, S)``.
    """
    values = np.asarray(values)
    mask = np.asarray(mask)
    _check_dtype(source, "values", values.dtype)
    _check_dtype(source, "mask", mask.dtype)
    _check_shape(source, "values", values.shape, pde)
    _check_shape(source, "mask", mask.shape, pde)
    if values.ndim == 3:
        values = values[None]
    if mask.ndim == 3:
        mask = mask[None]
    n = values.shape[0]
    if mask.shape[0] not in (1, n):
        raise PiddmError(
            f"observations {source}: 'mask' holds {mask.shape[0]} instances but 'values' holds {n} "
            f"(give one mask per instance, or one (C, S, S) mask shared by all)"
        )
    if mask.dtype != np.bool_:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise PiddmError(
                f"observations {source}: 'mask' must hold only 0/1 (or true/false) values"
            )
        mask = mask != 0
    mask = np.broadcast_to(mask, values.shape).copy()
    counts = mask.reshape(n, -1).sum(axis=1)
    if (counts == 0).any():
        first = int(np.flatnonzero(counts == 0)[0])
        raise PiddmError(
            f"observations {source}: the mask of instance {first} observes no node (nothing to fit)"
        )
    if (counts == mask[0].size).any():
        first = int(np.flatnonzero(counts == mask[0].size)[0])
        raise PiddmError(
            f"observations {source}: the mask of instance {first} observes every node of "
            f"every channel (nothing to solve)"
        )
    values = values.astype(np.float64)
    observed = values[mask]
    bad = ~np.isfinite(observed)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(mask & ~np.isfinite(values))[0])
        raise PiddmError(
            f"observations {source}: 'values' holds {int(bad.sum())} NaN/Inf value(s) at "
            f"observed nodes (first at index {index}); only unobserved nodes may be NaN"
        )
    if observed.size and float(np.abs(observed).max()) > _FLOAT32_MAX:
        raise PiddmError(
            f"observations {source}: observed 'values' exceed the float32 range (|x| > 3.4e38)"
        )
    return Observations(values=values, mask=mask, source=Path(source))


def check_against_truth(obs: Observations, truth_shape: tuple[int, ...], data: str | Path) -> None:
    """Raise :class:`PiddmError` unless ``obs`` has one instance per truth field
    (``truth_shape`` is ``(N, C, S, S)`` of the ``--data`` instances)."""
    if tuple(obs.values.shape) != tuple(truth_shape):
        raise PiddmError(
            f"observations {obs.source} hold {len(obs)} instance(s) but --data {data} holds "
            f"{truth_shape[0]} (use --n to solve the first N of both)"
        )


# ----------------------------------------------------------------------------- internals
def _expected(pde: PDE) -> tuple[int, int, int]:
    return (pde.num_channels, pde.resolution, pde.resolution)


def _check_dtype(source: str | Path, key: str, dtype: np.dtype) -> None:
    """``values``: integer or float; ``mask``: bool, integer or float."""
    kinds = "iuf" if key == "values" else "biuf"
    if dtype.kind not in kinds:
        wanted = "real numbers" if key == "values" else "bool or 0/1 numbers"
        raise PiddmError(f"observations {source}: '{key}' must hold {wanted}, got dtype {dtype}")


def _check_shape(source: str | Path, key: str, shape: tuple[int, ...], pde: PDE) -> None:
    c, s, _ = expected = _expected(pde)
    ok = (len(shape) == 3 and tuple(shape) == expected) or (
        len(shape) == 4 and tuple(shape[1:]) == expected and shape[0] >= 1
    )
    if not ok:
        raise PiddmError(
            f"observations {source}: '{key}' has shape {tuple(shape)}, expected "
            f"(N, {c}, {s}, {s}) or ({c}, {s}, {s}) for the model's {pde.name} {s}^2 fields"
        )


def _limited(array: Any, limit: int | None) -> np.ndarray:
    """The first ``limit`` instances of a ``(N, C, S, S)`` array (all of a ``(C, S, S)`` one)."""
    return np.asarray(array[: int(limit)] if array.ndim == 4 and limit is not None else array[()])


def _read_hdf5(path: Path, pde: PDE, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise PiddmError(f"observations {path}: not a readable HDF5 file") from None
    arrays = []
    with handle:
        for key in OBS_KEYS:
            if key not in handle or not isinstance(handle[key], h5py.Dataset):
                raise PiddmError(
                    f"observations {path}: no '{key}' dataset (it needs 'values' and 'mask')"
                )
            dataset = handle[key]
            _check_dtype(path, key, dataset.dtype)
            _check_shape(path, key, dataset.shape, pde)  # before reading a wrong, large array
            try:
                arrays.append(_limited(dataset, limit))
            except (OSError, TypeError, ValueError) as exc:
                raise PiddmError(f"observations {path}: cannot read '{key}' ({exc})") from None
    return arrays[0], arrays[1]


def _read_npz(path: Path, pde: PDE, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        raise PiddmError(f"observations {path}: not a readable .npz archive") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a plain .npy saved as .npz
        raise PiddmError(f"observations {path}: not an .npz archive (save it with numpy.savez)")
    arrays = []
    with archive:
        for key in OBS_KEYS:
            if key not in archive.files:
                raise PiddmError(
                    f"observations {path}: no '{key}' array (it needs 'values' and 'mask')"
                )
            try:
                array = archive[key]
            except ValueError:  # object arrays need pickle, which is refused
                raise PiddmError(f"observations {path}: '{key}' is not a numeric array") from None
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise PiddmError(f"observations {path}: cannot read '{key}' ({exc})") from None
            _check_dtype(path, key, array.dtype)
            _check_shape(path, key, array.shape, pde)
            arrays.append(_limited(array, limit))
    return arrays[0], arrays[1]
