"""Observation files (``piddm solve --obs``): the format's rules, one-line errors for every
violation, and the CLI honouring the observations exactly (with and without a truth file)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_dataset, tiny_config_dict
from helpers import cli_run
from piddm.checkpoint import save_weights
from piddm.config import config_from_dict
from piddm.errors import PiddmError
from piddm.pdes import get_pde
from piddm.tasks import check_observations, read_observations
from piddm.training.teacher import build_teacher, teacher_metadata

S = 16
PDE16 = get_pde("darcy", S)


def observations(n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(values, mask)`` of ``n`` Darcy 16^2 instances: solver fields observed at ~10 % of the
    solution's nodes; unobserved values are NaN."""
    rng = np.random.default_rng(seed)
    values = np.stack([PDE16.generate(i) for i in range(n)])
    mask = np.zeros(values.shape, dtype=bool)
    mask[:, PDE16.solution_channel] = rng.random((n, S, S)) < 0.1
    mask[:, PDE16.solution_channel, 0, 0] = True  # never empty
    return np.where(mask, values, np.nan), mask


def write_obs(path: Path, **arrays: object) -> Path:
    """Write ``arrays`` to ``path`` as .npz or HDF5, by its suffix."""
    if path.suffix == ".npz":
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "w") as handle:
            for key, value in arrays.items():
                handle.create_dataset(key, data=value)
    return path


# ------------------------------------------------------------------ reading and validation


@pytest.mark.parametrize("suffix", [".npz", ".h5", ".hdf5", ".H5"])
def test_both_formats_read_back_as_float64_values_and_bool_masks(
    tmp_path: Path, suffix: str
) -> None:
    values, mask = observations()
    path = write_obs(tmp_path / f"obs{suffix}", values=values.astype(np.float32), mask=mask)
    obs = read_observations(path, PDE16)
    assert len(obs) == 3 and obs.values.dtype == np.float64 and obs.mask.dtype == np.bool_
    assert obs.values.shape == obs.mask.shape == (3, 2, S, S)
    np.testing.assert_array_equal(obs.mask, mask)
    np.testing.assert_array_equal(obs.values[mask], values.astype(np.float32)[mask])
    assert np.isnan(obs.values[~mask]).all()  # unobserved NaN is allowed and kept
    assert obs.observed_fraction == pytest.approx(mask.mean())
    assert obs.source == path


def test_limit_single_instances_shared_and_numeric_masks(tmp_path: Path) -> None:
    values, mask = observations(n=4)
    path = write_obs(tmp_path / "o.npz", values=values, mask=mask.astype(np.int64))
    obs = read_observations(path, PDE16, limit=2)
    assert len(obs) == 2
    np.testing.assert_array_equal(obs.mask, mask[:2])
    one = read_observations(write_obs(tmp_path / "one.h5", values=values[0], mask=mask[0]), PDE16)
    assert one.values.shape == (1, 2, S, S)
    shared = mask[0].astype(np.float32)  # 0.0 / 1.0, one mask for every instance
    for shared_mask in (shared, shared[None]):
        obs = check_observations(np.nan_to_num(values), shared_mask, PDE16)
        assert obs.mask.shape == (4, 2, S, S) and (obs.mask == mask[0]).all()
    integer_values = check_observations(np.ones((2, S, S), dtype=np.int32), mask[0], PDE16)
    assert integer_values.values.dtype == np.float64 and (integer_values.values == 1).all()


