"""The training loop: learning, run layout, exact resume (also after SIGKILL or SIGTERM), DDP
equivalence, the divergence guard, graceful stop on signals, and the CLI's error path."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from conftest import (
    SUBPROCESS_ENV,
    make_dataset,
    piddm_command,
    tiny_config_dict,
    torchrun_command,
)
from piddm.checkpoint import load_model, read_checkpoint
from piddm.cli import main
from piddm.config import config_from_dict, config_to_dict, load_config
from piddm.data import write_dataset
from piddm.diffusion import EDMLoss
from piddm.distill.run import distill
from piddm.errors import PiddmError, TrainingInterrupted
from piddm.pdes import get_pde
from piddm.training import (
    BatchRandom,
    EpochSampler,
    TeacherObjective,
    build_teacher,
    learning_rate,
    train,
)
from piddm.training.loop import ema_decay_at
from piddm.training.rundir import RunLog, read_stats


def stats_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


def assert_user_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- building blocks
def test_teacher_objective_is_edm_loss_on_one_rank():
    torch.manual_seed(0)
    cfg = config_from_dict(tiny_config_dict("unused.h5", "runs"))
    pde = get_pde("darcy", 16)
    model = build_teacher(cfg, pde)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    y = torch.randn(4, 2, 16, 16)
    edm = EDMLoss()
    expected = edm(model, y, torch.Generator().manual_seed(5)).mean()
    rng = BatchRandom(torch.Generator().manual_seed(5), 4, slice(0, 4))
    loss, stats = TeacherObjective(edm).loss(model, y, rng)
    assert torch.equal(loss, expected) and torch.equal(stats["loss_edm"], expected)

    # PIDM: + w Rn(denormalised D(x_t; s)), drawn from the same noise.
    rng = BatchRandom(torch.Generator().manual_seed(5), 4, slice(0, 4))
    loss_res, stats = TeacherObjective(edm, pde, residual_weight=0.5).loss(model, y, rng)
    out = edm.denoise_noisy(model, y, torch.Generator().manual_seed(5))
    residual = pde.normalised_residual(pde.normalisation.denormalise(out.denoised)).mean()
    torch.testing.assert_close(loss_res, expected + 0.5 * residual)
    torch.testing.assert_close(stats["loss_residual"], residual)


def test_batch_random_slices_the_global_draw():
    like = torch.zeros(1)
    whole = BatchRandom(torch.Generator().manual_seed(1), 6, slice(0, 6)).randn((3,), like)
    parts = [
        BatchRandom(torch.Generator().manual_seed(1), 6, slice(3 * r, 3 * r + 3)).randn((3,), like)
        for r in range(2)
    ]
    assert torch.equal(torch.cat(parts), whole)


def test_epoch_sampler_covers_each_epoch_once_and_is_a_function_of_step():
    sampler = EpochSampler(n=10, batch_size=4, seed=2)
    first = torch.cat([sampler.indices(step) for step in range(5)])  # 20 = two epochs
    assert sorted(first[:10].tolist()) == list(range(10))
    assert sorted(first[10:].tolist()) == list(range(10))
    assert not torch.equal(first[:10], first[10:])
    again = EpochSampler(n=10, batch_size=4, seed=2)
    assert torch.equal(again.indices(3), sampler.indices(3))
    big = EpochSampler(n=3, batch_size=7, seed=0).indices(0)  # batch larger than the data
    assert len(big) == 7 and set(big.tolist()) == {0, 1, 2}


def test_learning_rate_warms_up_linearly():
    cfg = config_from_dict(tiny_config_dict("x.h5", "runs"))  # warmup 5, lr 2e-3
    assert learning_rate(cfg, 0) == pytest.approx(2e-3 / 5)
    assert learning_rate(cfg, 4) == pytest.approx(2e-3)
    assert learning_rate(cfg, 100) == pytest.approx(2e-3)


def test_cosine_learning_rate_decays_from_lr_to_its_floor_after_the_warm_up():
    base = config_from_dict(tiny_config_dict("x.h5", "runs"))  # warmup 5, lr 2e-3
    cfg = base.replace({"optim.lr_schedule": "cosine", "train.steps": 105})
    assert learning_rate(cfg, 0) == pytest.approx(2e-3 / 5)  # same warm-up as constant
    assert learning_rate(cfg, 5) == pytest.approx(2e-3)
    assert learning_rate(cfg, 55) == pytest.approx(1e-3)  # half-way: half the rate
    rates = [learning_rate(cfg, t) for t in range(5, 106)]
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    floored = cfg.replace({"optim.lr_min_ratio": 0.1})
    assert learning_rate(floored, 105) == pytest.approx(2e-4)
    assert learning_rate(floored, 55) == pytest.approx(1.1e-3)


def test_ema_rampup_grows_the_half_life_to_that_of_ema_decay():
    assert ema_decay_at(0.999, None, 0) == 0.999  # off: the configured decay from step 0
    decays = [ema_decay_at(0.999, 0.05, t) for t in range(0, 30_000, 100)]
    assert decays == sorted(decays) and decays[0] < 1e-5  # step 0 nearly copies the weights
    # Half-life 0.05 * (t + 1) steps: after it the old average weighs exactly 1/2.
    assert ema_decay_at(0.999, 0.05, 199) ** (0.05 * 200) == pytest.approx(0.5)
    assert ema_decay_at(0.999, 0.05, 10**6) == pytest.approx(0.999, abs=1e-15)
    assert ema_decay_at(0.0, 0.05, 7) == 0.0


def test_ema_rampup_keeps_a_short_runs_average_near_its_last_weights(tiny_config, tmp_path):
    cfg = load_config(tiny_config(steps=10, checkpoint_every=10))
    distance = {}
    for rampup in (None, 0.05):
        run = cfg.replace({"optim.ema_decay": 0.999, "optim.ema_rampup": rampup})
        result = train(run, run_dir=tmp_path / str(rampup), device="cpu", progress=False)
        ema, _ = read_checkpoint(result.checkpoint)
        state = torch.load(result.run_dir / "checkpoints" / "state-00000010.pt", weights_only=True)
        distance[rampup] = sum(
            float((ema[k] - state["model"][k]).square().sum()) for k in ema if k in state["model"]
        )
    # 0.999 keeps ~99 % of the initial weights after 10 steps; the ramp-up follows training.
    assert distance[None] > 0 and distance[0.05] < 0.2 * distance[None], distance


# --------------------------------------------------------------------------- in-process runs
def test_tiny_run_learns_and_writes_the_run_directory(tiny_config):
    cfg = load_config(tiny_config(steps=60, log_every=10, checkpoint_every=20, num_samples=2))
    result = train(cfg, device="cpu", progress=False)
    run = result.run_dir
    assert run.name == "00000-darcy-16-tiny" and result.steps == 60
    losses = [s["loss"] for s in stats_of(run)]
    assert [s["step"] for s in stats_of(run)] == [10, 20, 30, 40, 50, 60]
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    record = stats_of(run)[-1]
    assert {"step", "loss", "lr", "samples_per_s", "seconds", "grad_norm", "loss_edm"} <= set(
        record
    )
    assert json.loads((run / "config.json").read_text()) == config_to_dict(cfg)
    assert "step 60/60" in (run / "log.txt").read_text()
    ckpt = run / "checkpoints"
    names = sorted(p.name for p in ckpt.iterdir())
    assert names == [
        "final.safetensors",
        "latest.json",
        "state-00000060.pt",
        "step-00000020.safetensors",
        "step-00000040.safetensors",
        "step-00000060.safetensors",
    ]
    assert json.loads((ckpt / "latest.json").read_text())["step"] == 60
    assert result.checkpoint == ckpt / "final.safetensors"
    model, meta = load_model(run)
    assert meta["step"] == 60 and meta["kind"] == "teacher" and meta["ema"] is True
    assert meta["config"] == config_to_dict(cfg)
    final, _ = read_checkpoint(ckpt / "final.safetensors")
    last, _ = read_checkpoint(ckpt / "step-00000060.safetensors")
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert (run / "samples" / "final.h5").is_file() and (run / "figures" / "samples.png").is_file()
    assert np.isfinite(result.extra["sample_residual_mean"])
    # A second run gets the next number.
    assert train(cfg.replace({"train.steps": 1}), device="cpu", progress=False).run_dir.name == (
        "00001-darcy-16-tiny"
    )


def test_resume_in_process_matches_an_uninterrupted_run(tiny_config, tmp_path: Path):
    cfg = load_config(tiny_config(steps=20, log_every=5, checkpoint_every=10))
    full = train(cfg, run_dir=tmp_path / "full", device="cpu", progress=False)
    half = cfg.replace({"train.steps": 10})
    train(half, run_dir=tmp_path / "split", device="cpu", progress=False)
    resumed = train(cfg, run_dir=tmp_path / "split", resume=True, device="cpu", progress=False)
    assert resumed.resumed_from == 10 and resumed.steps == 20
    a, _ = read_checkpoint(full.checkpoint)
    b, _ = read_checkpoint(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [s["loss"] for s in stats_of(tmp_path / "full")] == [
        s["loss"] for s in stats_of(tmp_path / "split")
    ]
    again = train(cfg, run_dir=tmp_path / "split", resume=True, device="cpu", progress=False)
    assert again.resumed_from == 20 and again.loss == full.loss  # a finished run reports its loss


def test_existing_run_dir_is_refused_without_resume_or_overwrite(tiny_config, tmp_path: Path):
    cfg = load_config(tiny_config(steps=2, checkpoint_every=1))
    run = tmp_path / "run"
    train(cfg, run_dir=run, device="cpu", progress=False)
    with pytest.raises(PiddmError, match="already holds checkpoints; pass --resume"):
        train(cfg, run_dir=run, device="cpu", progress=False)
    with pytest.raises(PiddmError, match=r"config optim.lr was 0.002 and is now 0.001"):
        train(cfg.replace({"optim.lr": 1e-3}), run_dir=run, resume=True, device="cpu")
    again = train(cfg, run_dir=run, overwrite=True, device="cpu", progress=False)
    assert again.resumed_from == 0
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == 2
    # --resume without --run-dir continues the newest matching run; a finished run stays put.
    latest = train(cfg, resume=True, device="cpu", progress=False)
    assert latest.run_dir.name == "00000-darcy-16-tiny" and latest.resumed_from == 0
    assert train(cfg, resume=True, device="cpu", progress=False).resumed_from == 2


def test_resume_names_a_damaged_training_state(tiny_config, tmp_path: Path, capsys):
    run = tmp_path / "run"
    args = ["train", "--config", str(tiny_config(steps=2, checkpoint_every=2)), "--device", "cpu"]
    assert run_cli(capsys, *args, "--run-dir", str(run), "--no-progress")[0] == 0
    state = run / "checkpoints" / "state-00000002.pt"
    state.write_bytes(state.read_bytes()[:-300])
    code, _, err = run_cli(capsys, *args, "--run-dir", str(run), "--resume", "--steps", "4")
    assert_user_error(
        code,
        err,
        f"cannot resume {run}: training state {state} is truncated or corrupt (not a complete "
        f"torch file); start over with --overwrite",
    )


def test_dataset_is_generated_when_missing(tmp_path: Path):
    data = tmp_path / "data" / "auto.h5"
    cfg_dict = tiny_config_dict(data, tmp_path / "runs", steps=2)
    cfg_dict["data"].update(n=10, n_holdout=2)
    result = train(config_from_dict(cfg_dict), device="cpu", progress=False)
    assert data.is_file() and result.steps == 2
    assert "8 training samples" in (result.run_dir / "log.txt").read_text()


# --------------------------------------------------------------------------- CLI
def test_cli_json_output(tiny_config, tmp_path: Path, capsys):
    code, out, err = run_cli(
        capsys, "train", "--config", str(tiny_config()), "--steps", "3", "--json",
        "--run-dir", str(tmp_path / "r"), "--device", "cpu", "--set", "train.log_every=1",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert {"run_dir", "checkpoint", "steps", "seconds", "loss"} <= set(payload)
    assert payload["steps"] == 3 and Path(payload["checkpoint"]).is_file()
    assert payload["run_dir"] == str(tmp_path / "r")
    assert len(stats_of(tmp_path / "r")) == 3
    code, _, err = run_cli(
        capsys, "train", "--config", str(tiny_config()), "--run-dir", str(tmp_path / "r")
    )
    assert_user_error(code, err, "already holds checkpoints")


@pytest.mark.parametrize(
    ("section", "value", "fragment"),
    [
        ("optim", {"lrr": 1e-3}, "config optim.lrr: unknown key (did you mean 'lr'?)"),
        ("optim", {"lr": "abc"}, "config optim.lr: expected a positive number, got 'abc'"),
        ("train", {"steps": -3}, "config train.steps: expected a positive integer, got -3"),
    ],
)
def test_cli_config_errors_exit_2(
    tmp_path: Path, darcy16_dataset, capsys, section, value, fragment
):
    cfg = tiny_config_dict(darcy16_dataset, tmp_path / "runs")
    cfg[section].update(value)
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    code, _, err = run_cli(capsys, "train", "--config", str(path))
    assert_user_error(code, err, fragment)
    assert not (tmp_path / "runs").exists()


def test_cli_dataset_errors_exit_2(tiny_config, tmp_path: Path, capsys):
    config = str(tiny_config())
    wrong_res = make_dataset(tmp_path / "d32.h5", resolution=32, n=2)
    code, _, err = run_cli(capsys, "train", "--config", config, "--data", str(wrong_res))
    assert_user_error(code, err, "has resolution 32, expected 16")

    wrong_pde = make_dataset(tmp_path / "burgers.h5", name="burgers", n=2)
    code, _, err = run_cli(capsys, "train", "--config", config, "--data", str(wrong_pde))
    assert_user_error(code, err, "holds PDE 'burgers', expected 'darcy'")

    pde = get_pde("darcy", 16)
    fields = np.stack([pde.generate(s) for s in range(3)])
    fields[1, 1, 4, 4] = np.nan
    nan_file = write_dataset(tmp_path / "nan.h5", fields, np.arange(3), pde)
    code, _, err = run_cli(capsys, "train", "--config", config, "--data", str(nan_file))
    assert_user_error(code, err, "contains NaN")

    code, _, err = run_cli(capsys, "train", "--config", config, "--data", str(tmp_path / "no.h5"))
    assert_user_error(code, err, "does not exist")
    assert not (tmp_path / "runs").exists()


def test_stats_records_cut_by_a_kill_are_skipped_by_every_reader(tmp_path: Path) -> None:
    records = [{"loss": 0.5, "step": 1}, {"loss": 0.25, "step": 2}, {"loss": 0.125, "step": 3}]
    lines = [json.dumps(r, sort_keys=True) for r in records]
    (tmp_path / "stats.jsonl").write_text(
        "\n".join([*lines[:2], "[1, 2]", lines[2], '{"loss": 0.1, "st'])
    )
    assert read_stats(tmp_path) == records
    log = RunLog(tmp_path)
    assert log.last_loss() == 0.125
    log.truncate_stats(2)
    assert read_stats(tmp_path) == records[:2] and log.last_loss() == 0.25
    assert (
        read_stats(tmp_path / "missing") == [] and RunLog(tmp_path / "missing").last_loss() is None
    )


# --------------------------------------------------------------------------- subprocesses
def _wait_for(predicate, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            _, err = process.communicate()
            raise AssertionError(f"training exited early ({process.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out waiting for a checkpoint")
        time.sleep(0.02)


def _logged_steps(run_dir: Path) -> int:
    """How many stats records a running run has written so far."""
    stats = run_dir / "stats.jsonl"
    return len(stats.read_text().splitlines()) if stats.is_file() else 0


@pytest.mark.slow  # about 17-22 s: three interpreter start-ups (exact resume is also tested above)
def test_sigkill_then_resume_gives_bit_identical_weights(tiny_config, tmp_path: Path):
    seed = int(os.environ.get("PIDDM_TEST_SEED", random.randrange(2**32)))
    kill_after = random.Random(seed).randrange(8, 90)  # a step between checkpoints, or on one
    context = f"(killed after step {kill_after}, chosen with seed {seed}: PIDDM_TEST_SEED={seed})"
    config = str(tiny_config(steps=100, log_every=1, checkpoint_every=7))
    args = ["train", "--config", config, "--device", "cpu", "--no-progress"]
    env = {**SUBPROCESS_ENV, "PYTHONHASHSEED": "0"}

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        piddm_command(*args, "--run-dir", str(killed)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    latest = killed / "checkpoints" / "latest.json"
    _wait_for(lambda: _logged_steps(killed) >= kill_after, process, 120)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, context
    assert not (killed / "checkpoints" / "final.safetensors").exists(), f"finished {context}"
    stopped_at = json.loads(latest.read_text())["step"]
    assert 7 <= stopped_at < 100 and stopped_at % 7 == 0, context

    resumed = subprocess.run(
        piddm_command(*args, "--run-dir", str(killed), "--resume", "--json"),
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, f"{resumed.stderr} {context}"
    assert json.loads(resumed.stdout)["resumed_from"] == stopped_at, context

    full = subprocess.run(
        piddm_command(*args, "--run-dir", str(tmp_path / "full")),
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert full.returncode == 0, full.stderr

    a, _ = read_checkpoint(tmp_path / "full" / "checkpoints" / "final.safetensors")
    b, _ = read_checkpoint(killed / "checkpoints" / "final.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), context
    losses = [s["loss"] for s in stats_of(killed)]
    assert [s["loss"] for s in stats_of(tmp_path / "full")] == losses, context


def _assert_same_final_weights_and_stats(run_a: Path, run_b: Path) -> None:
    a, _ = read_checkpoint(run_a / "checkpoints" / "final.safetensors")
    b, _ = read_checkpoint(run_b / "checkpoints" / "final.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    keys = ("step", "loss", "grad_norm", "loss_edm", "lr")
    assert [[s[k] for k in keys] for s in stats_of(run_a)] == [
        [s[k] for k in keys] for s in stats_of(run_b)
    ]


def test_sigterm_checkpoints_the_current_step_and_resume_is_exact(
    tiny_config, tmp_path: Path, capsys
):
    config = str(tiny_config(steps=60, log_every=4, checkpoint_every=50))
    args = ["train", "--config", config, "--device", "cpu", "--no-progress"]
    run = tmp_path / "stopped"
    process = subprocess.Popen(
        piddm_command(*args, "--run-dir", str(run)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    _wait_for(lambda: _logged_steps(run) >= 2, process, 120)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    done = re.fullmatch(
        r"interrupted by SIGTERM at step (\d+); checkpoint saved, continue with --resume\n", err
    )
    assert done and out == "", err
    step = int(done[1])
    assert 8 <= step < 60, "the run finished before the signal"
    ckpt = run / "checkpoints"
    latest = json.loads((ckpt / "latest.json").read_text())
    assert latest == {
        "step": step,
        "weights": f"step-{step:08d}.safetensors",
        "state": f"state-{step:08d}.pt",
    }
    assert read_checkpoint(ckpt / latest["weights"])[1]["step"] == step
    assert not (ckpt / "final.safetensors").exists()
    assert f"interrupted by SIGTERM at step {step}" in (run / "log.txt").read_text()

    code, out, err = run_cli(capsys, *args, "--run-dir", str(run), "--resume", "--json")
    assert code == 0, err
    assert json.loads(out)["resumed_from"] == step
    train(load_config(config), run_dir=tmp_path / "full", device="cpu", progress=False)
    _assert_same_final_weights_and_stats(run, tmp_path / "full")


def test_sigint_stops_at_the_end_of_a_step_and_restores_the_handlers(tiny_config, tmp_path):
    cfg = load_config(tiny_config(steps=100_000, log_every=3, checkpoint_every=1000))
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def interrupt_once_training() -> None:
        deadline = time.monotonic() + 120
        while _logged_steps(run) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt_once_training, daemon=True)
    thread.start()
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, run_dir=run, device="cpu", progress=False)
    thread.join()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    stopped = info.value
    assert stopped.signum == signal.SIGINT and stopped.exit_code == 130
    assert str(stopped) == (
        f"interrupted by SIGINT at step {stopped.step}; checkpoint saved, continue with --resume"
    )
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == stopped.step
    _, meta = read_checkpoint(run / "checkpoints" / f"step-{stopped.step:08d}.safetensors")
    assert meta["step"] == stopped.step >= 3


def test_divergence_stops_before_any_checkpoint_holds_poisoned_weights(
    tiny_config, tmp_path: Path, capsys
):
    run = tmp_path / "run"
    unstable = ["optim.lr=1e6", "optim.grad_clip=null", "optim.warmup_steps=0"]
    args = ["train", "--config", str(tiny_config(steps=30, log_every=1, checkpoint_every=1))]
    args += ["--run-dir", str(run), "--device", "cpu", "--no-progress"]
    code, _, err = run_cli(capsys, *args, *[f"--set={item}" for item in unstable])
    assert_user_error(code, err, "training diverged at step ")
    step = int(re.search(r"diverged at step (\d+):", err)[1])
    ckpt = run / "checkpoints"
    last = ckpt / f"step-{step - 1:08d}.safetensors"
    assert (
        f"the loss or its gradient is not finite (NaN or Inf); the last good checkpoint is "
        f"{last}; lower optim.lr or set optim.grad_clip"
    ) in err
    assert 2 <= step < 30 and not (ckpt / "final.safetensors").exists()
    assert json.loads((ckpt / "latest.json").read_text())["step"] == step - 1
    weights = sorted(ckpt.glob("*.safetensors"))
    assert len(weights) == step - 1
    for path in weights:
        tensors, _ = read_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors.values()), path
    state = torch.load(ckpt / f"state-{step - 1:08d}.pt", weights_only=True)
    for part in ("model", "ema"):
        assert all(torch.isfinite(t).all() for t in state[part].values())
    assert all(np.isfinite(s["loss"]) and s["step"] < step for s in stats_of(run))

    # Diverging before the first checkpoint: nothing to fall back on, and it says so.
    unstable = ["optim.lr=1e10", *unstable[1:], "train.checkpoint_every=10"]
    code, _, err = run_cli(capsys, *args, "--overwrite", *[f"--set={item}" for item in unstable])
    assert_user_error(code, err, "not finite (NaN or Inf); no checkpoint was written;")
    assert not list(ckpt.glob("*.safetensors"))


def _worker_pid(launcher: subprocess.Popen, rank: int, timeout: float = 60) -> int:
    """The pid of the ``torchrun`` worker process of ``rank`` (read from ``/proc``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
        for pid in children:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if f"RANK={rank}".encode() in environ:
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"no worker of rank {rank} found")


