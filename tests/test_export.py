"""Exporting a run as a pretrained model: float16 weights, a measured card, the docs page."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from conftest import make_dataset, tiny_config_dict
from piddm.checkpoint import load_model, read_checkpoint
from piddm.config import config_from_dict
from piddm.data import read_dataset
from piddm.export import ModelCard, export_weights, model_card, read_cards, render_cards, write_card
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
