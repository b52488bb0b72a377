"""Read DiffusionPDE's released layouts (and FunDPS / DDIS's encoded copies); write its
MATLAB layout.

Layouts (``docs/diffusionpde.md`` cites the code that defines each):

* ``diffusionpde-mat``: the released MATLAB files, two arrays ``(N, X, Y)`` in physical
  units per PDE (:data:`~piddm.data.diffusionpde.MAT_KEYS`), MATLAB 5 (``scipy.io``) or
  MATLAB 7.3 (HDF5, stored column-major: ``h5py`` sees ``(Y, X, N)``, read back transposed);
  a plain HDF5 file with the same keys is read as stored, ``(N, X, Y)``.
* ``diffusionpde-npy``: DiffusionPDE's training copy, channels last in its scaling: a
  directory of ``merge_{i}.npy`` files ``(X, Y, 2)`` (what ``merge_data.py`` writes), or one
  ``.npy`` ``(N, X, Y, 2)`` / ``(X, Y, 2)``.
* ``fundps-npy``: FunDPS / DDIS's normalised copy, channels first, ``(N, 2, X, Y)`` /
  ``(2, X, Y)`` in a ``.npy`` (their Hugging Face ``datasets`` directory is not read: its
  ``data`` column saved with ``numpy.save`` is this layout).

Arrays keep their index order: sample row ``[i, j]`` of the source is node ``(i, j)`` of the
piddm field (every imported PDE is symmetric under transposition, so no transpose is needed
or applied; the observation masks index the same ``[i, j]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from piddm.data.diffusionpde import (
    ENCODING_NOTES,
    MAT_KEYS,
    PDES,
    binary_darcy_coefficient,
    decode,
    encode,
    mat_pde,
)
from piddm.errors import PiddmError

LAYOUTS: tuple[str, ...] = ("diffusionpde-mat", "diffusionpde-npy", "fundps-npy")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NPY_MAGIC = b"\x93NUMPY"
MERGED_FILE = re.compile(r"^merge_(\d+)\.npy$")
#: Files that mark a Hugging Face ``datasets`` directory (``save_to_disk``).
HF_MARKERS: tuple[str, ...] = ("dataset_info.json", "state.json")
FLOAT32_MAX = float(np.finfo(np.float32).max)
DECODE_BLOCK = 512  # samples decoded at once


@dataclass
class SourceData:
    """Fields read from a source, in physical units.

    ``fields`` ``(N, 2, S, S)`` float32 ``[coefficient, solution]`` (what a dataset stores);
    ``rows`` ``(N,)`` int64 the source's row (or ``merge_{i}`` index) of each sample;
    ``keys`` the arrays read.
    """

    fields: np.ndarray
    rows: np.ndarray
    pde: str
    layout: str
    container: str
    keys: tuple[str, ...]

    @property
    def encoding(self) -> str:
        return ENCODING_NOTES[self.layout]


def read_source(
    path: str | Path, pde: str | None = None, layout: str = "auto", limit: int | None = None
) -> SourceData:
    """Read the first ``limit`` samples of a DiffusionPDE / FunDPS source (file or directory).

    ``pde``: required for the ``.npy`` layouts (they do not name their PDE), checked against
    the keys of a MATLAB file. ``layout``: ``auto`` (from the content) or one of
    :data:`LAYOUTS`. Raises :class:`PiddmError` (one line naming ``path``) for a missing
    source, a file in no known layout, wrong keys or shapes, non-finite values, or a Darcy
    coefficient other than DiffusionPDE's 3 / 12.
    """
    p = Path(path)
    if pde is not None and pde not in PDES:
        raise PiddmError(f"--pde must be one of {', '.join(PDES)}, got '{pde}'")
    if layout != "auto" and layout not in LAYOUTS:
        raise PiddmError(f"unknown layout '{layout}'; expected auto or one of {', '.join(LAYOUTS)}")
    kind = _sniff(p)
    if kind in ("mat5", "hdf5"):
        if layout not in ("auto", "diffusionpde-mat"):
            raise PiddmError(f"--layout {layout}: {p} is a MATLAB/HDF5 file, not a .npy")
        name, a, u, keys, container = _read_mat(p, kind, pde, limit)
        layout = "diffusionpde-mat"
        rows = np.arange(len(a), dtype=np.int64)
    else:
        if layout == "diffusionpde-mat":
            raise PiddmError(f"--layout diffusionpde-mat: {p} is not a MATLAB file")
        if pde is None:
            raise PiddmError(
                f"{p} is a .npy layout, which does not name its PDE: pass --pde ({', '.join(PDES)})"
            )
        name = pde
        if kind == "merged":
            if layout == "fundps-npy":
                raise PiddmError(f"--layout fundps-npy: {p} is a directory of merge_*.npy")
            a, u, rows = _read_merged_dir(p, limit)
            layout, keys, container = "diffusionpde-npy", ("merge_{i}.npy",), "npy directory"
        else:
            layout, a, u = _read_npy(p, layout, limit)
            rows = np.arange(len(a), dtype=np.int64)
            keys, container = ("channel 0", "channel 1"), "npy"
    fields = np.empty((len(a), 2, *a.shape[1:]), dtype=np.float32)
    for start in range(0, len(a), DECODE_BLOCK):  # float64 work arrays of one block at a time
        block = decode(
            layout, name, a[start : start + DECODE_BLOCK], u[start : start + DECODE_BLOCK]
        )
        _check_finite(block, p, start)
        if name == "darcy":
            exact = layout == "diffusionpde-mat"
            block[:, 0] = binary_darcy_coefficient(block[:, 0], exact, str(p))
        fields[start : start + len(block)] = block
    return SourceData(fields, rows, name, layout, container, keys)


def write_mat(path: Path, fields: np.ndarray, pde: str) -> None:
    """Write physical ``fields`` ``(N, 2, S, S)`` of ``pde`` to ``path`` in DiffusionPDE's
    MATLAB 5 layout: its two keys, each ``(N, S, S)`` float64 (``scipy.io.savemat``)."""
    key_a, key_u = MAT_KEYS[pde]
    a, u = encode("diffusionpde-mat", pde, fields)
    with open(path, "wb") as handle:
        scipy.io.savemat(handle, {key_a: a, key_u: u}, do_compression=False)


# ----------------------------------------------------------------------------- detection
def _sniff(path: Path) -> str:
    """``mat5``, ``hdf5``, ``npy`` or ``merged`` (a directory of ``merge_*.npy``)."""
    if not path.exists():
        raise PiddmError(f"source {path} does not exist")
    if path.is_dir():
        names = [child.name for child in path.iterdir()]
        if any(MERGED_FILE.match(name) for name in names):
            return "merged"
        if any(name in HF_MARKERS or name.endswith(".arrow") for name in names):
            raise PiddmError(
                f"{path} is a Hugging Face datasets directory (FunDPS/DDIS's copy); save its "
                "'data' column with numpy.save and import that .npy (docs/diffusionpde.md)"
            )
        raise PiddmError(f"{path} is a directory without merge_*.npy files: no known layout")
    with open(path, "rb") as handle:
        head = handle.read(520)
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(HDF5_SIGNATURE) or head[512:520] == HDF5_SIGNATURE:
        return "hdf5"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "mat5"
    raise PiddmError(
        f"{path} is in no known layout (expected a DiffusionPDE .mat, a .npy or a directory "
        "of merge_*.npy; docs/diffusionpde.md)"
    )


# ----------------------------------------------------------------------------- MATLAB
def _read_mat(
    path: Path, kind: str, pde: str | None, limit: int | None
) -> tuple[str, np.ndarray, np.ndarray, tuple[str, ...], str]:
    """``(pde, a, u, keys, container)`` with ``a``, ``u`` ``(N, S, S)`` as stored."""
    if kind == "mat5":
        try:
            shapes = {name: shape for name, shape, _ in scipy.io.whosmat(str(path))}
        except Exception as exc:  # scipy raises many types for damaged files
            raise PiddmError(f"{path}: cannot read the MATLAB file ({_short(exc)})") from None
        name = _mat_pair(path, pde, shapes)
        keys = MAT_KEYS[name]
        for key in keys:
            _check_stack_shape(path, key, shapes[key])
        try:
            arrays = scipy.io.loadmat(str(path), variable_names=list(keys))
        except Exception as exc:
            raise PiddmError(f"{path}: cannot read the MATLAB file ({_short(exc)})") from None
        a, u = (_numeric(path, key, arrays[key])[:limit] for key in keys)
        container = "MATLAB 5.0 (scipy.io)"
    else:
        name, a, u, keys, container = _read_hdf5(path, pde, limit)
    _check_pair(path, keys, a, u)
    return name, a, u, keys, container


def _read_hdf5(
    path: Path, pde: str | None, limit: int | None
) -> tuple[str, np.ndarray, np.ndarray, tuple[str, ...], str]:
    with open(path, "rb") as handle:
        matlab_header = handle.read(6) == b"MATLAB"
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("format") in (b"piddm-dataset", "piddm-dataset"):
                raise PiddmError(f"{path} is already a piddm dataset; nothing to import")
            datasets = {k: v for k, v in handle.items() if isinstance(v, h5py.Dataset)}
            matlab = matlab_header or any("MATLAB_class" in v.attrs for v in datasets.values())
            shapes = {k: v.shape[::-1] if matlab else v.shape for k, v in datasets.items()}
            name = _mat_pair(path, pde, shapes)
            keys = MAT_KEYS[name]
            arrays = []
            for key in keys:
                _check_stack_shape(path, key, shapes[key])
                stop = shapes[key][0] if limit is None else min(limit, shapes[key][0])
                if matlab:  # column-major: h5py's (Y, X, N) is MATLAB's (N, X, Y)
                    block = np.asarray(datasets[key][..., :stop]).T
                else:
                    block = np.asarray(datasets[key][:stop])
                arrays.append(_numeric(path, key, block))
    except OSError as exc:
        raise PiddmError(f"{path}: cannot read the HDF5 file ({_short(exc)})") from None
    container = "MATLAB 7.3 (HDF5)" if matlab else "HDF5"
    return name, arrays[0], arrays[1], keys, container


def _mat_pair(path: Path, pde: str | None, shapes: dict[str, Any]) -> str:
    """The PDE of a MATLAB file's keys (checked against ``pde`` if given)."""
    names = [key for key in shapes if not key.startswith("__")]
    if pde is None:
        return mat_pde(names, str(path))
    missing = [key for key in MAT_KEYS[pde] if key not in names]
    if missing:
        shown = ", ".join(sorted(names)) or "none"
        raise PiddmError(
            f"{path} has no key {', '.join(missing)} of DiffusionPDE's {pde} data (keys: {shown})"
        )
    return pde


