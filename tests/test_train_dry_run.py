"""``piddm train --dry-run``: validates the config, the dataset and the network (built on the
meta device) and writes nothing; every problem is a one-line error with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import tiny_config_dict
from helpers import cli_run


def write(path: Path, raw: dict) -> str:
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_dry_run_reports_the_network_and_data_and_writes_nothing(
    darcy16_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", tiny_config_dict(darcy16_dataset, tmp_path / "runs"))
    code, out, err = cli_run(["train", "--config", config, "--dry-run", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["dry_run"] is True and summary["data_samples"] == 32
    assert summary["config"]["pde"] == {"name": "darcy", "resolution": 16, "params": {}}
    assert 1_000 < summary["parameters"] < 100_000  # the ~20 k-parameter tiny U-Net
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no run directory
    code, out, _ = cli_run(["train", "--config", config, "--dry-run", "--steps", "7"], capsys)
    assert code == 0 and out.startswith("config OK: darcy 16^2 teacher") and "7 steps" in out


def test_dry_run_accepts_a_dataset_that_would_be_generated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tiny_config_dict(tmp_path / "later.h5", tmp_path / "runs")
    raw["data"]["n"] = 4
    code, out, err = cli_run(
        ["train", "--config", write(tmp_path / "c.yaml", raw), "--dry-run"], capsys
    )
    assert code == 0, err
    assert "to be generated: 4 samples" in out and not (tmp_path / "later.h5").exists()


@pytest.mark.parametrize(
    ("change", "extra", "message"),
    [
        ({"kind": "piddm"}, [], "'piddm train' trains teachers"),
        ({"data": {"path": "missing.h5"}}, [], "missing.h5 does not exist (set data.n"),
        ({}, ["--data", "missing.h5"], "dataset missing.h5 does not exist"),
        ({"pde": {"name": "poisson", "resolution": 16}}, [], "holds PDE 'darcy'"),
        ({"data": {"n_holdout": 32}}, [], "leaves no training samples"),
        ({"train": {"init_from": "nowhere-16-teacher"}}, [], "no pretrained model named"),
        ({"net": {"channel_mult": [2**62, 2]}}, [], "config net: cannot build the network"),
    ],
)
def test_dry_run_refuses_what_training_would_refuse(
    darcy16_dataset: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict,
    extra: list[str],
    message: str,
) -> None:
    raw = tiny_config_dict(darcy16_dataset, tmp_path / "runs")
    for key, value in change.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    config = write(tmp_path / "c.yaml", raw)
    code, out, err = cli_run(["train", "--config", config, "--dry-run", *extra], capsys)
    assert code == 2 and out == "" and message in err, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
