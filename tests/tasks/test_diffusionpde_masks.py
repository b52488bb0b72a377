"""DiffusionPDE's observation masks and Darcy error rate (docs/diffusionpde.md).

The masks are checked against an independent, straightforward re-implementation of
DiffusionPDE's ``random_index`` (seed numpy's global generator, ``choice`` without
replacement, C-order unravel, set the nodes one by one), on fixed seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from conftest import make_dataset
from helpers import cli_user_error
from piddm.cli import main
from piddm.metrics import error_rate
from piddm.pdes import get_pde
from piddm.tasks import MASK_MODES, task_masks
from piddm.tasks.diffusionpde import (
    diffusionpde_error_rate,
    diffusionpde_masks,
    observed_count,
    random_index,
    random_index_order,
)


def reference_random_index(k: int, grid: int, seed: int) -> np.ndarray:
    """What DiffusionPDE's random_index does, step by step, on numpy's global generator."""
    state = np.random.get_state()  # noqa: NPY002 (DiffusionPDE uses the global generator)
    try:
        np.random.seed(seed)  # noqa: NPY002
        flat = np.random.choice(grid**2, k, replace=False)  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    mask = np.zeros((grid, grid), dtype=np.float32)
    for i, j in zip(*np.unravel_index(flat, (grid, grid)), strict=True):
        mask[i, j] = 1
    return mask


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 12345])
def test_random_index_equals_diffusionpdes_generator(seed: int) -> None:
    mask = random_index(500, 128, seed)
    assert mask.dtype == np.bool_ and mask.shape == (128, 128) and mask.sum() == 500
    assert np.array_equal(mask, reference_random_index(500, 128, seed) == 1)
    # legacy choice without replacement is the first k of a permutation: the same order
    order = np.random.RandomState(seed).permutation(128**2)[:500]
    assert np.array_equal(random_index_order(500, 128, seed), order)


def test_random_index_leaves_numpys_global_generator_alone() -> None:
    before = np.random.get_state()  # noqa: NPY002
    random_index(500, 128, 1)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], before[1]) and after[2] == before[2]


def test_the_first_points_are_pinned() -> None:
    """DiffusionPDE's first drawn nodes (numpy's legacy stream is frozen; this guards it)."""
    assert random_index_order(500, 128, 1)[:6].tolist() == [8129, 11743, 11536, 10017, 7369, 14239]
    assert random_index_order(500, 128, 0)[:6].tolist() == [3180, 10131, 7536, 598, 5136, 10762]


def test_observed_count_keeps_the_observed_fraction() -> None:
    assert [observed_count(s) for s in (8, 16, 32, 64, 128, 256)] == [2, 8, 31, 125, 500, 2000]


@pytest.mark.parametrize("resolution", [32, 128])
def test_task_masks_observe_their_channels_with_their_seeds(resolution: int) -> None:
    pde = get_pde("darcy", resolution)
    k = observed_count(resolution)
    a_points = torch.from_numpy(reference_random_index(k, resolution, 1) == 1)
    u_points = torch.from_numpy(reference_random_index(k, resolution, 0) == 1)
    forward = diffusionpde_masks(pde, "forward", n=3)
    inverse = diffusionpde_masks(pde, "inverse", n=3)
    both = diffusionpde_masks(pde, "reconstruct", n=3)
    assert forward.shape == (3, 2, resolution, resolution) and forward.dtype == torch.bool
    for i in range(3):  # the same points for every instance
        assert torch.equal(forward[i, 0], a_points) and not forward[i, 1].any()
        assert torch.equal(inverse[i, 1], u_points) and not inverse[i, 0].any()
        assert torch.equal(both[i, 0], a_points) and torch.equal(both[i, 1], u_points)
    generator = torch.Generator().manual_seed(99)
    assert torch.equal(task_masks(pde, "inverse", 0.5, generator, 3, "diffusionpde"), inverse)
    assert "diffusionpde" in MASK_MODES


def test_bad_mask_requests_are_user_errors() -> None:
    from piddm.errors import PiddmError

    with pytest.raises(PiddmError, match="not burgers"):
        diffusionpde_masks(get_pde("burgers", 16), "forward")
    with pytest.raises(PiddmError, match="unknown mask mode"):
        task_masks(get_pde("darcy", 16), "forward", 0.1, torch.Generator(), 1, "grid")


def reference_error_rate(estimate: np.ndarray, truth: np.ndarray) -> float:
    """DiffusionPDE's Darcy error rate of one instance, as its script computes it."""
    decoded = estimate.copy()
    decoded[decoded > 7.5] = 12
    decoded[decoded <= 7.5] = 3
    return 1 - np.sum(decoded == truth) / (truth.shape[0] * truth.shape[1])


