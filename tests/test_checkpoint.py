"""Checkpoint I/O: weights + metadata round trip exactly; bad files are user errors; damaged
files (a flipped bit, a cut) are caught by their content hash or size, never loaded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest
import torch
from safetensors.torch import save_file

from conftest import tiny_config_dict
from helpers import cli_user_error, flip_bit
from piddm.checkpoint import (
    CHECKPOINT_FORMAT,
    content_digest,
    load_model,
    load_training_state,
    read_checkpoint,
    read_metadata,
    resolve_checkpoint,
    save_training_state,
    save_weights,
    write_latest,
)
from piddm.config import config_from_dict
from piddm.diffusion import EDMPrecond
from piddm.errors import PiddmError
from piddm.pdes import get_pde
from piddm.training import build_teacher, teacher_metadata


@pytest.fixture
def trained_like(tmp_path: Path):
    """A tiny teacher with random (non-zero) weights and its metadata."""
    cfg = config_from_dict(tiny_config_dict("unused.h5", tmp_path / "runs"))
    pde = get_pde("darcy", 16)
    model = build_teacher(cfg, pde)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model, teacher_metadata(cfg, pde, step=7)


def test_load_model_reproduces_outputs_exactly(tmp_path: Path, trained_like):
    model, metadata = trained_like
    path = save_weights(tmp_path / "w.safetensors", model, metadata)
    loaded, meta = load_model(path)
    assert isinstance(loaded, EDMPrecond) and not loaded.training
    assert all(not p.requires_grad for p in loaded.parameters())
    assert meta == json.loads(json.dumps(metadata))
    assert meta["kind"] == "teacher" and meta["step"] == 7
    assert meta["pde"]["pde"] == "darcy" and meta["pde"]["norm_scale"] == [4.5, 0.012]
    assert meta["precond"] == {"type": "edm", "sigma_data": 0.5}
    x = torch.randn(3, 2, 16, 16)
    sigma = torch.tensor([0.01, 1.0, 50.0])
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x, sigma), model(x, sigma))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_run_directory_resolves_to_final_then_latest(tmp_path: Path, trained_like):
    model, metadata = trained_like
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    with pytest.raises(PiddmError, match="holds no checkpoint"):
        load_model(tmp_path / "run")
    save_weights(ckpt / "step-00000007.safetensors", model, metadata)
    write_latest(ckpt, 7, "step-00000007.safetensors", "state-00000007.pt")
    assert resolve_checkpoint(tmp_path / "run").name == "step-00000007.safetensors"
    save_weights(ckpt / "final.safetensors", model, {**metadata, "step": 9})
    assert resolve_checkpoint(tmp_path / "run").name == "final.safetensors"
    assert read_metadata(tmp_path / "run")["step"] == 9
    assert load_model(tmp_path / "run")[1]["step"] == 9


def bad_files(tmp_path: Path, good: Path) -> list[tuple[Path, str]]:
    """Files that are not readable piddm checkpoints, each with the error it must raise:
    garbage bytes, ``good`` cut short, and a foreign ``.safetensors`` file (no metadata)."""
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a safetensors file at all" * 10)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    return [
        (garbage, "not a readable .safetensors file"),
        (truncated, "is truncated"),
        (foreign, "not a piddm checkpoint"),
    ]


def test_missing_corrupt_and_foreign_files(tmp_path: Path, trained_like):
    model, metadata = trained_like
    with pytest.raises(PiddmError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")
    good = save_weights(tmp_path / "good.safetensors", model, metadata)
    for path, message in bad_files(tmp_path, good):
        with pytest.raises(PiddmError, match=message):
            load_model(path)


def test_weights_that_do_not_match_the_metadata(tmp_path: Path, trained_like):
    model, metadata = trained_like
    wrong = {**metadata, "net": {**metadata["net"], "base_channels": 16, "num_groups": 4}}
    path = save_weights(tmp_path / "w.safetensors", model, wrong)
    with pytest.raises(PiddmError, match="weights do not match its metadata"):
        load_model(path)
    broken = {**metadata, "precond": {"type": "nonsense"}}
    path = save_weights(tmp_path / "b.safetensors", model, broken)
    with pytest.raises(PiddmError, match="metadata is incomplete or malformed"):
        load_model(path)


def test_save_is_atomic_and_tensors_are_cpu_contiguous(tmp_path: Path, trained_like):
    model, metadata = trained_like
    path = save_weights(tmp_path / "w.safetensors", model, metadata)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left
    tensors, _ = read_checkpoint(path)
    assert set(tensors) == set(model.state_dict())


def test_training_state_round_trip(tmp_path: Path, trained_like):
    model, _ = trained_like
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(2, 2, 16, 16), torch.ones(2)).square().mean().backward()
    optimizer.step()
    state = {
        "step": 3,
        "seconds": 1.5,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": {"torch": torch.get_rng_state()},
    }
    path = save_training_state(tmp_path / "state.pt", state)
    back = load_training_state(path)
    assert back["step"] == 3 and back["seconds"] == 1.5
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(back["optimizer"])
    for key, value in model.state_dict().items():
        assert torch.equal(back["model"][key], value)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"garbage")
    with pytest.raises(PiddmError, match="corrupt"):
        load_training_state(corrupt)
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(PiddmError, match="not a piddm training-state file"):
        load_training_state(tmp_path / "other.pt")


# --------------------------------------------------------------------------- integrity
def tensor_offset(path: Path, key: str) -> int:
    """The file offset of the first byte of tensor ``key`` in a ``.safetensors`` file."""
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    return 8 + header_len + header[key]["data_offsets"][0]


def test_content_digest_covers_keys_dtype_shape_and_bytes():
    base = {"a": torch.arange(6, dtype=torch.float32), "b": torch.ones(2)}
    digest = content_digest(base)
    assert digest == content_digest({"b": torch.ones(2), "a": torch.arange(6.0)})  # key order
    variants = [
        {**base, "a": base["a"].reshape(2, 3)},  # same bytes, other shape
        {**base, "a": base["a"].view(torch.int32)},  # same bytes, other dtype
        {"c": base["a"], "b": base["b"]},  # other key
        {**base, "a": base["a"] + torch.tensor([0, 0, 0, 0, 0, 1e-6])},  # one value
    ]
    assert len({digest, *map(content_digest, variants)}) == 1 + len(variants)


def test_a_flipped_bit_in_a_tensor_is_detected(tmp_path: Path, trained_like):
    model, metadata = trained_like
    path = save_weights(tmp_path / "w.safetensors", model, metadata)
    key = sorted(model.state_dict())[3]
    flip_bit(path, tensor_offset(path, key) + 5, bit=2)
    with pytest.raises(PiddmError, match=r"is corrupted \(content hash mismatch\)"):
        load_model(path)


def test_read_metadata_reads_the_header_alone(tmp_path: Path, trained_like):
    """The header of a file whose tensors were damaged still reads (loading it refuses);
    a file that is not a readable piddm checkpoint is refused as by the full read."""
    model, metadata = trained_like
    path = save_weights(tmp_path / "w.safetensors", model, metadata)
    flip_bit(path, tensor_offset(path, sorted(model.state_dict())[3]) + 5, bit=2)
    assert read_metadata(path) == read_metadata(
        save_weights(tmp_path / "ok.safetensors", model, metadata)
    )
    with pytest.raises(PiddmError, match="content hash mismatch"):
        load_model(path)
    for bad, message in bad_files(tmp_path, path):
        with pytest.raises(PiddmError, match=message):
            read_metadata(bad)


def test_float16_weights_are_hashed_as_stored(tmp_path: Path, trained_like):
    model, metadata = trained_like
    path = save_weights(tmp_path / "half.safetensors", model.half(), metadata)
    tensors, _ = read_checkpoint(path)  # verifies the hash of the float16 bytes
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    assert load_model(path)[0] is not None
    flip_bit(path, tensor_offset(path, sorted(tensors)[0]) + 1)
    with pytest.raises(PiddmError, match="content hash mismatch"):
        read_checkpoint(path)


@pytest.mark.parametrize("keep", [4, 12, 200, -1])
def test_a_cut_checkpoint_is_reported_as_truncated(tmp_path: Path, trained_like, keep):
    model, metadata = trained_like
    good = save_weights(tmp_path / "good.safetensors", model, metadata).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[:keep])  # 4: in the header length, 12/200: in the header, -1: the data
    pattern = f"is truncated \\({len(good[:keep])} of at least "
    if keep == 4:  # too short to say what it was
        pattern = "not a readable .safetensors file"
    with pytest.raises(PiddmError, match=pattern):
        read_checkpoint(cut)


def test_a_checkpoint_without_a_hash_still_loads(tmp_path: Path, trained_like):
    model, metadata = trained_like
    old = tmp_path / "old.safetensors"
    header = {"format": CHECKPOINT_FORMAT, "metadata": json.dumps(metadata)}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(old), header)
    loaded, meta = load_model(old)
    assert meta["step"] == 7
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_cli_refuses_a_damaged_checkpoint_and_writes_nothing(tmp_path: Path, trained_like, capsys):
    model, metadata = trained_like
    flipped = save_weights(tmp_path / "flipped.safetensors", model, metadata)
    flip_bit(flipped, tensor_offset(flipped, sorted(model.state_dict())[0]) + 2, bit=7)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(save_weights(tmp_path / "good.safetensors", model, metadata).read_bytes()[:-9])
    out = tmp_path / "samples.h5"
    args = ["sample", "--n", "1", "--steps", "2", "--out", str(out), "--device", "cpu", "--quiet"]
    line = cli_user_error(capsys, *args, "--model", str(flipped))
    assert f"checkpoint {flipped} is corrupted (content hash mismatch)" in line
    line = cli_user_error(capsys, *args, "--model", str(cut))
    assert f"checkpoint {cut} is truncated" in line
    assert not out.exists()


def largest_member_offset(path: Path) -> int:
    """The file offset of the data of the largest member of a zip file (a ``torch.save`` file
    stores each tensor's bytes as one member)."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda item: item.file_size)
    with open(path, "rb") as handle:  # the local header: 30 bytes, the name, the extra field
        handle.seek(info.header_offset + 26)
        lengths = handle.read(4)
    return (
        info.header_offset
        + 30
        + int.from_bytes(lengths[:2], "little")
        + int.from_bytes(lengths[2:], "little")
    )


def test_a_damaged_training_state_is_detected(tmp_path: Path, trained_like):
    model, _ = trained_like
    state = {"step": 3, "seconds": 1.5, "model": model.state_dict()}
    path = save_training_state(tmp_path / "state.pt", state)
    good = path.read_bytes()
    flip_bit(path, largest_member_offset(path) + 17)
    with pytest.raises(PiddmError, match=r"state.pt is corrupted \(content hash mismatch\)"):
        load_training_state(path)
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(PiddmError, match="state.pt is truncated or corrupt"):
        load_training_state(path)
    path.write_bytes(good)
    assert load_training_state(path)["step"] == 3


def test_a_training_state_without_a_hash_still_loads(tmp_path: Path, trained_like):
    model, _ = trained_like
    old = tmp_path / "old.pt"
    torch.save({"format": "piddm-training-state", "step": 4, "model": model.state_dict()}, old)
    assert load_training_state(old)["step"] == 4


def test_a_dataset_passed_as_model_is_named_for_what_it_is(
    tmp_path: Path, darcy16_dataset: Path, capsys
):
    """Not "header too large": the error says the file is a dataset and what --model takes."""
    line = cli_user_error(
        capsys, "sample", "--model", str(darcy16_dataset), "--n", "1",
        "--out", str(tmp_path / "s.h5"),
    )  # fmt: skip
    assert f"{darcy16_dataset} is a piddm dataset" in line
    assert "--model takes a .safetensors checkpoint, a run directory or a pretrained name" in line
    assert not (tmp_path / "s.h5").exists()
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = [1.0]
    with pytest.raises(PiddmError, match=r"other.h5 is an HDF5 file, not a model checkpoint"):
        load_model(other)
