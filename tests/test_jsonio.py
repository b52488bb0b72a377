"""The one JSON encoder of ``--json`` and ``bench.json`` (:mod:`piddm.jsonio`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from piddm.jsonio import emit_json, json_default


def test_json_default_numbers_and_paths():
    payload = {"a": np.float32(0.5), "b": torch.tensor(3), "c": Path("x") / "y", "d": np.int64(2)}
    assert json.loads(json.dumps(payload, default=json_default)) == {
        "a": 0.5,
        "b": 3,
        "c": str(Path("x") / "y"),
        "d": 2,
    }


def test_json_default_refuses_other_objects():
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        json.dumps({"x": object()}, default=json_default)


def test_emit_json_one_sorted_line(capsys: pytest.CaptureFixture[str]):
    emit_json({"b": np.float64(1.0), "a": 1})
    assert capsys.readouterr().out == '{"a": 1, "b": 1.0}\n'
