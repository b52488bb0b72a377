"""The piddm HDF5 dataset format (docs/method.md, "Dataset files"): validated reader, atomic writer.

Layout of one file (one split):

* ``fields``: float32 ``(N, C, S, S)`` in physical units, chunked per sample;
* ``seeds``: int64 ``(N,)``, the per-sample seed: ``pde.generate(seeds[i])`` regenerates sample i;
* attributes: ``format = "piddm-dataset"``, ``format_version``, ``pde``, ``resolution``, ``h``,
  ``params`` (JSON), ``channels``, ``norm_shift``, ``norm_scale``, ``generator`` (JSON of the
  generator settings), ``piddm_version``; shards add ``shard`` (``"I/N"``) and ``index_start``.

Integrity: every byte that :class:`DatasetWriter` writes is under a checksum that the HDF5
library verifies when it reads it. The arrays carry the Fletcher-32 filter, one checksum per
chunk (per sample for ``fields``), so a partial read checks just what it reads; the metadata
is in the latest file format, whose superblock, object headers and chunk indices are
checksummed, with the attributes kept in the root group's header (not in a heap) and strings
stored as fixed-length UTF-8 bytes (not in the unchecksummed global heap, whose corruption
can hang the HDF5 library). A file shorter than its superblock says is refused on opening.
Each failure is a one-line :class:`PiddmError` naming the file (:func:`open_dataset_file`,
:func:`reading`). Files written before these measures still load, less protected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from h5py import h5f, h5p

from piddm.atomic import atomic_output, check_output_path
from piddm.errors import PiddmError
from piddm.pdes import PDE, get_pde

FORMAT_NAME = "piddm-dataset"
FORMAT_VERSION = 1
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Attributes stay in the (checksummed) root group header up to this many (HDF5's default: 8).
MAX_COMPACT_ATTRIBUTES = 64


@dataclass
class FieldData:
    """A dataset in memory: ``fields`` ``(N, C, S, S)`` float32 physical; ``seeds`` ``(N,)``."""

    fields: np.ndarray
    seeds: np.ndarray
    pde: PDE
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.fields.shape[0])


def dataset_attrs(pde: PDE, generator: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a dataset file of ``pde`` made by ``generator`` settings."""
    info = pde.describe()
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "pde": info["pde"],
        "resolution": info["resolution"],
        "h": info["h"],
        "params": json.dumps(info["params"], sort_keys=True),
        "channels": np.array(info["channels"], dtype=h5py.string_dtype()),
        "norm_shift": np.asarray(info["norm_shift"], dtype=np.float64),
        "norm_scale": np.asarray(info["norm_scale"], dtype=np.float64),
        "generator": json.dumps(generator, sort_keys=True),
        "piddm_version": version("piddm"),
    }


class DatasetWriter:
    """Write samples one at a time into a fresh HDF5 file (used inside :func:`atomic_output`)."""

    def __init__(self, path: Path, n: int, pde: PDE, attrs: dict[str, Any]) -> None:
        self.file = _create_checksummed_file(path)
        shape = (n, pde.num_channels, pde.resolution, pde.resolution)
        self.fields = self.file.create_dataset(
            "fields",
            shape=shape,
            dtype=np.float32,
            chunks=(1, *shape[1:]),
            fletcher32=True,
            track_times=False,
        )
        self.seeds = self.file.create_dataset(
            "seeds", shape=(n,), dtype=np.int64, chunks=True, fletcher32=True, track_times=False
        )
        for key, value in attrs.items():
            self.file.attrs[key] = _fixed_length_strings(value)
        self.position = 0

    def append(self, fields: np.ndarray, seeds: Iterable[int]) -> None:
        """Append a block ``(k, C, S, S)`` of samples and their ``k`` seeds."""
        k = fields.shape[0]
        self.fields[self.position : self.position + k] = fields.astype(np.float32)
        self.seeds[self.position : self.position + k] = np.fromiter(seeds, dtype=np.int64, count=k)
        self.position += k

    def close(self) -> None:
        self.file.close()


def _create_checksummed_file(path: Path) -> h5py.File:
    """A new HDF5 file (truncating ``path``) in the latest format with compact attributes."""
    access = h5p.create(h5p.FILE_ACCESS)
    access.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    creation = h5p.create(h5p.FILE_CREATE)
    creation.set_obj_track_times(False)  # no timestamps: the same content, the same bytes
    creation.set_attr_phase_change(MAX_COMPACT_ATTRIBUTES, 0)
    file_id = h5f.create(os.fsencode(path), h5f.ACC_TRUNC, fcpl=creation, fapl=access)
    return h5py.File(file_id)


def _fixed_length_strings(value: Any) -> Any:
    """An attribute value with its strings (a ``str`` or an array of them) as UTF-8 bytes."""
    if isinstance(value, str):
        return np.bytes_(value.encode())
    array = np.asarray(value)
    if array.dtype.kind in "OU":
        return np.array([str(item).encode() for item in array.ravel()], dtype=bytes).reshape(
            array.shape
        )
    return value


def write_dataset(
    path: str | Path,
    fields: np.ndarray,
    seeds: np.ndarray,
    pde: PDE,
    generator: dict[str, Any] | None = None,
    overwrite: bool = False,
    extra_attrs: dict[str, Any] | None = None,
) -> Path:
    """Write an in-memory dataset atomically; returns the path."""
    out = check_output_path(path, overwrite)
    attrs = {**dataset_attrs(pde, generator or {}), **(extra_attrs or {})}
    with atomic_output(out) as tmp:
        writer = DatasetWriter(tmp, len(fields), pde, attrs)
        try:
            writer.append(np.asarray(fields), np.asarray(seeds))
        finally:
            writer.close()
    return out


