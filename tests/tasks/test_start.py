"""The amortised start: its network, objective, training run, and its use by the solver."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from conftest import (
    SUBPROCESS_ENV,
    make_dataset,
    piddm_command,
    tiny_config_dict,
    tiny_start_config_dict,
    torchrun_command,
)
from helpers import TINY_UNET, cli_run
from piddm.checkpoint import load_model, save_weights
from piddm.config import config_from_dict, load_config
from piddm.data import read_dataset
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.models import load_any
from piddm.nets import UNetConfig, build_unet
from piddm.nets.start import StartNet
from piddm.pdes import get_pde
from piddm.tasks import LatentOptConfig, make_mask, optimise_latents
from piddm.tasks.amortise import amortise
from piddm.tasks.latent import START_CONFIG
from piddm.tasks.start import StartObjective, build_start, load_start, start_latents
from piddm.training.objectives import BatchRandom
from piddm.training.teacher import build_teacher, teacher_metadata

S = 16
PDE16 = get_pde("darcy", S)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A Darcy 16^2 dataset, a one-step student with random weights, a start config."""
    root = tmp_path_factory.mktemp("start")
    data = make_dataset(root / "darcy16.h5", n=48)
    teacher_cfg = config_from_dict(tiny_config_dict(data, root / "runs"))
    torch.manual_seed(0)
    model = build_teacher(teacher_cfg, PDE16)
    nn.init.normal_(model.net.conv_out.weight, std=0.1)  # a non-trivial generator
    student = save_weights(
        root / "student.safetensors",
        model,
        {**teacher_metadata(teacher_cfg, PDE16, 0), "kind": "piddm"},
    )
    cfg = tiny_start_config_dict(
        data,
        root / "runs",
        n_holdout=8,
        start={"tasks": ["forward", "inverse"], "obs_fraction_min": 0.05, "obs_fraction_max": 0.2},
        optim={"lr": 3e-3, "warmup_steps": 2, "batch_size": 8, "ema_decay": 0.5},
        steps=40,
        checkpoint_every=20,
        seed=1,
    )
    config = root / "start.yaml"
    config.write_text(yaml.safe_dump(cfg))
    return {"root": root, "data": data, "student": student, "config": config}


def fields(path: Path, n: int) -> torch.Tensor:
    """The first ``n`` physical fields ``(n, C, S, S)`` of a dataset, float64."""
    return torch.from_numpy(read_dataset(path, limit=n).fields).double()


def test_start_net_maps_observations_and_mask_to_a_latent_and_starts_at_zero() -> None:
    cfg = config_from_dict(
        {
            "kind": "start",
            "pde": {"name": "darcy", "resolution": S},
            "net": {**TINY_UNET, "num_groups": 4},
        }
    )
    net = build_start(cfg, PDE16)
    y = torch.randn(3, 2, S, S)
    mask = torch.rand(3, 2, S, S) < 0.1
    eps = net(y, mask)
    assert eps.shape == (3, 2, S, S)
    assert torch.count_nonzero(eps) == 0  # the zero output layer
    nn.init.normal_(net.net.conv_out.weight, std=0.1)
    # Only observed values reach the network: changing an unobserved one changes nothing.
    y2 = torch.where(mask, y, y + 5.0)
    assert torch.equal(net(y, mask), net(y2, mask))
    with pytest.raises(ValueError, match="2 C input channels"):
        StartNet(build_unet(UNetConfig(in_channels=3, out_channels=2, **TINY_UNET, num_groups=4)))


