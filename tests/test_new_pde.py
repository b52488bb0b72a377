"""A new PDE is one file: the worked example of docs/adding-a-pde.md (reaction-diffusion,
``-lap u + c u = a``, ``u = 0`` on the boundary), run as written from a module outside the
package, gets data generation (library and CLI), masks, metrics, figures and a tiny teacher
without any other file of the package knowing its name.

The module is written to ``tmp_path`` and imported (which registers it), or loaded through a
``piddm.pdes`` entry point; each test leaves the registry as it found it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from conftest import tiny_config_dict
from piddm.baselines import diffusionpde_settings
from piddm.checkpoint import load_model
from piddm.cli import main
from piddm.config import config_from_dict
from piddm.data import load_normalised
from piddm.demo import demo_pdes
from piddm.errors import PiddmError
from piddm.metrics import physics_summary, task_metrics
from piddm.pdes import PDE_REGISTRY, available_pdes, get_pde, registry, unregister_pde
from piddm.plotting import plot_dataset_samples
from piddm.sampling import pde_of
from piddm.tasks import make_mask, plot_task_instance
from piddm.training import train

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-pde.md"
NAME = "reaction"
MODULE = "piddm_reaction_example"
S = 16


def example_source() -> str:
    """The first ``python`` block of docs/adding-a-pde.md: the PDE module, as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks and "@register_pde" in blocks[0], "docs/adding-a-pde.md lost its example"
    return blocks[0]


def forget(name: str, module: str) -> None:
    """Undo an import of the example: registry entry and module."""
    if name in PDE_REGISTRY:
        unregister_pde(name)
    sys.modules.pop(module, None)


@pytest.fixture
def example(tmp_path: Path) -> Iterator[ModuleType]:
    """The example imported from a file outside the package (its import registers it)."""
    assert NAME not in PDE_REGISTRY
    path = tmp_path / f"{MODULE}.py"
    path.write_text(example_source())
    spec = importlib.util.spec_from_file_location(MODULE, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        forget(NAME, MODULE)


def test_importing_the_module_registers_the_pde(example: ModuleType) -> None:
    assert NAME in available_pdes() and PDE_REGISTRY[NAME] is example.Reaction
    pde = get_pde(NAME, S, c=2.0)
    assert pde.params == {"c": 2.0} and pde.channels == ("a", "u")
    with pytest.raises(PiddmError, match="parameter c of PDE 'reaction' must be >= 0"):
        get_pde(NAME, S, c=-1.0)
    assert NAME not in demo_pdes()  # no shipped models, so no demo


def test_the_physics_of_the_example(example: ModuleType) -> None:
    """Solver and residual agree (consistency), the residual converges at O(h^2), is
    differentiable, and its preconditioned form is the squared solution error."""
    pde = get_pde(NAME, S)
    x = torch.from_numpy(np.stack([pde.generate(seed) for seed in range(3)]))
    assert float(pde.relative_residual(x).max()) < 1e-10
    assert not np.allclose(pde.generate(0), pde.generate(1))

    errors = []
    for resolution in (17, 33, 65):
        fine = get_pde(NAME, resolution)
        field, source = fine.manufactured_solution()
        errors.append(float(fine.residual(field, source=source)[0].abs().max()))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(order - 2.0) <= 0.2 for order in orders), orders

    small = get_pde(NAME, 8)
    y = torch.from_numpy(small.generate(0))[None] + 0.01
    assert torch.autograd.gradcheck(small.residual, (y.requires_grad_(True),))

    moved = x.clone()
    delta = 1e-3 * torch.randn(x[:, 1].shape, generator=torch.Generator().manual_seed(0))
    moved[:, 1] += delta.double()
    torch.testing.assert_close(
        pde.preconditioned_residual(moved), delta.double().square().mean(dim=(-2, -1))
    )