@pytest.mark.slow  # about 15-25 s: a two-process DDP job on a busy 2-core machine
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_ranks_stop_together_when_one_rank_gets_sigterm(tiny_config, tmp_path: Path):
    config = str(tiny_config(steps=2000, log_every=2, checkpoint_every=1000))
    run = tmp_path / "ddp"
    launcher = subprocess.Popen(
        torchrun_command(
            "train", "--config", config, "--device", "cpu", "--no-progress", "--run-dir", str(run)
        ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )  # fmt: skip
    rank1 = _worker_pid(launcher, rank=1)
    _wait_for(lambda: _logged_steps(run) >= 2, launcher, 180)
    os.kill(rank1, signal.SIGTERM)  # rank 0 learns of it through the per-step all-reduce
    _, err = launcher.communicate(timeout=180)
    steps = re.findall(r"interrupted by SIGTERM at step (\d+); checkpoint saved", err)
    assert len(steps) == 2 and steps[0] == steps[1], err[-3000:]
    step = int(steps[0])
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == step < 2000
    assert read_checkpoint(run / "checkpoints" / f"step-{step:08d}.safetensors")[1]["step"] == step


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_process_ddp_matches_one_process(tiny_config, tmp_path: Path):
    config = str(tiny_config(steps=12, log_every=1, checkpoint_every=6))
    args = ["train", "--config", config, "--device", "cpu", "--no-progress"]
    single = subprocess.run(
        piddm_command(*args, "--run-dir", str(tmp_path / "one")),
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300,
    )  # fmt: skip
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        torchrun_command(*args, "--run-dir", str(tmp_path / "two"), "--json"),
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300,
    )  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    payload = json.loads(ddp.stdout.strip().splitlines()[-1])  # rank 0 only prints
    assert payload["steps"] == 12
    one, two = stats_of(tmp_path / "one"), stats_of(tmp_path / "two")
    assert [s["step"] for s in one] == [s["step"] for s in two] == list(range(1, 13))
    np.testing.assert_allclose(
        [s["loss"] for s in two], [s["loss"] for s in one], rtol=1e-4, atol=1e-6
    )
    a, _ = read_checkpoint(tmp_path / "one" / "checkpoints" / "final.safetensors")
    b, _ = read_checkpoint(tmp_path / "two" / "checkpoints" / "final.safetensors")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-5)