def test_objective_trains_the_start_and_leaves_the_student_alone(world: dict[str, Path]) -> None:
    student, metadata = load_any(world["student"])
    generator = one_step_generator(student, metadata)
    before = [p.clone() for p in student.parameters()]
    cfg = load_config(world["config"])
    start = build_start(cfg, PDE16)
    nn.init.normal_(start.net.conv_out.weight, std=0.01)
    objective = StartObjective(PDE16, generator, ("inverse",), 0.05, 0.2, 0.1)
    batch = PDE16.normalisation.normalise(fields(world["data"], 8)).float()

    def rng(step: int) -> BatchRandom:
        return BatchRandom(torch.Generator().manual_seed(step), 8, slice(0, 8))

    loss, stats = objective.loss(start, batch, rng(0))
    loss.backward()
    assert all(p.grad is None for p in student.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in start.parameters())
    assert set(stats) == {"loss_fields", "latent_norm"}
    assert torch.equal(objective.loss(start, batch, rng(0))[0], loss.detach())  # seeded
    assert all(torch.equal(a, b) for a, b in zip(before, student.parameters(), strict=True))
    # The latent-norm term is ((|eps|^2 - d) / d)^2, d = 2 S S: zero exactly on the sphere.
    sphere = StartObjective(PDE16, generator, ("inverse",), 0.05, 0.2, 1.0)
    on_sphere = lambda y, m: torch.ones(8, 2, S, S)  # noqa: E731  (|eps|^2 = 2 S S = d)
    assert float(sphere.loss(on_sphere, batch, rng(1))[1]["latent_norm"]) == 0.0
    twice = lambda y, m: torch.full((8, 2, S, S), 2**0.5)  # noqa: E731  (|eps|^2 = 2 d)
    assert float(sphere.loss(twice, batch, rng(1))[1]["latent_norm"]) == pytest.approx(1.0)


def test_amortise_learns_resumes_and_reports_its_held_out_error(
    world: dict[str, Path], tmp_path: Path
) -> None:
    cfg = load_config(world["config"])
    run_dir = tmp_path / "run"
    half = amortise(
        cfg.replace({"train.steps": 20}),
        str(world["student"]),
        run_dir=run_dir,
        device="cpu",
        progress=False,
    )
    assert half.steps == 20
    result = amortise(
        cfg, str(world["student"]), run_dir=run_dir, resume=True, device="cpu", progress=False
    )
    assert result.resumed_from == 20 and result.steps == 40
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["loss_fields"] < stats[0]["loss_fields"]
    report = result.extra["held_out"]
    assert set(report) == {"forward", "inverse"}
    assert 0 < report["inverse"]["rel_l2_coefficient"] < 2
    model, metadata = load_model(result.checkpoint)
    assert isinstance(model, StartNet) and metadata["kind"] == "start"
    assert metadata["student"]["path"] == str(world["student"])
    # A trained start beats the untrained one (eps0 = 0) on the fields it was trained for.
    student, student_meta = load_any(world["student"])
    generator = one_step_generator(student, student_meta)
    truth = fields(world["data"], 40)
    mask = make_mask(PDE16, "inverse", 0.1, torch.Generator().manual_seed(0), n=len(truth))
    untrained = build_start(cfg, PDE16)

    def error(net: nn.Module) -> float:
        field = PDE16.normalisation.normalise(truth)
        with torch.no_grad():
            out = generator(start_latents(net, PDE16, truth, mask))
        return float((out.double() - field).square().mean())

    assert error(model) < error(untrained)


def test_solver_starts_every_member_near_the_start_latent(world: dict[str, Path]) -> None:
    student, metadata = load_any(world["student"])
    generator = one_step_generator(student, metadata)
    cfg = load_config(world["config"])
    start = build_start(cfg, PDE16)
    nn.init.normal_(start.net.conv_out.weight, std=0.1)
    truth = fields(world["data"], 3)
    mask = make_mask(PDE16, "inverse", 0.1, torch.Generator().manual_seed(0), n=3)
    eps0 = start_latents(start, PDE16, truth, mask)
    config = LatentOptConfig(steps=0, ensemble=3, start_spread=0.0, projection=False)
    result = optimise_latents(
        generator, PDE16, truth, mask, config, rng=torch.Generator().manual_seed(1), start=start
    )
    assert torch.allclose(result.latents, eps0.unsqueeze(1).expand(-1, 3, -1, -1, -1))
    assert float(result.std.abs().max()) == 0.0  # identical members
    assert result.nfe == 3  # no screening: one evaluation per member
    spread = optimise_latents(
        generator,
        PDE16,
        truth,
        mask,
        LatentOptConfig(steps=0, ensemble=3, start_spread=0.3, projection=False, candidates=256),
        rng=torch.Generator().manual_seed(1),
        start=start,
    )
    offsets = spread.latents - eps0.unsqueeze(1)
    assert 0.2 < float(offsets.std()) < 0.4 and spread.nfe == 3
    with pytest.raises(PiddmError, match="start_spread"):
        LatentOptConfig(start_spread=-1.0)


