"""Dataset generation: determinism across workers and shards, atomic output, HDF5 round trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from piddm.data import load_normalised, read_dataset, write_dataset
from piddm.data.generate import Shard, generate_dataset, merge_shards, sample_seed
from piddm.errors import PiddmError
from piddm.pdes import available_pdes, get_pde


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_identical_file_for_one_and_two_workers(tmp_path: Path) -> None:
    pde = get_pde("darcy", 16)
    one = generate_dataset(pde, 40, 5, tmp_path / "one.h5", workers=1, progress=False)
    two = generate_dataset(pde, 40, 5, tmp_path / "two.h5", workers=2, progress=False)
    assert digest(one) == digest(two)
    other = generate_dataset(pde, 40, 6, tmp_path / "other.h5", progress=False)
    assert digest(other) != digest(one)


def test_shards_merge_into_the_single_run_file(tmp_path: Path) -> None:
    pde = get_pde("burgers", 16)
    single = generate_dataset(pde, 21, 3, tmp_path / "single.h5", progress=False)
    shards = [
        generate_dataset(pde, 21, 3, tmp_path / f"s{i}.h5", shard=Shard(i, 3), progress=False)
        for i in range(3)
    ]
    merged = merge_shards(list(reversed(shards)), tmp_path / "merged.h5")
    assert digest(merged) == digest(single)


def test_merge_refuses_missing_or_overlapping_shards(tmp_path: Path) -> None:
    pde = get_pde("poisson", 16)
    s0 = generate_dataset(pde, 10, 0, tmp_path / "s0.h5", shard=Shard(0, 2), progress=False)
    with pytest.raises(PiddmError, match="missing"):
        merge_shards([s0], tmp_path / "m.h5")
    with pytest.raises(PiddmError, match="overlaps"):
        merge_shards([s0, s0], tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()


def test_sample_depends_only_on_its_seed(tmp_path: Path) -> None:
    pde = get_pde("helmholtz", 16)
    path = generate_dataset(pde, 6, 11, tmp_path / "h.h5", progress=False)
    data = read_dataset(path)
    assert data.seeds[4] == sample_seed(11, 4)
    np.testing.assert_array_equal(
        data.fields[4], pde.generate(int(data.seeds[4])).astype(np.float32)
    )
    assert len(set(data.seeds.tolist())) == 6


def test_hdf5_round_trip_keeps_fields_seeds_and_metadata(tmp_path: Path) -> None:
    pde = get_pde("helmholtz", 16, k=2.0)
    fields = np.stack([pde.generate(s) for s in range(3)])
    path = write_dataset(tmp_path / "rt.h5", fields, np.array([4, 5, 6]), pde, {"note": "x"})
    data = read_dataset(path)
    np.testing.assert_array_equal(data.fields, fields.astype(np.float32))
    np.testing.assert_array_equal(data.seeds, [4, 5, 6])
    assert data.pde.name == "helmholtz" and data.pde.params == {"k": 2.0}
    assert data.attrs["generator"] == {"note": "x"} and data.attrs["channels"] == ["a", "u"]
    with h5py.File(path) as handle:
        assert handle["fields"].dtype == np.float32 and handle["fields"].chunks == (1, 2, 16, 16)
        assert handle.attrs["h"] == pytest.approx(1 / 15)
    tensor, loaded_pde = load_normalised(path)
    expected = pde.normalisation.normalise(torch.from_numpy(fields.astype(np.float32)))
    torch.testing.assert_close(tensor, expected)
    assert (
        loaded_pde.normalisation.denormalise(tensor).sub(torch.from_numpy(fields)).abs().max()
        < 1e-6
    )


def test_normalised_fields_are_roughly_unit_range() -> None:
    for name in available_pdes():
        pde = get_pde(name, 32)
        x = torch.from_numpy(np.stack([pde.generate(s) for s in range(16)]))
        z = pde.normalisation.normalise(x)
        assert 0.2 < z.abs().amax().item() < 3.0, name


def test_failed_generation_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pde = get_pde("darcy", 16)
    calls = {"n": 0}
    original = type(pde).solve

    def failing_solve(self, inputs):  # noqa: ANN001
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("solver crashed")
        return original(self, inputs)

    monkeypatch.setattr(type(pde), "solve", failing_solve)
    with pytest.raises(RuntimeError):
        generate_dataset(pde, 40, 0, tmp_path / "x.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_read_refuses_nan_and_foreign_files(tmp_path: Path) -> None:
    pde = get_pde("poisson", 16)
    fields = np.stack([pde.generate(s) for s in range(2)])
    fields[1, 1, 3, 3] = np.nan
    bad = write_dataset(tmp_path / "nan.h5", fields, np.arange(2), pde)
    with pytest.raises(PiddmError, match="NaN"):
        read_dataset(bad)
    with h5py.File(tmp_path / "foreign.h5", "w") as handle:
        handle["x"] = np.zeros(3)
    with pytest.raises(PiddmError, match="not a piddm dataset"):
        read_dataset(tmp_path / "foreign.h5")
    with pytest.raises(PiddmError, match="resolution"):
        read_dataset(bad, check_finite=False, resolution=32)