def test_error_rate_is_diffusionpdes() -> None:
    rng = np.random.default_rng(0)
    truth = np.where(rng.standard_normal((5, 16, 16)) > 0, 12.0, 3.0)
    estimate = truth + rng.normal(0, 4, truth.shape)
    estimate[0, 0, 0] = 7.5  # the boundary case decodes to 3
    rates = diffusionpde_error_rate(estimate, truth)
    expected = [reference_error_rate(e, t) for e, t in zip(estimate, truth, strict=True)]
    assert rates.tolist() == expected and 0.05 < rates.mean() < 0.5
    assert np.array_equal(rates, error_rate(estimate, truth, 7.5))  # piddm's, on a 3/12 truth
    odd = truth.copy()
    odd[:, 0, 0] = 11.0  # a truth that is neither 3 nor 12 never matches
    assert np.all(diffusionpde_error_rate(odd, odd) == 1 / 256)


# ----------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def darcy32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("d32") / "darcy32.h5", resolution=32, n=2)


def test_solve_with_diffusionpde_masks(darcy32: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "inverse.h5"
    args = ["solve", "inverse", "--model", "darcy-32-piddm", "--data", str(darcy32)]
    args += ["--masks", "diffusionpde", "--ensemble", "1", "--candidates", "0", "--steps", "1"]
    with pytest.raises(SystemExit) as info:
        main([*args, "--out", str(out), "--json"])
    stdout, _ = capsys.readouterr()
    assert info.value.code == 0
    summary = json.loads(stdout)
    with h5py.File(out, "r") as handle:
        mask = handle["mask"][...]
        assert handle.attrs["masks"] == "diffusionpde" and handle.attrs["obs_count"] == 31
    expected = diffusionpde_masks(get_pde("darcy", 32), "inverse", n=2).numpy()
    assert np.array_equal(mask, expected)
    with h5py.File(darcy32, "r") as handle:
        truth = handle["fields"][:, 0].astype(np.float64)
    with h5py.File(out, "r") as handle:
        estimate = handle["estimate"][:, 0].astype(np.float64)
    rate = diffusionpde_error_rate(estimate, truth).mean()
    assert summary["error_rate_diffusionpde"] == pytest.approx(rate)
    assert summary["error_rate_diffusionpde"] == pytest.approx(summary["error_rate"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--obs-fraction", "0.1"], "drop --obs-fraction"),
        (["--no-data"], "pass it with --data"),
    ],
)
def test_solve_mask_flag_conflicts(
    extra: list[str], message: str, darcy32: Path, tmp_path: Path, capsys
) -> None:
    args = ["solve", "forward", "--model", "darcy-32-piddm", "--masks", "diffusionpde"]
    if extra != ["--no-data"]:
        args += ["--data", str(darcy32), *extra]
    line = cli_user_error(capsys, *args, "--out", str(tmp_path / "x.h5"))
    assert message in line
    assert list(tmp_path.iterdir()) == []


def test_bench_config_key(tmp_path: Path, capsys) -> None:
    from piddm.bench import load_bench_config
    from piddm.errors import PiddmError

    shipped = Path(__file__).parents[2] / "configs" / "bench-darcy-128-diffusionpde-gpu.yaml"
    assert load_bench_config(shipped).tasks.masks == "diffusionpde"
    raw = yaml.safe_load(shipped.read_text())
    raw["pde"] = {"name": "burgers", "resolution": 32}
    bad = tmp_path / "burgers.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(PiddmError, match="not burgers"):
        load_bench_config(bad)