def test_load_start_refuses_other_models_and_pdes(world: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(PiddmError, match="must be a start network"):
        load_start(str(world["student"]), PDE16)
    cfg = load_config(world["config"])

    def train_start(overrides: dict, name: str) -> Path:
        """A start network of the world's student, 2 steps of ``cfg`` with ``overrides``."""
        run = amortise(
            cfg.replace({"train.steps": 2, **overrides}),
            str(world["student"]),
            run_dir=tmp_path / name,
            device="cpu",
            progress=False,
        )
        return run.checkpoint

    checkpoint = train_start({}, "r")
    with pytest.raises(PiddmError, match="trained for PDE 'darcy', not 'poisson'"):
        load_start(str(checkpoint), get_pde("poisson", S))
    with pytest.raises(PiddmError, match=f"trained at resolution {S}, not {2 * S}"):
        load_start(str(checkpoint), get_pde("darcy", 2 * S))
    # A start trained for one task refuses the others, by name, and loads for its own.
    inverse_only = train_start({"start.tasks": ["inverse"]}, "inverse")
    assert load_start(str(inverse_only), PDE16, task="inverse") is not None
    with pytest.raises(PiddmError, match="trained on inverse problems, not forward"):
        load_start(str(inverse_only), PDE16, task="forward")
    for task in cfg.start.tasks:  # the start of every configured task
        load_start(str(checkpoint), PDE16, task=task)
    with pytest.raises(PiddmError, match="one-step student"):
        teacher = tmp_path / "teacher.safetensors"
        teacher_cfg = config_from_dict(tiny_config_dict(world["data"], tmp_path))
        model = build_teacher(teacher_cfg, PDE16)
        save_weights(teacher, model, teacher_metadata(teacher_cfg, PDE16, 0))
        amortise(cfg, str(teacher), run_dir=tmp_path / "t", device="cpu", progress=False)


def test_cli_amortise_then_solve_with_its_start(
    world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "start-run"
    code, out, err = cli_run(
        [
            "amortise",
            "--student",
            str(world["student"]),
            "--config",
            str(world["config"]),
            "--run-dir",
            str(run_dir),
            "--steps",
            "5",
            "--device",
            "cpu",
            "--json",
            "--no-progress",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["steps"] == 5
    solve = [
        "solve",
        "inverse",
        "--model",
        str(world["student"]),
        "--data",
        str(world["data"]),
        "--obs-fraction",
        "0.1",
        "--n",
        "2",
        "--start",
        str(run_dir),
        "--device",
        "cpu",
        "--json",
    ]
    code, out, err = cli_run([*solve, "--out", str(tmp_path / "a.h5")], capsys)
    assert code == 0, err
    summary = json.loads(out)
    b, k = START_CONFIG.ensemble, START_CONFIG.steps
    assert summary["nfe"] == b * (k + 1) + b * k  # the start's defaults: B x K Adam steps
    assert summary["start"] == str(run_dir)
    code, out, err = cli_run([*solve, "--steps", "2", "--out", str(tmp_path / "b.h5")], capsys)
    assert code == 0, err
    assert json.loads(out)["nfe"] == b * 3 + b * 2  # a given option wins over the start's
    code, out, err = cli_run(
        [
            *solve[:-7],
            "--start",
            str(world["student"]),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "c.h5"),
        ],
        capsys,
    )
    assert code == 2 and "must be a start network" in err and "Traceback" not in err
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_process_ddp_start_matches_one_process(world: dict[str, Path], tmp_path: Path) -> None:
    """The masks are drawn for the global batch, so two ranks train the same network."""
    args = [
        "amortise",
        "--student",
        str(world["student"]),
        "--config",
        str(world["config"]),
        "--steps",
        "6",
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        "train.log_every=1",
    ]
    one = subprocess.run(
        piddm_command(*args, "--run-dir", str(tmp_path / "one")),
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        torchrun_command(*args, "--run-dir", str(tmp_path / "two"), "--json"),
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    payload = json.loads(two.stdout.strip().splitlines()[-1])  # rank 0 only prints
    assert payload["steps"] == 6 and set(payload["held_out"]) == {"forward", "inverse"}

    def losses(run: Path) -> list[float]:
        lines = (run / "stats.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines]

    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4)