def open_dataset_file(path: str | Path) -> h5py.File:
    """Open a piddm dataset read-only.

    Raises :class:`PiddmError` if the file is missing, truncated, not HDF5, damaged or foreign.
    """
    p = Path(path)
    if not p.is_file():
        raise PiddmError(f"dataset {p} does not exist")
    try:
        handle = h5py.File(p, "r")
    except OSError as exc:
        raise _unopenable(p, exc) from None
    try:
        with reading(p):
            foreign = _plain(handle.attrs.get("format")) != FORMAT_NAME or "fields" not in handle
        if foreign:
            raise PiddmError(
                f"{p} is an HDF5 file but not a piddm dataset (no 'format={FORMAT_NAME}')"
            )
    except PiddmError:
        handle.close()
        raise
    return handle


def _unopenable(path: Path, exc: OSError) -> PiddmError:
    """The user error for a file that HDF5 refuses to open."""
    text = str(exc)
    if "truncated file" in text:
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        of = f" ({sizes[1]} of {sizes[2]} bytes)" if sizes else ""
        return PiddmError(
            f"dataset {path} is truncated{of}; it was not completely written or copied"
        )
    with open(path, "rb") as handle:
        is_hdf5 = handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    if is_hdf5:
        return PiddmError(f"dataset {path} is corrupted (HDF5 cannot open it: {text})")
    return PiddmError(f"{path} is not an HDF5 file")


@contextlib.contextmanager
def reading(path: str | Path) -> Iterator[None]:
    """Turn HDF5 read failures inside the block (a chunk failing its checksum, damaged
    metadata) into a :class:`PiddmError` naming ``path``."""
    try:
        yield
    except (OSError, KeyError) as exc:  # h5py raises KeyError for a damaged object header
        text = str(exc.args[0]) if exc.args else type(exc).__name__
        what = "checksum mismatch" if "filter" in text else f"HDF5: {text}"
        raise PiddmError(f"dataset {path} is corrupted ({what})") from None


def pde_from_attrs(attrs: Any, source: str = "dataset") -> PDE:
    """Rebuild the PDE object described by dataset or checkpoint attributes."""
    try:
        params = (
            json.loads(attrs["params"]) if isinstance(attrs["params"], str) else attrs["params"]
        )
        return get_pde(str(attrs["pde"]), int(attrs["resolution"]), **params)
    except (KeyError, ValueError, TypeError) as exc:
        raise PiddmError(f"{source} metadata is incomplete or malformed ({exc})") from None


def _plain(value: Any) -> Any:
    """A numpy scalar or bytes as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def read_attrs(handle: h5py.File) -> dict[str, Any]:
    """File attributes as plain Python values (JSON strings decoded)."""
    out: dict[str, Any] = {}
    for key, value in handle.attrs.items():
        if isinstance(value, np.ndarray):
            value = [_plain(v) for v in value]
        else:
            value = _plain(value)
        if key in ("params", "generator") and isinstance(value, str):
            value = json.loads(value)
        out[key] = value
    return out


def read_dataset(
    path: str | Path,
    limit: int | None = None,
    check_finite: bool = True,
    pde: str | None = None,
    resolution: int | None = None,
) -> FieldData:
    """Load a dataset (the first ``limit`` samples) and validate it.

    Raises :class:`PiddmError` if the file is not a piddm dataset, is truncated or corrupted,
    if its shape disagrees with its metadata, if it contains NaN/Inf (``check_finite``), or if
    ``pde`` / ``resolution`` are given and differ from the file's.
    """
    with open_dataset_file(path) as handle, reading(path):
        attrs = read_attrs(handle)
        model_pde = pde_from_attrs(attrs, f"dataset {path}")
        fields_ds = handle["fields"]
        expected = (model_pde.num_channels, model_pde.resolution, model_pde.resolution)
        if fields_ds.ndim != 4 or tuple(fields_ds.shape[1:]) != expected:
            raise PiddmError(
                f"dataset {path}: 'fields' has shape {fields_ds.shape}, "
                f"expected (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}) for {model_pde.name}"
            )
        stop = fields_ds.shape[0] if limit is None else min(int(limit), fields_ds.shape[0])
        fields_np = np.asarray(fields_ds[:stop], dtype=np.float32)
        seeds = np.asarray(handle["seeds"][:stop]) if "seeds" in handle else np.arange(stop)
    if pde is not None and model_pde.name != pde:
        raise PiddmError(f"dataset {path} holds PDE '{model_pde.name}', expected '{pde}'")
    if resolution is not None and model_pde.resolution != resolution:
        raise PiddmError(
            f"dataset {path} has resolution {model_pde.resolution}, expected {resolution}"
        )
    if stop == 0:
        raise PiddmError(f"dataset {path} holds no samples")
    if check_finite and not np.isfinite(fields_np).all():
        bad = int((~np.isfinite(fields_np)).any(axis=(1, 2, 3)).sum())
        raise PiddmError(f"dataset {path} contains NaN or Inf values (in {bad} samples)")
    return FieldData(fields=fields_np, seeds=seeds, pde=model_pde, attrs=attrs)
