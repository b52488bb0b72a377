"""``piddm data import`` / ``export``: DiffusionPDE's data to and from piddm datasets.

The import writes a piddm dataset (:func:`piddm.data.io.write_dataset`, atomic) whose
attributes record the source (``source_file``, ``source_layout``, ``source_container``,
``source_keys``, ``source_encoding``) and whose ``seeds`` hold the source row of each
sample (``pde.generate(seed)`` does *not* regenerate imported samples). It reports how well
the imported fields satisfy piddm's discretisation: DiffusionPDE's data come from its own
solvers and grids (``docs/diffusionpde.md``), so these numbers describe the data, they are
not errors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from piddm.atomic import atomic_output, check_output_path
from piddm.data.diffusionpde import MAT_KEYS, PARAMS, binary_darcy_coefficient
from piddm.data.diffusionpde_io import read_source, write_mat
from piddm.data.io import read_dataset, write_dataset
from piddm.errors import PiddmError
from piddm.metrics import (
    Report,
    per_sample_relative_residual,
    per_sample_residual,
    solver_consistency,
)
from piddm.pdes import get_pde

#: Samples whose solver consistency the import reports (one solve each; 128^2 Darcy: ~0.1 s).
CONSISTENCY_SAMPLES = 64
BATCH = 256  # samples per residual evaluation


@dataclass
class ImportReport(Report):
    """What ``piddm data import`` prints (``--json``: these keys)."""

    out: str
    source: str
    pde: str
    resolution: int
    n: int
    layout: str
    container: str
    keys: list[str]
    encoding: str
    residual_mean: float
    residual_median: float
    relative_residual_mean: float
    relative_residual_median: float
    solver_consistency: float
    consistency_samples: int
    seconds: float


def import_dataset(
    source: str | Path,
    out: str | Path,
    pde: str | None = None,
    layout: str = "auto",
    limit: int | None = None,
    overwrite: bool = False,
) -> ImportReport:
    """Convert the first ``limit`` samples of a DiffusionPDE / FunDPS source into the piddm
    dataset ``out`` and measure them under piddm's discretisation.

    Everything is read and checked before anything is written; a failure raises
    :class:`PiddmError` and leaves no output file.
    """
    start = time.perf_counter()
    if limit is not None and limit < 1:
        raise PiddmError(f"--n must be positive, got {limit}")
    out_path = check_output_path(out, overwrite)
    data = read_source(source, pde=pde, layout=layout, limit=limit)
    resolution = data.fields.shape[-1]
    try:
        model = get_pde(data.pde, resolution, **PARAMS[data.pde])
    except PiddmError as exc:
        raise PiddmError(f"{source}: {exc}") from None
    fields = data.fields  # float32: the report measures what the file holds
    residual = per_sample_residual(model, fields, batch_size=BATCH)
    relative = per_sample_relative_residual(model, fields, batch_size=BATCH)
    checked = min(CONSISTENCY_SAMPLES, len(fields))
    consistency = solver_consistency(model, fields[:checked])
    source_file = str(Path(source).resolve())
    generator = {
        "import": data.layout,
        "source": source_file,
        "keys": list(data.keys),
        "rows": [int(data.rows[0]), int(data.rows[-1])],
    }
    attrs = {
        "source_file": source_file,
        "source_layout": data.layout,
        "source_container": data.container,
        "source_keys": list(data.keys),
        "source_encoding": data.encoding,
    }
    write_dataset(out_path, fields, data.rows, model, generator, overwrite, extra_attrs=attrs)
    return ImportReport(
        out=str(out_path),
        source=str(source),
        pde=model.name,
        resolution=resolution,
        n=len(fields),
        layout=data.layout,
        container=data.container,
        keys=list(data.keys),
        encoding=data.encoding,
        residual_mean=float(residual.mean()),
        residual_median=float(np.median(residual)),
        relative_residual_mean=float(relative.mean()),
        relative_residual_median=float(np.median(relative)),
        solver_consistency=float(consistency.mean()),
        consistency_samples=checked,
        seconds=time.perf_counter() - start,
    )


def export_dataset(dataset: str | Path, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write a piddm dataset of darcy, poisson or helmholtz in DiffusionPDE's MATLAB layout
    (:func:`~piddm.data.diffusionpde_io.write_mat`, atomically); returns a summary.

    The PDE parameters must be DiffusionPDE's (piddm's defaults) and a Darcy coefficient
    exactly 3 / 12, as in its files; importing the output gives back the same float32 fields.
    """
    out_path = check_output_path(out, overwrite)
    if out_path.suffix != ".mat":
        raise PiddmError(f"--out must be a .mat file, got '{out}'")
    data = read_dataset(dataset)
    name = data.pde.name
    if name not in MAT_KEYS:
        raise PiddmError(
            f"dataset {dataset} holds {name}; DiffusionPDE's MATLAB layout exists for "
            f"{', '.join(MAT_KEYS)} only"
        )
    if data.pde.params != get_pde(name, data.pde.resolution, **PARAMS[name]).params:
        raise PiddmError(
            f"dataset {dataset} has {name} parameters {data.pde.params}; DiffusionPDE's are "
            f"{PARAMS[name]}"
        )
    fields = data.fields.astype(np.float64)
    if name == "darcy":
        binary_darcy_coefficient(fields[:, 0], exact=True, where=f"dataset {dataset}")
    with atomic_output(out_path) as tmp:
        write_mat(tmp, fields, name)
    return {
        "out": str(out_path),
        "pde": name,
        "resolution": data.pde.resolution,
        "n": len(fields),
        "keys": list(MAT_KEYS[name]),
    }