def test_the_layers_above_use_the_default_hooks(example: ModuleType, tmp_path: Path) -> None:
    pde = get_pde(NAME, S)
    truth = np.stack([pde.generate(seed) for seed in range(2)])
    gen = torch.Generator().manual_seed(0)
    forward = make_mask(pde, "forward", 0.1, gen, n=2)
    inverse = make_mask(pde, "inverse", 0.1, gen, n=2)
    assert forward[:, 0].any() and not forward[:, 1].any()  # the coefficient only
    assert inverse[:, 1].any() and not inverse[:, 0].any()  # the solution only

    estimate = truth * 1.1
    metrics = task_metrics(pde, estimate, truth)
    assert metrics["error_rate"] is None  # no threshold declared
    assert metrics["rel_l2_solution"] == pytest.approx(0.1)
    assert physics_summary(pde, truth)["solver_consistency"] < 1e-10

    figure = plot_task_instance(
        pde, truth[0], estimate[0], estimate[0] * 0, forward[0], tmp_path / "t.png"
    )
    assert figure.stat().st_size > 1000
    assert plot_dataset_samples(truth, pde, tmp_path / "s.png").stat().st_size > 1000

    with pytest.raises(PiddmError, match="no DiffusionPDE defaults for PDE 'reaction'"):
        diffusionpde_settings(pde)
    assert diffusionpde_settings(pde, zeta_obs=1.0).zeta_obs == 1.0


def test_data_generation_and_a_tiny_teacher(
    example: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``piddm data generate reaction`` (in-process CLI), then a few steps of the teacher."""
    data = tmp_path / "reaction16.h5"
    with pytest.raises(SystemExit) as info:
        main(["data", "generate", NAME, "-s", str(S), "--n", "24", "--out", str(data), "--json"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    assert json.loads(out)["pde"] == NAME
    fields, file_pde = load_normalised(data, pde=NAME, resolution=S)
    assert fields.shape == (24, 2, S, S) and file_pde.name == NAME

    raw = tiny_config_dict(data, tmp_path / "runs", steps=4, log_every=2, num_samples=2)
    raw["pde"] = {"name": NAME, "resolution": S}
    raw["data"]["n_holdout"] = 4
    result = train(config_from_dict(raw), device="cpu", progress=False)
    assert result.steps == 4 and result.run_dir.name == f"00000-{NAME}-{S}-tiny"
    stats = [json.loads(line) for line in (result.run_dir / "stats.jsonl").read_text().splitlines()]
    assert all(np.isfinite(record["loss"]) for record in stats)
    assert np.isfinite(result.extra["sample_residual_mean"])
    assert (result.run_dir / "figures" / "samples.png").is_file()
    model, metadata = load_model(result.run_dir)
    assert pde_of(metadata).name == NAME
    with torch.no_grad():
        out_x = model(torch.randn(2, 2, S, S), torch.full((2,), 1.0))
    assert out_x.shape == (2, 2, S, S) and torch.isfinite(out_x).all()


def test_an_entry_point_registers_an_installed_pde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package names its module in the ``piddm.pdes`` entry-point group; the
    registry imports it on first use, and a broken plugin is a user error naming it."""
    saved = unregister_pde(NAME) if NAME in PDE_REGISTRY else None
    (tmp_path / f"{MODULE}.py").write_text(example_source())
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = [EntryPoint(NAME, MODULE, registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: plugins)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        assert get_pde(NAME, S).name == NAME
        assert NAME in available_pdes()
        forget(NAME, MODULE)
        plugins[:] = [EntryPoint("broken", "piddm_no_such_module", registry.ENTRY_POINT_GROUP)]
        monkeypatch.setattr(registry, "_plugins_loaded", False)
        with pytest.raises(PiddmError, match="PDE plugin 'broken' .* failed to load"):
            available_pdes()
    finally:
        forget(NAME, MODULE)
        if saved is not None:
            PDE_REGISTRY[NAME] = saved
