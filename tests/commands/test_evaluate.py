"""``piddm eval``: the scale-free physics measures, their intervals and the text report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset
from piddm.cli import main
from piddm.data import read_dataset, write_dataset
from piddm.pdes import get_pde

NEW_KEYS = (
    "relative_residual_mean",
    "relative_residual_median",
    "solver_consistency_median",
    "residual_mean_ci",
    "relative_residual_mean_ci",
    "relative_residual_median_ci",
    "solver_consistency_ci",
    "solver_consistency_median_ci",
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Poisson 16^2 solver samples, a reference, and the samples with solutions scaled by
    ``1 + 0.2 z`` (one ``z ~ N(0, 1)`` per sample: consistency ``|0.2 z|`` each)."""
    root = tmp_path_factory.mktemp("eval")
    samples = make_dataset(root / "samples.h5", "poisson", n=12)
    reference = make_dataset(root / "reference.h5", "poisson", n=24)
    fields = read_dataset(samples).fields.copy()
    factors = 1.0 + 0.2 * np.random.default_rng(0).standard_normal(len(fields))
    fields[:, 1] *= factors[:, None, None]
    scaled = write_dataset(
        root / "scaled.h5", fields, np.arange(len(fields)), get_pde("poisson", 16)
    )
    return {"samples": samples, "reference": reference, "scaled": scaled, "factors": factors}


def eval_json(capsys: pytest.CaptureFixture[str], samples: Path, reference: Path, *flags: str):
    code, out, err = run(
        capsys, "eval", "--samples", str(samples), "--reference", str(reference), "--json", *flags
    )
    assert code == 0, err
    return json.loads(out)


def test_json_has_the_physics_measures_with_intervals(files, capsys) -> None:
    solver = eval_json(capsys, files["samples"], files["reference"])
    for key in NEW_KEYS:
        assert key in solver, key
    for key in ("solver_consistency", "solver_consistency_median", "relative_residual_mean"):
        assert 0 <= solver[key] < 1e-6, key  # solver data, stored in float32: round-off
    # The exact consistency of every scaled sample (to the float32 storage's round-off).
    errors = np.abs(files["factors"] - 1.0)
    scaled = eval_json(capsys, files["scaled"], files["reference"])
    assert scaled["solver_consistency"] == pytest.approx(errors.mean(), rel=1e-4)
    assert scaled["solver_consistency_median"] == pytest.approx(np.median(errors), rel=1e-4)
    # Linear PDE: scaling u* by c leaves |c - 1| of the source as residual.
    assert scaled["relative_residual_median"] == pytest.approx(np.median(errors), rel=1e-4)
    for key in NEW_KEYS:
        if key.endswith("_ci"):
            low, high = scaled[key]
            assert low < scaled[key.removesuffix("_ci")] < high, key
    low, high = scaled["solver_consistency_ci"]
    half = 1.96 * errors.std(ddof=1) / np.sqrt(len(errors))
    assert (low, high) == pytest.approx((errors.mean() - half, errors.mean() + half), rel=1e-4)


def test_no_consistency_leaves_every_consistency_key_null(files, capsys) -> None:
    report = eval_json(capsys, files["scaled"], files["reference"], "--no-consistency")
    consistency = [k for k in report if k.startswith("solver_consistency")]
    assert len(consistency) == 4 and all(report[k] is None for k in consistency)
    assert report["relative_residual_mean_ci"] is not None


def test_text_leads_with_consistency_and_labels_the_residual_a_diagnostic(files, capsys) -> None:
    code, out, err = run(
        capsys, "eval", "--samples", str(files["scaled"]), "--reference", str(files["reference"])
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].lstrip().startswith("solver consistency") and "median" in lines[1]
    assert lines[1].count("[") == 2  # median and mean, each with its interval
    assert lines[2].lstrip().startswith("relative residual")
    assert "diagnostic" in lines[-1] and "residual" in lines[-1]
    code, out, _ = run(
        capsys,
        "eval",
        "--samples",
        str(files["scaled"]),
        "--reference",
        str(files["reference"]),
        "--no-consistency",
    )
    assert code == 0 and "not measured" in out.splitlines()[1]
