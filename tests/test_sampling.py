"""`piddm sample` / `piddm eval`: seeded, batch-independent sampling and the eval contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_dataset, tiny_config_dict
from helpers import cli_run
from piddm.config import config_from_dict
from piddm.data import read_dataset
from piddm.models import load_any
from piddm.sampling import generate_samples, make_sampler, pde_of
from piddm.training import train


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    data = make_dataset(root / "d.h5", n=24)
    cfg = config_from_dict(tiny_config_dict(data, root / "runs", steps=4, checkpoint_every=4))
    return train(cfg, run_dir=root / "run", device="cpu", progress=False).checkpoint


def test_samples_do_not_depend_on_the_batch_size(teacher: Path) -> None:
    model, meta = load_any(teacher)
    pde = pde_of(meta)
    sampler, nfe = make_sampler(model, meta, pde, steps=3)
    shape = (pde.num_channels, pde.resolution, pde.resolution)
    a = generate_samples(
        sampler, nfe, shape, 6, 11, pde.normalisation.denormalise, batch_size=6, progress=False
    )
    b = generate_samples(
        sampler, nfe, shape, 6, 11, pde.normalisation.denormalise, batch_size=4, progress=False
    )
    c = generate_samples(
        sampler, nfe, shape, 2, 11, pde.normalisation.denormalise, batch_size=1, progress=False
    )
    assert nfe == 5  # Heun: 2 x 3 - 1
    np.testing.assert_allclose(a.fields, b.fields, rtol=1e-4, atol=1e-4)  # float32 round-off
    np.testing.assert_allclose(a.fields[:2], c.fields, rtol=1e-4, atol=1e-4)  # float32 round-off
    np.testing.assert_array_equal(a.seeds, b.seeds)
    other = generate_samples(
        sampler, nfe, shape, 2, 12, pde.normalisation.denormalise, progress=False
    )
    assert not np.allclose(other.fields, c.fields)


def test_sample_and_eval_cli(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.h5"
    code, stdout, err = cli_run(
        [
            "sample",
            "--model",
            str(teacher),
            "--n",
            "8",
            "--steps",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["n"] == 8 and summary["nfe"] == 3 and summary["out"] == str(out)
    assert summary["seconds_per_sample"] > 0
    samples = read_dataset(out, check_finite=False)
    assert samples.fields.shape == (8, 2, 16, 16) and samples.pde.name == "darcy"
    reference = make_dataset(tmp_path / "ref.h5", n=20)
    code, stdout, err = cli_run(
        ["eval", "--samples", str(out), "--reference", str(reference), "--json"], capsys
    )
    assert code == 0, err
    report = json.loads(stdout)
    for key in (
        "residual_mean",
        "residual_median",
        "reference_residual_mean",
        "mmse",
        "smse",
        "mmse_floor",
        "smse_floor",
        "sfd",
        "sfd_floor",
        "solver_consistency",
    ):
        assert report[key] is not None and np.isfinite(report[key]), key
    assert report["reference_residual_mean"] < 1e-8 < report["residual_mean"]


def test_sample_refuses_a_model_of_another_pde_or_resolution(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags, message in (
        (["--pde", "poisson"], "trained for PDE 'darcy'"),
        (["--resolution", "32"], "resolution 16"),
    ):
        code, _, err = cli_run(
            [
                "sample",
                "--model",
                str(teacher),
                "--n",
                "2",
                *flags,
                "--out",
                str(tmp_path / "x.h5"),
            ],
            capsys,
        )
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()
    poisson = make_dataset(tmp_path / "p.h5", name="poisson", n=6)
    code, _, err = cli_run(
        [
            "eval",
            "--samples",
            str(poisson),
            "--reference",
            str(make_dataset(tmp_path / "d.h5", n=6)),
        ],
        capsys,
    )
    assert code == 2 and "poisson" in err