def test_cli_entry_point_error_has_no_traceback(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("pde: {name: darcy, resolution: 16}\noptim: {lrr: 0.1}\n")
    done = subprocess.run(
        piddm_command("train", "--config", str(path)),
        capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert_user_error(done.returncode, done.stderr, "did you mean 'lr'?")
    assert done.stdout == ""


@pytest.fixture(autouse=True)
def _no_stray_runs_dir():
    """Tests must write runs under tmp_path, never into the repository."""
    before = Path("runs").exists()
    yield
    if not before and Path("runs").exists():  # pragma: no cover (a test bug)
        shutil.rmtree("runs")
        raise AssertionError("a test wrote ./runs")


def test_warm_start_and_pidm_kind(tiny_config, tmp_path: Path):
    """train.init_from loads a checkpoint's weights; a residual weight marks the PIDM kind."""
    base = load_config(tiny_config(steps=2, checkpoint_every=2))
    first = train(base, run_dir=tmp_path / "a", device="cpu", progress=False)
    warm = base.replace(
        {
            "train.init_from": str(first.checkpoint),
            "loss.residual_weight": 0.1,
            "optim.lr": 1e-12,
            "optim.warmup_steps": 0,
        }
    )
    second = train(warm, run_dir=tmp_path / "b", device="cpu", progress=False)
    a, _ = read_checkpoint(first.checkpoint)
    b, meta = read_checkpoint(second.checkpoint)
    assert meta["kind"] == "pidm"
    for key in a:  # a vanishing learning rate keeps the warm-started weights
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
    wider = base.replace({"train.init_from": str(first.checkpoint), "net.base_channels": 16})
    with pytest.raises(PiddmError, match="init_from"):
        train(wider, run_dir=tmp_path / "c", device="cpu", progress=False)


def test_a_callers_process_group_survives_train_and_distill(darcy16_dataset, tmp_path: Path):
    """The run entry destroys only a process group it created itself: a group the caller set
    up (gloo, world size 1) is still there after ``train()`` and ``distill()``."""
    raw = tiny_config_dict(darcy16_dataset, tmp_path / "runs", steps=2, checkpoint_every=2)
    teacher_cfg = config_from_dict(raw)
    student_cfg = config_from_dict({**raw, "kind": "pid", "distill": {"pid_grid": 4}})
    store = (tmp_path / "store").as_uri()
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    try:
        teacher = train(teacher_cfg, run_dir=tmp_path / "t", device="cpu", progress=False)
        assert dist.is_initialized()
        distill(
            student_cfg, teacher.checkpoint, run_dir=tmp_path / "s", device="cpu", progress=False
        )
        assert dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
