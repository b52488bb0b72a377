"""PIDDM and PID students: one network call, PID's boundary identity, the physics term helps,
the spread term keeps the teacher's spread, exact resume across pair refreshes, DDP,
refinement and the solve CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import (
    SUBPROCESS_ENV,
    make_dataset,
    piddm_command,
    tiny_config_dict,
    torchrun_command,
)
from helpers import cli_run, tiny_unet
from piddm.checkpoint import load_model, read_checkpoint
from piddm.config import config_from_dict
from piddm.distill import measured_nfe, one_step_generator, student_sampler
from piddm.distill.objectives import batch_std, residual_term
from piddm.distill.pairs import PairSettings, teacher_endpoints
from piddm.distill.run import distill
from piddm.distill.students import PIDStudent
from piddm.errors import PiddmError
from piddm.metrics import solver_consistency
from piddm.pdes import get_pde
from piddm.training import train


def student_cfg(data: Path, runs: Path, kind: str = "piddm", **distill_settings: object):
    raw = tiny_config_dict(data, runs, steps=16, log_every=4, checkpoint_every=8)
    raw["kind"] = kind
    raw["optim"].update(lr=1e-3, warmup_steps=0)
    raw["distill"] = {
        "pairs": 32,
        "pair_steps": 4,
        "refresh_every": 6,
        "refresh_fraction": 0.25,
        "pid_grid": 20,
        **distill_settings,
    }
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Darcy 16^2 teacher trained for 30 steps (a real checkpoint)."""
    root = tmp_path_factory.mktemp("teacher")
    data = make_dataset(root / "d.h5", n=48)
    cfg = config_from_dict(tiny_config_dict(data, root / "runs", steps=30, checkpoint_every=30))
    torch.set_num_threads(1)
    return train(cfg, run_dir=root / "run", device="cpu", progress=False).checkpoint


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "data.h5", n=16)


