"""The ``piddm solve`` output file (:mod:`piddm.data.solutions`): datasets, dtypes, attributes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from piddm.data.solutions import SOLUTIONS_FORMAT, write_solutions
from piddm.pdes import get_pde


def test_write_solutions_layout(tmp_path: Path):
    pde = get_pde("darcy", 16)
    shape = (2, pde.num_channels, 16, 16)
    rng = np.random.default_rng(0)
    truth, estimate, std = (rng.standard_normal(shape) for _ in range(3))
    mask = rng.random(shape) < 0.1
    out = tmp_path / "solve.h5"
    write_solutions(out, truth, mask, estimate, std, "forward", {"obs_fraction": 0.1}, "m", pde)
    with h5py.File(out, "r") as handle:
        assert sorted(handle) == ["estimate", "mask", "std", "truth"]
        assert handle["mask"].dtype == bool and handle["estimate"].dtype == np.float32
        np.testing.assert_array_equal(handle["mask"][()], mask)
        np.testing.assert_array_equal(handle["std"][()], std.astype(np.float32))
        assert dict(handle.attrs) == {
            "format": SOLUTIONS_FORMAT,
            "task": "forward",
            "model": "m",
            "pde": "darcy",
            "resolution": 16,
            "obs_fraction": 0.1,
        }


def test_write_solutions_without_truth(tmp_path: Path):
    pde = get_pde("darcy", 16)
    fields = np.zeros((1, pde.num_channels, 16, 16))
    out = tmp_path / "solve.h5"
    write_solutions(out, None, fields > 0, fields, fields, "inverse", {}, "m", pde)
    with h5py.File(out, "r") as handle:
        assert sorted(handle) == ["estimate", "mask", "std"]
    assert [p.name for p in tmp_path.iterdir()] == ["solve.h5"]  # no temp file left behind