def bad_cases() -> list[tuple[str, dict, str]]:
    values, mask = observations()
    full = np.ones_like(mask)
    empty = mask.copy()
    empty[1] = False
    nan_observed = values.copy()
    nan_observed[2][mask[2]] = np.nan
    inf_observed = values.copy()
    inf_observed[0][mask[0]] = np.inf
    huge = np.where(mask, 1e39, np.nan)
    two = mask.astype(np.int8)
    two[0, 1, 0, 0] = 2
    nan_mask = mask.astype(np.float64)
    nan_mask[0, 0, 0, 0] = np.nan
    return [
        ("no-values", {"mask": mask}, "no 'values'"),
        ("no-mask", {"values": values}, "no 'mask'"),
        (
            "wrong-grid",
            {"values": values[..., :8], "mask": mask[..., :8]},
            "has shape (3, 2, 16, 8)",
        ),
        (
            "wrong-channels",
            {"values": values[:, :1], "mask": mask[:, :1]},
            "expected (N, 2, 16, 16)",
        ),
        ("flat", {"values": values.ravel(), "mask": mask}, "'values' has shape (1536,)"),
        ("n-mismatch", {"values": values, "mask": mask[:2]}, "'mask' holds 2 instances"),
        ("complex", {"values": values.astype(np.complex64), "mask": mask}, "real numbers"),
        ("bool-values", {"values": mask, "mask": mask}, "real numbers"),
        ("string-mask", {"values": values, "mask": np.full(mask.shape, b"y")}, "bool or 0/1"),
        ("mask-two", {"values": values, "mask": two}, "only 0/1"),
        ("mask-nan", {"values": values, "mask": nan_mask}, "only 0/1"),
        ("empty", {"values": values, "mask": empty}, "instance 1 observes no node"),
        ("full", {"values": np.nan_to_num(values), "mask": full}, "every node of every channel"),
        ("nan", {"values": nan_observed, "mask": mask}, "NaN/Inf value(s) at observed nodes"),
        ("inf", {"values": inf_observed, "mask": mask}, "first at index (0, 1,"),
        ("huge", {"values": huge, "mask": mask}, "float32 range"),
    ]


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
@pytest.mark.parametrize(
    ("arrays", "message"), [c[1:] for c in bad_cases()], ids=[c[0] for c in bad_cases()]
)
def test_every_violation_is_a_one_line_error_naming_the_file(
    tmp_path: Path, suffix: str, arrays: dict, message: str
) -> None:
    path = write_obs(tmp_path / f"obs{suffix}", **arrays)
    with pytest.raises(PiddmError) as info:
        read_observations(path, PDE16)
    text = str(info.value)
    assert message in text and str(path) in text and "\n" not in text


def test_unreadable_files_and_unsupported_suffixes(tmp_path: Path) -> None:
    values, mask = observations()
    cases = {
        tmp_path / "missing.npz": "does not exist",
        tmp_path: "unsupported file type",
        tmp_path / "obs.txt": "unsupported file type '.txt'",
        tmp_path / "garbage.h5": "not a readable HDF5 file",
        tmp_path / "garbage.npz": "not a readable .npz archive",
        tmp_path / "array.npz": "not an .npz archive",
        tmp_path / "dir.npz": "is not a file",
        tmp_path / "pickled.npz": "'mask' is not a numeric array",
        tmp_path / "group.h5": "no 'values' dataset",
    }
    (tmp_path / "obs.txt").write_text("values")
    (tmp_path / "garbage.h5").write_bytes(b"\x00not hdf5" * 10)
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 truncated")
    with open(tmp_path / "array.npz", "wb") as handle:
        np.save(handle, values)  # a plain .npy under an .npz name
    (tmp_path / "dir.npz").mkdir()
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.zeros(2), np.zeros(3)]
    np.savez(tmp_path / "pickled.npz", values=values, mask=ragged)
    with h5py.File(tmp_path / "group.h5", "w") as handle:
        handle.create_group("values")
        handle.create_dataset("mask", data=mask)
    for path, message in cases.items():
        with pytest.raises(PiddmError, match="observations") as info:
            read_observations(path, PDE16)
        assert message in str(info.value), (path, str(info.value))


# ------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Darcy 16^2 one-step student checkpoint with random weights (no training needed)."""
    root = tmp_path_factory.mktemp("student")
    cfg = config_from_dict(tiny_config_dict(root / "unused.h5", root / "runs"))
    torch.manual_seed(0)
    model = build_teacher(cfg, PDE16)
    nn.init.normal_(model.net.conv_out.weight, std=0.1)  # a non-trivial generator
    metadata = {**teacher_metadata(cfg, PDE16, 0), "kind": "piddm"}
    return save_weights(root / "student.safetensors", model, metadata)


def solve(student: Path, out: Path, *options: str) -> list[str]:
    return [
        "solve",
        "reconstruct",
        "--model",
        str(student),
        "--out",
        str(out),
        "--n",
        "2",
        "--ensemble",
        "2",
        "--steps",
        "3",
        "--device",
        "cpu",
        "--json",
        *options,
    ]


