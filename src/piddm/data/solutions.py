"""The output file of ``piddm solve``: estimates of PDE instances from observations (HDF5).

One file per run, written atomically (temp file + fsync + rename):

* datasets, ``N`` instances of ``C`` channels on the ``S x S`` grid, physical units:
  ``truth`` ``(N, C, S, S)`` float32 (only when the truth is known), ``mask``
  ``(N, C, S, S)`` bool (``True`` where observed), ``estimate`` ``(N, C, S, S)`` float32
  (the ensemble mean) and ``std`` ``(N, C, S, S)`` float32 (the ensemble's standard
  deviation);
* attributes: ``format = "piddm-solve"``, ``task``, ``model`` (as given), ``pde``,
  ``resolution``, and what was observed: ``obs_fraction`` (random observations of the
  truth), ``observations`` (an observation file's path), or ``masks = "diffusionpde"`` and
  ``obs_count`` (DiffusionPDE's fixed point sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from piddm.atomic import atomic_output
from piddm.pdes import PDE

SOLUTIONS_FORMAT = "piddm-solve"


def write_solutions(
    path: Path,
    truth: np.ndarray | None,
    mask: np.ndarray,
    estimate: np.ndarray,
    std: np.ndarray,
    task: str,
    attrs: dict[str, Any],
    model: str,
    pde: PDE,
) -> None:
    """Write the solve output atomically: ``truth`` (if known), ``mask``, ``estimate``, ``std``
    (each ``(N, C, S, S)``) and the attributes of the module doc (``attrs``: what was observed).
    """
    arrays = {"truth": truth, "mask": mask, "estimate": estimate, "std": std}
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, value in arrays.items():
            if value is None:
                continue
            handle.create_dataset(
                name, data=np.asarray(value, dtype=bool if name == "mask" else np.float32)
            )
        handle.attrs.update(
            format=SOLUTIONS_FORMAT,
            task=task,
            model=model,
            pde=pde.name,
            resolution=pde.resolution,
            **attrs,
        )