@pytest.fixture(scope="module")
def student(teacher: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PIDDM student distilled from ``teacher`` for 4 steps (lambda_train 0.1), shared by
    the ``piddm solve`` tests."""
    root = tmp_path_factory.mktemp("student")
    cfg = student_cfg(make_dataset(root / "d.h5", n=16), root / "runs", lambda_train=0.1)
    return distill(
        cfg.replace({"train.steps": 4}), teacher, run_dir=root / "s", device="cpu", progress=False
    ).checkpoint


def fixed_residual(checkpoint: Path, n: int = 16, norm: str = "plain") -> float:
    """Mean ``physics_term`` of ``norm`` of the student's samples of fixed latents."""
    model, meta = load_model(checkpoint)
    pde = get_pde("darcy", 16)
    eps = torch.randn((n, 2, 16, 16), generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        x = one_step_generator(model, meta)(eps)
    return float(pde.physics_term(pde.normalisation.denormalise(x.double()), norm).mean())


def test_one_step_generation_is_exactly_one_network_call(teacher: Path) -> None:
    model, meta = load_model(teacher)
    calls = []
    model.net.register_forward_hook(lambda *args: calls.append(1))
    generator = one_step_generator(model, {**meta, "kind": "piddm"})
    out = generator(torch.randn(5, 2, 16, 16))
    assert out.shape == (5, 2, 16, 16) and len(calls) == 1
    sampler, nfe = student_sampler(model, {**meta, "kind": "piddm"}, get_pde("darcy", 16))
    calls.clear()
    sampler(torch.randn(3, 2, 16, 16))
    assert nfe == 1 and len(calls) == 1


def test_pid_student_is_the_identity_at_sigma_max() -> None:
    net = tiny_unet(2)
    torch.nn.init.normal_(net.conv_out.weight)  # a non-trivial inner network (zero-init by default)
    student = PIDStudent(net, sigma_max=80.0)
    z = 80.0 * torch.randn(4, 2, 16, 16)
    assert torch.equal(student(z, 80.0), z)
    assert not torch.allclose(student(z, 1.0), z)


@pytest.mark.parametrize(
    ("kind", "residual_grad"), [("piddm", "all"), ("piddm", "solution"), ("pid", "solution")]
)
def test_physics_term_lowers_the_student_residual(
    teacher: Path, data_file: Path, tmp_path: Path, kind: str, residual_grad: str
) -> None:
    residual = {}
    for lam in (0.0, 1.0):
        cfg = student_cfg(
            data_file, tmp_path / "runs", kind, lambda_train=lam, residual_grad=residual_grad
        )
        result = distill(cfg, teacher, run_dir=tmp_path / f"lam{lam}", device="cpu", progress=False)
        residual[lam] = fixed_residual(result.checkpoint)
    assert residual[1.0] < 0.5 * residual[0.0], residual


@pytest.mark.parametrize("kind", ["piddm", "pid"])
def test_preconditioned_physics_term_lowers_the_solution_error(
    teacher: Path, data_file: Path, tmp_path: Path, kind: str
) -> None:
    """``distill.residual_norm = preconditioned``: the student's u moves to the solver's
    solution for its own coefficient (the squared error the term measures)."""
    error = {}
    for lam in (0.0, 10.0):
        cfg = student_cfg(
            data_file,
            tmp_path / "runs",
            kind,
            lambda_train=lam,
            residual_grad="solution",
            residual_norm="preconditioned",
        )
        result = distill(cfg, teacher, run_dir=tmp_path / f"lam{lam}", device="cpu", progress=False)
        error[lam] = fixed_residual(result.checkpoint, norm="preconditioned")
    assert error[10.0] < 0.6 * error[0.0], error


def test_a_student_can_start_from_another_students_weights(
    teacher: Path, student: Path, data_file: Path, tmp_path: Path
) -> None:
    cfg = student_cfg(data_file, tmp_path / "runs", lambda_train=0.1)
    tuned = cfg.replace({"train.steps": 1, "optim.lr": 1e-30, "train.init_from": str(student)})
    result = distill(tuned, teacher, run_dir=tmp_path / "tuned", device="cpu", progress=False)
    start, _ = read_checkpoint(student)
    end, _ = read_checkpoint(result.checkpoint)
    for key, value in start.items():
        torch.testing.assert_close(end[key], value, rtol=1e-5, atol=1e-6)
    wrong = cfg.replace({"train.init_from": str(teacher)})
    with pytest.raises(PiddmError, match="is not a piddm student"):
        distill(wrong, teacher, run_dir=tmp_path / "wrong", device="cpu", progress=False)


def test_a_grown_student_starts_as_the_student_it_grows_from(
    teacher: Path, student: Path, data_file: Path, tmp_path: Path
) -> None:
    """``distill.grow_blocks``: the student gets refinement blocks (recorded in its
    checkpoint), computes its ``train.init_from`` student's function before training, and a
    grown student cannot be loaded into an ungrown one."""
    cfg = student_cfg(data_file, tmp_path / "runs", lambda_train=0.1)
    grown_cfg = cfg.replace(
        {
            "train.steps": 1,
            "optim.lr": 1e-30,
            "train.init_from": str(student),
            "distill.grow_blocks": 2,
        }
    )
    result = distill(grown_cfg, teacher, run_dir=tmp_path / "grown", device="cpu", progress=False)
    tensors, meta = read_checkpoint(result.checkpoint)
    assert meta["net"]["refine_blocks"] == 2
    assert any(".refine." in key for key in tensors)
    eps = torch.randn((8, 2, 16, 16), generator=torch.Generator().manual_seed(5))
    outputs = []
    for path in (student, result.checkpoint):
        model, model_meta = load_model(path)
        with torch.no_grad():
            outputs.append(one_step_generator(model, model_meta)(eps))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
    shrunk = cfg.replace({"train.steps": 1, "train.init_from": str(result.checkpoint)})
    with pytest.raises(PiddmError, match="another architecture than the student"):
        distill(shrunk, teacher, run_dir=tmp_path / "shrunk", device="cpu", progress=False)


def test_batch_std_is_the_unbiased_std_over_the_batch() -> None:
    x = torch.randn(7, 2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(batch_std(x), x.std(dim=0))


def spread_mismatch(student: Path, teacher: Path, n: int = 64) -> float:
    """``mean (std G(eps) - std Phi_teacher(eps))^2`` over fixed latents (normalised)."""
    eps = torch.randn((n, 2, 16, 16), generator=torch.Generator().manual_seed(321))
    teacher_model, _ = load_model(teacher)
    target = teacher_endpoints(
        teacher_model, eps, PairSettings(size=n, steps=4, refresh_every=0, refresh_fraction=0.1)
    )
    model, meta = load_model(student)
    with torch.no_grad():
        out = one_step_generator(model, meta)(eps)
    return float((out.std(dim=0) - target.std(dim=0)).square().mean())


def test_spread_term_brings_the_student_spread_to_the_teachers(
    teacher: Path, data_file: Path, tmp_path: Path
) -> None:
    mismatch = {}
    for weight in (0.0, 100.0):
        cfg = student_cfg(data_file, tmp_path / "runs", lambda_train=0.0, std_weight=weight)
        cfg = cfg.replace({"train.steps": 60, "optim.lr": 3e-3})
        result = distill(
            cfg, teacher, run_dir=tmp_path / f"w{weight}", device="cpu", progress=False
        )
        mismatch[weight] = spread_mismatch(result.checkpoint, teacher)
    assert mismatch[100.0] < 0.5 * mismatch[0.0], mismatch


def test_solution_only_residual_reaches_the_solution_channel_alone() -> None:
    pde = get_pde("darcy", 16)
    x = torch.randn(3, 2, 16, 16, dtype=torch.float64, requires_grad=True)
    full = residual_term(pde, x)
    (grad_full,) = torch.autograd.grad(full.sum(), x)
    detached = residual_term(pde, x, "solution")
    (grad_solution,) = torch.autograd.grad(detached.sum(), x)
    assert torch.equal(detached, full)  # same loss value
    assert grad_full[:, 0].abs().max() > 0 and torch.equal(
        grad_solution[:, 0], torch.zeros_like(x[:, 0])
    )
    assert torch.equal(grad_solution[:, 1], grad_full[:, 1])


@pytest.mark.parametrize("kind", ["piddm", "pid"])
def test_resume_across_pair_refreshes_is_exact(
    teacher: Path, data_file: Path, tmp_path: Path, kind: str
) -> None:
    cfg = student_cfg(data_file, tmp_path / "runs", kind=kind, lambda_train=0.1)
    full = distill(cfg, teacher, run_dir=tmp_path / "full", device="cpu", progress=False)
    # Stop after 8 steps (one refresh done at step 6), then resume to 16 (refresh at 12).
    distill(
        cfg.replace({"train.steps": 8}),
        teacher,
        run_dir=tmp_path / "cut",
        device="cpu",
        progress=False,
    )
    resumed = distill(
        cfg, teacher, run_dir=tmp_path / "cut", resume=True, device="cpu", progress=False
    )
    assert resumed.resumed_from == 8
    a, meta = read_checkpoint(full.checkpoint)
    b, _ = read_checkpoint(resumed.checkpoint)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert meta["kind"] == kind and meta["teacher"] == str(teacher)


def test_two_process_ddp_student_matches_one_process(
    teacher: Path, data_file: Path, tmp_path: Path
) -> None:
    args = [
        "distill",
        "--teacher",
        str(teacher),
        "--device",
        "cpu",
        "--no-progress",
        "--steps",
        "8",
        "--set",
        "distill.pairs=32",
        "--set",
        "distill.pair_steps=4",
        "--set",
        "distill.refresh_every=4",
        "--set",
        "train.log_every=1",
        "--set",
        "optim.batch_size=8",
        "--set",
        "distill.std_weight=10",  # the spread term reduces over the global batch
    ]
    one = subprocess.run(
        piddm_command(*args, "--run-dir", str(tmp_path / "one")),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run(
        torchrun_command(*args, "--run-dir", str(tmp_path / "two")),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-3000:]

    def losses(run: Path) -> list[float]:
        lines = (run / "stats.jsonl").read_text().splitlines()
        return [json.loads(line)["loss"] for line in lines]

    assert len(losses(tmp_path / "one")) == 8
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4)
    from safetensors.torch import load_file

    bank_one = load_file(str(tmp_path / "one" / "pairs" / "round-00001.safetensors"))["pairs"]
    bank_two = load_file(str(tmp_path / "two" / "pairs" / "round-00001.safetensors"))["pairs"]
    torch.testing.assert_close(bank_two, bank_one, rtol=1e-4, atol=1e-5)


def test_refinement_lowers_the_residual_of_a_fixed_batch(teacher: Path) -> None:
    model, meta = load_model(teacher)
    meta = {**meta, "kind": "piddm"}
    pde = get_pde("darcy", 16)
    eps = torch.randn((6, 2, 16, 16), generator=torch.Generator().manual_seed(5))
    plain, nfe_plain = student_sampler(model, meta, pde)
    refined, nfe_refined = student_sampler(model, meta, pde, refine=15)
    before = pde.mean_squared_residual(pde.normalisation.denormalise(plain(eps).double()))
    after = pde.mean_squared_residual(pde.normalisation.denormalise(refined(eps).double()))
    assert (after < before).all() and nfe_plain == 1 and nfe_refined == 4 * 15 + 2
    assert measured_nfe(refined, nfe_refined) >= nfe_refined  # L-BFGS: at least its minimum


def solve_argv(task: str, model: Path, data: Path, *options: str) -> list[str]:
    """argv of ``piddm solve TASK --model MODEL --data DATA OPTIONS...``."""
    return ["solve", task, "--model", str(model), "--data", str(data), *options]


def test_solve_cli_honours_observations_and_writes_figures(
    student: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "solve.h5"
    code, stdout, err = cli_run(
        solve_argv(
            "inverse",
            student,
            data_file,
            "--obs-fraction",
            "0.1",
            "--n",
            "3",
            "--ensemble",
            "2",
            "--candidates",
            "6",
            "--steps",
            "5",
            "--out",
            str(out),
            "--json",
        ),
        capsys,
    )
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["nfe"] == 6 + 2 * (5 + 1) + 2 * 5  # screening, then Adam forward + backward
    for key in (
        "rel_l2_coefficient",
        "rel_l2_solution",
        "error_rate",
        "residual_mean",
        "seconds_per_instance",
        "nfe",
    ):
        assert key in summary
    with h5py.File(out) as handle:
        truth, mask, estimate, std = (handle[k][()] for k in ("truth", "mask", "estimate", "std"))
    assert truth.shape == mask.shape == estimate.shape == std.shape == (3, 2, 16, 16)
    assert mask[:, 1].any() and not mask[:, 0].any()
    np.testing.assert_array_equal(estimate[mask], truth[mask])
    assert (std[mask] == 0).all()
    assert sorted(p.name for p in (tmp_path / "solve-figures").iterdir()) == [
        "inverse-0.png",
        "inverse-1.png",
        "inverse-2.png",
    ]


def test_solve_cli_solver_members_give_exact_solutions(
    student: Path, data_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one member, --solver-members makes the forward estimate the solver's own field."""
    flags = ["--obs-fraction", "0.1", "--n", "2", "--ensemble", "1", "--candidates", "0"]
    flags += ["--steps", "2", "--json"]
    residuals = {}
    for extra in ([], ["--solver-members"]):
        out = tmp_path / f"forward{len(extra)}.h5"
        argv = solve_argv("forward", student, data_file, *flags, *extra, "--out", str(out))
        code, stdout, err = cli_run(argv, capsys)
        assert code == 0, err
        residuals[bool(extra)] = json.loads(stdout)["residual_mean"]
    assert residuals[True] < 1e-10 < 1e-3 < residuals[False]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--obs-fraction", "1.5"], "--obs-fraction must be in (0, 1]"),
        (["--obs-fraction", "0"], "--obs-fraction must be in (0, 1]"),
    ],
)
def test_solve_rejects_bad_fractions(
    teacher: Path,
    data_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra,
    message,
) -> None:
    code, _, err = cli_run(
        solve_argv("forward", teacher, data_file, "--out", str(tmp_path / "o.h5"), *extra),
        capsys,
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.h5").exists()


def test_solve_and_distill_refuse_wrong_models(
    teacher: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    poisson = make_dataset(tmp_path / "p.h5", name="poisson", n=4)
    code, _, err = cli_run(
        solve_argv(
            "forward", teacher, poisson, "--obs-fraction", "0.1", "--out", str(tmp_path / "o.h5")
        ),
        capsys,
    )
    assert code == 2 and "one-step student" in err
    empty = tmp_path / "empty-run"
    (empty / "checkpoints").mkdir(parents=True)
    code, _, err = cli_run(
        ["distill", "--teacher", str(empty), "--run-dir", str(tmp_path / "x")], capsys
    )
    assert code == 2 and "holds no checkpoint" in err
    cfg = tmp_path / "p.yaml"
    raw = tiny_config_dict(poisson, tmp_path / "runs")
    raw["pde"]["name"] = "poisson"
    raw["kind"] = "piddm"
    import yaml

    cfg.write_text(yaml.safe_dump(raw))
    code, _, err = cli_run(
        [
            "distill",
            "--teacher",
            str(teacher),
            "--config",
            str(cfg),
            "--run-dir",
            str(tmp_path / "y"),
        ],
        capsys,
    )
    assert code == 2 and "darcy 16^2 model but the config is for poisson" in err


def test_nan_observations_are_refused(teacher: Path, data_file: Path, tmp_path: Path) -> None:
    from piddm.tasks import validate_observations

    pde = get_pde("darcy", 16)
    obs = torch.zeros(1, 2, 16, 16)
    mask = torch.zeros(1, 2, 16, 16, dtype=torch.bool)
    mask[0, 1, 3, 3] = True
    obs[0, 1, 3, 3] = float("nan")
    with pytest.raises(PiddmError, match="NaN"):
        validate_observations(obs, mask, pde)


def test_pair_cache_is_shared_by_students_of_one_teacher_only(
    teacher: Path, data_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cfg = student_cfg(data_file, tmp_path / "runs", pairs_cache=str(cache), refresh_every=1)
    cfg = cfg.replace({"train.steps": 5})
    distill(cfg, teacher, run_dir=tmp_path / "a", device="cpu", progress=False)
    # Pruning keeps the initial bank and the two newest refresh rounds.
    kept = sorted(p.name for p in cache.glob("round-*.safetensors"))
    assert kept == [f"round-{r:05d}.safetensors" for r in (0, 3, 4)]
    first = (cache / "round-00000.safetensors").stat().st_mtime_ns
    distill(
        cfg.replace({"distill.lambda_train": 0.0}),
        teacher,
        run_dir=tmp_path / "b",
        device="cpu",
        progress=False,
    )
    assert (cache / "round-00000.safetensors").stat().st_mtime_ns == first  # reused
    other = tmp_path / "other.safetensors"
    tensors, meta = read_checkpoint(teacher)
    from piddm.checkpoint import save_weights

    model, _ = load_model(teacher)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    save_weights(other, model, meta)
    distill(cfg, other, run_dir=tmp_path / "c", device="cpu", progress=False)
    assert (cache / "round-00000.safetensors").stat().st_mtime_ns != first  # recomputed


def test_solved_pair_targets_are_consistent_and_cached_apart(
    teacher: Path, data_file: Path, tmp_path: Path
) -> None:
    """``distill.pair_targets: solved`` keeps the teacher's coefficients and replaces their
    solutions by the solver's (consistency at float32 round-off), in a cache of its own."""
    pde = get_pde("darcy", 16)
    banks = {}
    for targets in ("teacher", "solved"):
        cache = tmp_path / f"cache-{targets}"
        cfg = student_cfg(
            data_file, tmp_path / "runs", pairs_cache=str(cache), pair_targets=targets
        )
        distill(
            cfg.replace({"train.steps": 1}),
            teacher,
            run_dir=tmp_path / targets,
            device="cpu",
            progress=False,
        )
        pairs = load_file(str(cache / "round-00000.safetensors"))["pairs"]
        banks[targets] = pde.normalisation.denormalise(pairs[:, 2:].double())
        assert json.loads((cache / "key.json").read_text()).get("targets") == (
            "solved" if targets == "solved" else None
        )
    teacher_x0, solved_x0 = banks["teacher"], banks["solved"]
    c, s = pde.coefficient_channel, pde.solution_channel
    torch.testing.assert_close(solved_x0[:, c], teacher_x0[:, c])
    assert solver_consistency(pde, solved_x0.numpy()).max() < 1e-5
    assert solver_consistency(pde, teacher_x0.numpy()).min() > 1e-3
    assert not torch.allclose(solved_x0[:, s], teacher_x0[:, s])