def test_solve_with_an_observation_file_and_no_truth(
    student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values, mask = observations()
    obs = write_obs(tmp_path / "obs.npz", values=values, mask=mask)
    out = tmp_path / "solve.h5"
    code, stdout, err = cli_run(solve(student, out, "--obs", str(obs)), capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["n"] == 2 and summary["rel_l2_solution"] is None
    assert summary["rel_l2_coefficient"] is None and summary["error_rate"] is None
    assert np.isfinite(summary["residual_mean"])
    assert summary["observed_fraction"] == pytest.approx(mask[:2].mean())
    with h5py.File(out) as handle:
        assert sorted(handle) == ["estimate", "mask", "std"]  # no truth without --data
        assert handle.attrs["observations"] == str(obs)
        estimate, got_mask, std = (handle[k][()] for k in ("estimate", "mask", "std"))
    np.testing.assert_array_equal(got_mask, mask[:2])
    np.testing.assert_array_equal(estimate[mask[:2]], values[:2][mask[:2]].astype(np.float32))
    assert np.isfinite(estimate).all() and (std[mask[:2]] == 0).all() and (std[~mask[:2]] > 0).all()
    figures = sorted(p.name for p in (tmp_path / "solve-figures").iterdir())
    assert figures == ["reconstruct-0.png", "reconstruct-1.png"]


def test_solve_with_observations_and_a_truth_file(
    student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "truth.h5", n=2)
    fields = np.stack([PDE16.generate(i) for i in range(2)])
    _, mask = observations(n=2)
    # one (C, S, S) 0/1 mask shared by both instances; observations need not equal the truth
    noisy = np.where(mask[0], fields + 0.01, np.nan)
    obs = write_obs(tmp_path / "obs.hdf5", values=noisy, mask=mask[0].astype(np.uint8))
    out = tmp_path / "solve.h5"
    code, stdout, err = cli_run(solve(student, out, "--obs", str(obs), "--data", str(data)), capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["rel_l2_solution"] > 0 and summary["error_rate"] is not None
    with h5py.File(out) as handle:
        truth, estimate, got_mask = (handle[k][()] for k in ("truth", "estimate", "mask"))
    shared = np.broadcast_to(mask[0], got_mask.shape)
    np.testing.assert_array_equal(got_mask, shared)
    np.testing.assert_array_equal(estimate[shared], noisy[shared].astype(np.float32))
    np.testing.assert_allclose(truth, fields, rtol=1e-6)


def test_solve_refuses_bad_combinations_before_any_work(
    student: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "truth.h5", n=4)
    values, mask = observations(n=3)
    good = write_obs(tmp_path / "obs.npz", values=values, mask=mask)
    empty = mask.copy()
    empty[0] = False
    cases = [
        ([], "exactly one of --obs-fraction"),
        (["--obs", str(good), "--obs-fraction", "0.1", "--data", str(data)], "exactly one"),
        (["--obs-fraction", "0.1"], "pass it with --data"),
        (["--obs", str(tmp_path / "nope.npz")], "does not exist"),
        (["--obs", str(data.with_suffix(".csv"))], "unsupported file type"),
        (["--obs", str(data)], "no 'values' dataset"),  # a dataset file is not observations
        (["--obs", str(good), "--data", str(data), "--n", "4"], "hold 3 instance(s)"),
        (["--obs", str(write_obs(tmp_path / "e.npz", values=values, mask=empty))], "no node"),
        (["--obs", str(good), "--figures", str(good)], "is a file"),
    ]
    out = tmp_path / "o.h5"
    for options, message in cases:
        code, stdout, err = cli_run(solve(student, out, *options), capsys)
        assert code == 2 and stdout == "", (options, err)
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
        assert not out.exists() and not (tmp_path / "o-figures").exists()
    (tmp_path / "q-figures").write_text("a file where the default figure directory goes")
    code, _, err = cli_run(solve(student, tmp_path / "q.h5", "--obs", str(good)), capsys)
    assert code == 2 and "q-figures exists and is not a directory" in err
    assert not (tmp_path / "q.h5").exists()