# ----------------------------------------------------------------------------- numpy
def _read_npy(path: Path, layout: str, limit: int | None) -> tuple[str, np.ndarray, np.ndarray]:
    """``(layout, a, u)`` of one ``.npy``, the layout decided by its shape under ``auto``."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise PiddmError(f"{path}: cannot read the .npy file ({_short(exc)})") from None
    shape = array.shape
    last = len(shape) in (3, 4) and shape[-1] == 2 and shape[-3] != 2
    first = len(shape) in (3, 4) and shape[-3] == 2 and shape[-1] != 2
    if layout == "auto":
        if last == first:
            raise PiddmError(
                f"{path}: a .npy of shape {shape} is in no known layout; expected "
                "(N, S, S, 2) (diffusionpde-npy) or (N, 2, S, S) (fundps-npy)"
            )
        layout = "diffusionpde-npy" if last else "fundps-npy"
    expected_ok = last if layout == "diffusionpde-npy" else first
    if not expected_ok:
        wanted = "(N, S, S, 2)" if layout == "diffusionpde-npy" else "(N, 2, S, S)"
        raise PiddmError(f"{path}: --layout {layout} needs an array {wanted}, got {shape}")
    stack = array[None] if len(shape) == 3 else array
    stack = _numeric(path, "array", stack[:limit])
    if layout == "diffusionpde-npy":
        a, u = stack[..., 0], stack[..., 1]
    else:
        a, u = stack[:, 0], stack[:, 1]
    _check_pair(path, ("channel 0", "channel 1"), a, u)
    return layout, a, u


def _read_merged_dir(path: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``merge_{i}.npy`` files ``(S, S, 2)`` in the order of ``i``: ``(a, u, rows)``."""
    indexed = sorted(
        (int(match[1]), child)
        for child in path.iterdir()
        if (match := MERGED_FILE.match(child.name)) and child.is_file()
    )[:limit]
    samples: list[np.ndarray] = []
    for _, child in indexed:
        try:
            sample = np.load(child, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise PiddmError(f"{child}: cannot read the .npy file ({_short(exc)})") from None
        if sample.ndim != 3 or sample.shape[-1] != 2 or sample.shape[0] != sample.shape[1]:
            raise PiddmError(f"{child}: expected an array (S, S, 2), got shape {sample.shape}")
        if samples and sample.shape != samples[0].shape:
            raise PiddmError(f"{child}: shape {sample.shape} differs from {samples[0].shape}")
        samples.append(_numeric(child, "array", sample))
    stack = np.stack(samples)
    rows = np.array([index for index, _ in indexed], dtype=np.int64)
    return stack[..., 0], stack[..., 1], rows


# ----------------------------------------------------------------------------- checks
def _check_stack_shape(path: Path, key: str, shape: tuple[int, ...]) -> None:
    if len(shape) != 3 or shape[1] != shape[2] or shape[0] < 1:
        raise PiddmError(
            f"{path}: key '{key}' has shape {tuple(shape)}; expected (N, S, S) with N >= 1"
        )


def _check_pair(path: Path, keys: tuple[str, ...], a: np.ndarray, u: np.ndarray) -> None:
    if a.shape != u.shape or a.ndim != 3 or a.shape[1] != a.shape[2] or len(a) < 1:
        raise PiddmError(
            f"{path}: '{keys[0]}' {tuple(a.shape)} and '{keys[1]}' {tuple(u.shape)} must both "
            "be (N, S, S) with N >= 1"
        )


def _numeric(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    """``array`` unchanged (converted block by block later), or :class:`PiddmError` if it does
    not hold real numbers."""
    if array.dtype.kind not in "fiub":
        raise PiddmError(f"{path}: '{key}' holds {array.dtype} values, not real numbers")
    return array


def _check_finite(fields: np.ndarray, path: Path, start: int = 0) -> None:
    """Refuse NaN / Inf and values a float32 dataset cannot hold in ``fields`` ``(B, 2, S,
    S)``, the samples from ``start`` on."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(fields) | (np.abs(fields) > FLOAT32_MAX)
    if bad.any():
        first = start + int(np.flatnonzero(bad.reshape(len(fields), -1).any(axis=1))[0])
        raise PiddmError(
            f"{path}: NaN, Inf or beyond float32 range values (first in sample {first})"
        )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:120] + "...") if len(text) > 123 else (text or type(exc).__name__)
