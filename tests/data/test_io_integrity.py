"""Damaged dataset files: a flipped bit or a cut is a one-line user error naming the file,
both in the reader and on the command line; intact parts of a file stay readable."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import make_dataset, tiny_config_dict
from helpers import cli_user_error, flip_bit
from piddm.data.generate import Shard, generate_dataset, merge_shards
from piddm.data.io import dataset_attrs, read_dataset
from piddm.errors import PiddmError
from piddm.pdes import get_pde


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """Eight solver samples of 16^2 Darcy (a fresh copy per test: the tests damage it)."""
    return make_dataset(tmp_path / "d.h5", n=8)


def chunk_offset(path: Path, name: str, index: int) -> int:
    """The file offset of the ``index``-th stored chunk of array ``name``."""
    with h5py.File(path, "r") as handle:
        return int(handle[name].id.get_chunk_info(index).byte_offset)


def test_every_array_is_written_with_a_checksum(dataset: Path):
    with h5py.File(dataset, "r") as handle:
        assert handle["fields"].fletcher32 and handle["seeds"].fletcher32
        assert handle["fields"].chunks == (1, 2, 16, 16)  # one checksum per sample


def test_a_flipped_bit_in_a_sample_is_detected_and_named(dataset: Path):
    intact = read_dataset(dataset)
    flip_bit(dataset, chunk_offset(dataset, "fields", 5) + 301, bit=3)
    with pytest.raises(PiddmError, match=rf"dataset {dataset} is corrupted \(checksum mismatch\)"):
        read_dataset(dataset)
    head = read_dataset(dataset, limit=5)  # the samples before the damaged one are intact
    np.testing.assert_array_equal(head.fields, intact.fields[:5])


def test_a_flipped_bit_in_the_seeds_is_detected(dataset: Path):
    flip_bit(dataset, chunk_offset(dataset, "seeds", 0) + 8, bit=0)
    with pytest.raises(PiddmError, match="is corrupted"):
        read_dataset(dataset)


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.999])
def test_a_cut_file_is_reported_as_truncated(dataset: Path, fraction: float):
    good = dataset.read_bytes()
    keep = int(len(good) * fraction)
    dataset.write_bytes(good[:keep])
    with pytest.raises(PiddmError, match=rf"is truncated \({keep} of {len(good)} bytes\)"):
        read_dataset(dataset)


def test_random_byte_flips_never_change_what_is_read(tmp_path: Path):
    """Wherever one byte of a (small) file is flipped, reading it either fails with a
    PiddmError or returns exactly the original content (the byte was unused)."""
    path = make_dataset(tmp_path / "small.h5", n=2)
    original, raw = read_dataset(path), path.read_bytes()
    rng = np.random.default_rng(7)
    damaged = tmp_path / "damaged.h5"
    for offset in rng.choice(len(raw), size=150, replace=False):
        data = bytearray(raw)
        data[offset] ^= 0x10
        damaged.write_bytes(bytes(data))
        try:
            back = read_dataset(damaged)
        except PiddmError as exc:
            assert str(damaged) in str(exc)
            continue
        assert np.array_equal(back.fields, original.fields), f"byte {offset}"
        assert np.array_equal(back.seeds, original.seeds), f"byte {offset}"
        assert back.attrs == original.attrs, f"byte {offset}"


def test_a_file_written_without_checksums_still_loads(tmp_path: Path):
    pde = get_pde("darcy", 16)
    fields = np.stack([pde.generate(seed) for seed in range(2)]).astype(np.float32)
    old = tmp_path / "old.h5"
    with h5py.File(old, "w") as handle:
        handle["fields"] = fields
        handle["seeds"] = np.arange(2)
        handle.attrs.update(dataset_attrs(pde, {}))
    np.testing.assert_array_equal(read_dataset(old).fields, fields)


def test_merging_a_damaged_shard_fails_and_writes_nothing(tmp_path: Path):
    pde = get_pde("darcy", 16)
    shards = [
        generate_dataset(pde, 4, 0, tmp_path / f"s{i}.h5", shard=Shard(i, 2), progress=False)
        for i in range(2)
    ]
    flip_bit(shards[1], chunk_offset(shards[1], "fields", 1) + 64)
    out = tmp_path / "merged.h5"
    with pytest.raises(PiddmError, match=rf"dataset {shards[1]} is corrupted"):
        merge_shards(shards, out)
    assert not out.exists() and list(tmp_path.glob(".merged*")) == []


def test_cli_train_and_eval_refuse_damaged_data(tmp_path: Path, dataset: Path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config_dict(dataset, tmp_path / "runs")))
    reference = make_dataset(tmp_path / "ref.h5", n=4)
    flip_bit(dataset, chunk_offset(dataset, "fields", 2) + 100, bit=6)
    line = cli_user_error(capsys, "train", "--config", str(config), "--device", "cpu")
    assert line == f"error: dataset {dataset} is corrupted (checksum mismatch)"
    assert not (tmp_path / "runs").exists()
    args = ["eval", "--samples", str(dataset), "--reference", str(reference), "--no-consistency"]
    assert "is corrupted (checksum mismatch)" in cli_user_error(capsys, *args)

    reference.write_bytes(reference.read_bytes()[:-1000])
    args = ["eval", "--samples", str(make_dataset(tmp_path / "s.h5", n=2)), "--reference"]
    assert f"dataset {reference} is truncated" in cli_user_error(capsys, *args, str(reference))
