"""``piddm data ...`` end to end, including every bad input of the data issue."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from helpers import cli_run


def test_generate_show_and_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.h5"
    code, stdout, _ = cli_run(
        ["data", "generate", "darcy", "-s", "16", "--n", "6", "--out", str(out), "--json"], capsys
    )
    assert code == 0
    summary = json.loads(stdout)
    assert summary["n"] == 6 and summary["out"] == str(out)
    code, stdout, _ = cli_run(
        ["data", "show", str(out), "--out", str(tmp_path / "d.png"), "--json"], capsys
    )
    assert code == 0
    shown = json.loads(stdout)
    assert shown["residual_mean"] < 1e-8
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for i in range(2):
        args = ["data", "generate", "darcy", "-s", "16", "--n", "6", "--shard", f"{i}/2"]
        assert cli_run([*args, "--out", str(tmp_path / f"s{i}.h5"), "--quiet"], capsys)[0] == 0
    shards = [str(tmp_path / "s0.h5"), str(tmp_path / "s1.h5")]
    assert cli_run(["data", "merge", *shards, "--out", str(tmp_path / "m.h5")], capsys)[0] == 0
    assert (tmp_path / "m.h5").read_bytes() == out.read_bytes()


def test_show_says_why_a_files_residual_is_at_float32_round_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d.h5"
    args = ["data", "generate", "darcy", "-s", "32", "--n", "4", "--out", str(out), "--quiet"]
    assert cli_run(args, capsys)[0] == 0
    show = ["data", "show", str(out), "--out", str(tmp_path / "d.png"), "-k", "2"]
    code, stdout, _ = cli_run([*show, "--json"], capsys)
    shown = json.loads(stdout)
    assert code == 0 and shown["dtype"] == "float32" and shown["n_resolved"] == 2
    # float32 storage: far above float64 round-off; the same inputs solved again: at it
    assert 1e-14 < shown["residual_mean"] < 1e-8
    assert shown["resolved_float64_residual_mean"] < 1e-24
    code, stdout, _ = cli_run(show, capsys)
    lines = stdout.splitlines()
    assert code == 0 and len(lines) == 3
    assert "fields stored as float32" in lines[0] and "residual at float32 round-off" in lines[1]
    assert f"{shown['resolved_float64_residual_mean']:.2e}" in lines[1]
    assert lines[2] == f"figure: {tmp_path / 'd.png'}"


def _foreign(tmp_path: Path) -> str:
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as handle:
        handle["x"] = [1.0]
    return str(path)


BAD_GENERATE = [
    (["navier", "-s", "16", "--n", "2"], "unknown PDE"),
    (["darcy", "-s", "4", "--n", "2"], "resolution"),
    (["darcy", "-s", "16", "--n", "0"], "--n must be positive"),
    (["darcy", "-s", "16", "--n", "-3"], "--n must be positive"),
    (["darcy", "-s", "16", "--n", "2", "--workers", "0"], "--workers"),
    (["darcy", "-s", "16", "--n", "2", "--shard", "3/2"], "shard"),
    (["darcy", "-s", "16", "--n", "2", "--param", "k=1"], "unknown parameter"),
    (["darcy", "-s", "abc", "--n", "2"], "not a valid integer"),
]


@pytest.mark.parametrize(("args", "message"), BAD_GENERATE)
def test_bad_generate_input_is_one_line_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.h5"
    code, stdout, stderr = cli_run(["data", "generate", *args, "--out", str(out)], capsys)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_output_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "exists.h5"
    existing.write_bytes(b"keep me")
    base = ["data", "generate", "poisson", "-s", "16", "--n", "2"]
    code, _, err = cli_run([*base, "--out", str(existing)], capsys)
    assert code == 2 and "exists" in err and existing.read_bytes() == b"keep me"
    code, _, err = cli_run([*base, "--out", str(tmp_path / "missing" / "x.h5")], capsys)
    assert code == 2 and "does not exist" in err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = cli_run([*base, "--out", str(locked / "x.h5")], capsys)
    if code == 2:  # root ignores directory permissions; then the write simply succeeds
        assert "not writable" in err
    assert cli_run([*base, "--out", str(existing), "--overwrite", "--quiet"], capsys)[0] == 0
    assert existing.read_bytes()[:4] == b"\x89HDF"


def test_show_rejects_non_hdf5_and_foreign_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    for target, message in (
        (str(text), "not an HDF5 file"),
        (_foreign(tmp_path), "not a piddm dataset"),
    ):
        code, _, err = cli_run(["data", "show", target, "--out", str(tmp_path / "f.png")], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "f.png").exists()


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "piddm",
            "data",
            "generate",
            "darcy",
            "-s",
            "2",
            "--n",
            "1",
            "--out",
            str(tmp_path / "x.h5"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: resolution must be an integer >= 8, got 2"
