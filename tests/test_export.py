"""Exporting a run as a pretrained model: float16 weights, a measured card, the docs page."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_dataset, tiny_config_dict, tiny_start_config_dict
from piddm.checkpoint import load_model, read_checkpoint
from piddm.config import config_from_dict
from piddm.data import read_dataset
from piddm.errors import PiddmError
from piddm.export import (
    ModelCard,
    check_start,
    export_weights,
    model_card,
    read_cards,
    render_cards,
    start_card,
    start_student,
    write_card,
)
from piddm.tasks.amortise import amortise
from piddm.tasks.latent import START_CONFIG
from piddm.training import train


def test_export_writes_float16_weights_and_a_card_measured_on_them(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "d.h5", n=24)
    cfg = config_from_dict(tiny_config_dict(data, tmp_path / "runs", steps=3, checkpoint_every=3))
    run = train(cfg, run_dir=tmp_path / "run", device="cpu", progress=False).run_dir

    weights = export_weights(run, "darcy-16-tiny", tmp_path)
    tensors, metadata = read_checkpoint(weights)
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    assert metadata["pretrained"] == {"name": "darcy-16-tiny", "source_step": 3, "dtype": "float16"}
    exported, _ = load_model(weights)
    original, _ = load_model(run)
    for (name, a), (_, b) in zip(
        exported.state_dict().items(), original.state_dict().items(), strict=True
    ):
        assert a.dtype == torch.float32, name  # rebuilt in float32
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)  # float16 round-off only

    reference = read_dataset(data).fields
    source = {
        "config": "c.yaml",
        "command": "piddm train",
        "pipeline": "p.sh",
        "steps": 3,
        "train_seconds": 1.0,
        "machine": "test",
    }
    card = model_card(weights, reference, source, {"train": "t", "test": "r"}, n_eval=8)
    assert card.name == "darcy-16-tiny" and card.kind == "teacher" and card.nfe == 7
    assert card.eval["n"] == 8 and np.isfinite(card.eval["residual_mean"])
    assert card.check["denoising_mse"] > 0 and card.check["residual_mean"] > 0
    assert card.size_bytes == weights.stat().st_size

    write_card(card, tmp_path)
    (again,) = read_cards(tmp_path)
    assert again == card and isinstance(again, ModelCard)
    page = render_cards([again])
    assert "| `darcy-16-tiny` | teacher |" in page and "## `darcy-16-tiny`" in page
    ev = card.eval
    for key in ("solver_consistency", "relative_residual_mean"):  # the 8 samples' means
        low, high = ev[f"{key}_ci"]
        assert low < ev[key] < high
    for key in ("solver_consistency_median", "relative_residual_median"):
        low, high = ev[f"{key}_ci"]
        assert low <= ev[key] <= high and ev[key] > 0
    assert "| consistency median / mean | rel. residual median / mean |" in page
    row = next(line for line in page.splitlines() if line.startswith("| `darcy-16-tiny`"))
    cells = row.split(" | ")
    assert cells[6] == f"{ev['solver_consistency_median']:.3g} / {ev['solver_consistency']:.3g}"
    assert cells[7] == (
        f"{ev['relative_residual_median']:.3g} / {ev['relative_residual_mean']:.3g}"
    )
    low, high = ev["solver_consistency_median_ci"]
    assert f"solver consistency median {ev['solver_consistency_median']:.3g} [{low:.3g}" in page
    # A card measured before the scale-free measures existed still renders.
    old_eval = {
        k: v for k, v in ev.items() if "relative" not in k and not k.endswith(("_ci", "_median"))
    }
    old_eval["residual_median"] = ev["residual_median"]
    old_page = render_cards([ModelCard(**{**asdict(card), "eval": old_eval})])
    old_row = next(line for line in old_page.splitlines() if line.startswith("| `darcy-16-tiny`"))
    assert old_row.split(" | ")[6:8] == [f"- / {ev['solver_consistency']:.3g}", "-"]
    assert f"solver consistency mean {ev['solver_consistency']:.3g}; residual" in old_page


def test_a_start_network_of_a_shipped_student_exports_with_its_task_card(tmp_path: Path) -> None:
    """A start network trained with the shipped ``darcy-32-piddm`` (2 steps of a tiny U-Net)
    exports with a card of ``piddm solve --start``'s task errors and its check on fresh
    instances; one trained with another student cannot ship."""
    data = make_dataset(tmp_path / "d32.h5", resolution=32, n=12)
    cfg = tiny_start_config_dict(
        data,
        tmp_path / "runs",
        n_holdout=0,
        start={"tasks": ["inverse"], "obs_fraction_min": 0.02, "obs_fraction_max": 0.05},
        steps=2,
        checkpoint_every=2,
    )
    cfg["pde"]["resolution"] = 32
    run = amortise(
        config_from_dict(cfg),
        "darcy-32-piddm",
        run_dir=tmp_path / "r",
        device="cpu",
        progress=False,
    )
    weights = export_weights(run.run_dir, "darcy-32-start-tiny", tmp_path)
    source = {"config": "c.yaml", "command": "piddm amortise", "steps": 2, "train_seconds": 1.0}
    card = start_card(
        weights,
        read_dataset(data).fields,
        {**source, "machine": "test"},
        {"train": "t", "test": "r"},
        n_eval=3,
    )
    assert card.kind == "start" and card.source["student"] == "darcy-32-piddm"
    assert card.eval["n"] == 3 and list(card.eval["tasks"]) == ["inverse"]
    alone, solved = card.eval["tasks"]["inverse"].items()
    assert alone[0] == "4 x 0" and solved[0] == f"4 x {START_CONFIG.steps}"
    assert 0 <= solved[1]["error_rate"] <= 1 and solved[1]["seconds_per_instance"] > 0
    model, metadata = load_model(weights)
    assert card.check["tasks"] == check_start(model, metadata)  # deterministic
    write_card(card, tmp_path)
    page = render_cards(read_cards(tmp_path))
    assert "## Start networks" in page and "### `darcy-32-start-tiny`" in page
    row = next(line for line in page.splitlines() if line.startswith("| `darcy-32-start-tiny`"))
    assert row.split(" | ")[1:3] == ["`darcy-32-piddm`", "inverse"]

    other = {**metadata, "student": {"path": str(tmp_path / "runs" / "my-student")}}
    with pytest.raises(PiddmError, match="must be trained with a shipped student"):
        start_student(other)
