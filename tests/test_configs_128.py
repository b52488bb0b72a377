"""The 128^2 GPU configs (``configs/*-128-*gpu.yaml``): they load, and they run end to end.

Fast tests: every 128^2 config -- teacher (``PDE-128-gpu.yaml``), student
(``PDE-128-piddm-gpu.yaml``) and bench (``bench-PDE-128-*gpu.yaml``) -- is found by a glob (a
new one is covered automatically), loads with the package's own validating loader, is at
resolution 128, names the PDE of its file name, and pairs with a teacher config it can be
distilled from / benchmarked against.

Slow test (``pytest -m slow tests/test_configs_128.py``): one PDE's (Darcy's) configs run
train -> distill -> sample -> solve -> bench on the CPU with the 128^2 grid and the configs'
full EDM-sized U-Net (55.6 M parameters), only the step counts and sizes cut to a few (see
:func:`test_darcy_128_configs_run_end_to_end`). Timings: docs/gpu-128.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from piddm.bench import load_bench_config
from piddm.checkpoint import read_metadata
from piddm.config import config_to_dict, load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
RESOLUTION = 128
ALL_128 = sorted(CONFIGS.glob(f"*-{RESOLUTION}-*gpu.yaml"))
BENCH = [p for p in ALL_128 if p.name.startswith("bench-")]
RUNS = [p for p in ALL_128 if not p.name.startswith("bench-")]
STUDENT_KINDS = ("piddm", "pid")


def raw(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def run_kind(path: Path) -> str:
    return raw(path).get("kind", "teacher")


TEACHERS = [p for p in RUNS if run_kind(p) == "teacher"]
STUDENTS = [p for p in RUNS if run_kind(p) in STUDENT_KINDS]


def pde_of_name(path: Path) -> str:
    """The PDE a file name announces: ``PDE-128-...`` or ``bench-PDE-128-...``."""
    match = re.fullmatch(rf"(?:bench-)?([a-z0-9_]+)-{RESOLUTION}-.*gpu\.yaml", path.name)
    assert match, f"{path.name}: not named [bench-]PDE-{RESOLUTION}-...gpu.yaml"
    return match.group(1)


def teacher_config_of(pde: str) -> Path:
    return CONFIGS / f"{pde}-{RESOLUTION}-gpu.yaml"


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_the_glob_finds_every_kind_of_128_config():
    assert TEACHERS and STUDENTS and BENCH, ids(ALL_128)
    assert sorted(TEACHERS + STUDENTS + BENCH) == ALL_128, "a 128^2 config of an unknown kind"
    # every teacher has a student and every student a teacher
    assert {pde_of_name(p) for p in TEACHERS} == {pde_of_name(p) for p in STUDENTS}


@pytest.mark.parametrize("path", TEACHERS, ids=ids(TEACHERS))
def test_teacher_config_loads(path: Path):
    cfg = load_config(path)
    assert cfg.kind == "teacher"
    assert cfg.pde.resolution == RESOLUTION
    assert cfg.pde.name == pde_of_name(path)
    assert f"-{RESOLUTION}" in Path(cfg.data.path).name and cfg.pde.name in cfg.data.path
    # the training set keeps data.n_holdout samples out and the optimiser's batch fits in it
    assert cfg.data.n is not None and cfg.data.n - cfg.data.n_holdout >= cfg.optim.batch_size


@pytest.mark.parametrize("path", STUDENTS, ids=ids(STUDENTS))
def test_student_config_loads_and_matches_its_teacher(path: Path):
    cfg = load_config(path)
    teacher_path = teacher_config_of(pde_of_name(path))
    assert teacher_path.is_file(), f"{path.name}: no teacher config {teacher_path.name}"
    teacher = load_config(teacher_path)
    assert cfg.kind in STUDENT_KINDS
    assert cfg.pde.resolution == RESOLUTION
    assert cfg.pde.name == pde_of_name(path)
    assert cfg.pde == teacher.pde  # same PDE parameters as the teacher it distils
    # A student is built from its teacher's checkpoint: a net / diffusion section in its
    # config must describe the same network and noise schedule.
    for section in ("net", "diffusion"):
        if section in raw(path):
            assert getattr(cfg, section) == getattr(teacher, section), f"{path.name}: {section}"


@pytest.mark.parametrize("path", BENCH, ids=ids(BENCH))
def test_bench_config_loads_and_names_128_models(path: Path):
    cfg = load_bench_config(path)
    pde = pde_of_name(path)
    assert cfg.pde.resolution == RESOLUTION
    assert cfg.pde.name == pde
    teacher_path = teacher_config_of(pde)
    assert teacher_path.is_file(), f"{path.name}: no teacher config {teacher_path.name}"
    teacher = load_config(teacher_path)
    assert cfg.pde == teacher.pde
    for name in ("teacher", "pidm", "piddm", "piddm_lambda0", "pid"):
        model = cfg.model_path(name)
        assert model is None or f"{pde}-{RESOLUTION}" in model, f"models.{name}: {model}"
    # held-out reference: generated with another seed than the teacher's training data
    if cfg.reference.n is not None:
        assert cfg.reference.seed != teacher.data.seed
        assert Path(cfg.reference.path).name != Path(teacher.data.path).name


# ----------------------------------------------------------------------------- slow: end to end
E2E_PDE = "darcy"


def _cli(capsys, *args: str) -> dict:
    """Run ``piddm ARGS --json`` in-process; assert exit 0 and return the JSON it printed."""
    from piddm.cli import main

    with pytest.raises(SystemExit) as info:
        main([*args, "--json"])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def _sets(overrides: dict) -> list[str]:
    return [f"--set={key}={json.dumps(value)}" for key, value in overrides.items()]


#: Cuts of the run configs: steps and sizes only (net, diffusion, PDE and resolution kept).
#: Batch 2: a training step of the full 128^2 U-Net costs about 6 s per sample on one CPU
#: thread (docs/gpu-128.md), so the configs' batch 64 would take minutes per step.
TEACHER_CUT = {
    "optim.batch_size": 2,
    "optim.warmup_steps": 1,
    "data.n_holdout": 2,
    "train.log_every": 1,
    "train.checkpoint_every": 2,
    "train.num_samples": 0,
}
STUDENT_CUT = {
    **TEACHER_CUT,
    "distill.pairs": 4,
    "distill.pair_steps": 2,
    "distill.pair_batch_size": 4,
    "distill.refresh_every": 0,
}
del STUDENT_CUT["data.n_holdout"]


def _bench_cut(path: Path, tmp: Path, teacher: Path, student: Path, reference: Path) -> Path:
    """``path`` with its sizes cut, our two models, and the methods that need only them."""
    cfg = raw(path)
    cfg["reference"] = {"path": str(reference)}  # exists, so nothing is generated
    cfg["models"] = {"teacher": str(teacher), "piddm": str(student)}
    cfg["generate"] = {
        **cfg.get("generate", {}),
        "n": 2,
        "batch_size": 2,
        "teacher_steps": 2,
        "refine_steps": 1,
        "n_per_method": {},
    }
    cfg["tasks"] = {
        **cfg.get("tasks", {}),
        "n": 1,
        "ablation": False,  # needs the lambda_train = 0 student, not trained here
        "batch_size": 1,
        "ensemble": 2,
        "candidates": 0,
        "steps": 1,
        "forward": None,
        "inverse": None,
    }
    cfg["baselines"] = {
        "diffusionpde": {"num_steps": 2},
        "cocogen": {"num_steps": 2},
        "eci": {"num_steps": 2},
        "dflow": {"num_steps": 2, "iterations": 1},
    }
    # PIDM and PID need their own trained models (skipped: 'models' does not name them)
    cfg["methods"] = [m for m in cfg["methods"] if m not in ("pidm", "pid")]
    cfg["device"] = "cpu"
    cfg["out_dir"] = str(tmp / f"out-{path.stem}")
    out = tmp / path.name
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.mark.slow
def test_darcy_128_configs_run_end_to_end(tmp_path: Path, capsys):
    """Darcy's 128^2 configs run train -> distill -> sample -> solve -> bench on the CPU.

    Kept from the configs: the 128^2 grid, the full U-Net (base 128, 1-2-2-2, four residual
    blocks, attention, dropout 0.1: 55.6 M parameters), the diffusion and loss settings, the
    student's lambda_train / std_weight / residual_grad, the bench's methods that need only a
    teacher and a PIDDM student, its tasks and mask kind. Cut (CPU time, not correctness):
    2 training and 2 distillation steps at batch 2 (not 64: about 6 s per sample per step on
    one thread, so batch 64 would take about 6 min per step), 8 training samples, 4 teacher
    pairs from 2 Heun steps, 2 samples, 1 task instance with 2 latents and 1 optimiser step,
    2 sampler steps per baseline. Not trained here (their rows are skipped): PIDM, PID and
    the lambda_train = 0 ablation student. Measured: 622 s on a 2-core machine shared with
    other jobs (docs/gpu-128.md).
    """
    teacher_cfg = teacher_config_of(E2E_PDE)
    student_cfg = CONFIGS / f"{E2E_PDE}-{RESOLUTION}-piddm-gpu.yaml"
    benches = [p for p in BENCH if pde_of_name(p) == E2E_PDE]
    assert teacher_cfg in TEACHERS and student_cfg in STUDENTS and benches

    data, reference = tmp_path / "train.h5", tmp_path / "test.h5"
    _cli(capsys, "data", "generate", E2E_PDE, "-s", "128", "--n", "8", "--seed", "0",
         "--out", str(data), "--quiet")  # fmt: skip
    _cli(capsys, "data", "generate", E2E_PDE, "-s", "128", "--n", "4", "--seed", "1",
         "--out", str(reference), "--quiet")  # fmt: skip

    teacher = tmp_path / "teacher"
    out = _cli(capsys, "train", "--config", str(teacher_cfg), "--data", str(data),
               "--run-dir", str(teacher), "--steps", "2", "--device", "cpu", "--no-progress",
               *_sets(TEACHER_CUT))  # fmt: skip
    assert (teacher / "checkpoints" / "final.safetensors").is_file(), out
    full_net = config_to_dict(load_config(teacher_cfg))["net"]
    teacher_net = read_metadata(teacher / "checkpoints" / "final.safetensors")["net"]
    assert {k: teacher_net[k] for k in full_net if full_net[k] is not None} == {
        k: v for k, v in full_net.items() if v is not None
    }

    student = tmp_path / "student"
    out = _cli(capsys, "distill", "--teacher", str(teacher), "--config", str(student_cfg),
               "--run-dir", str(student), "--steps", "2", "--device", "cpu", "--no-progress",
               *_sets(STUDENT_CUT))  # fmt: skip
    assert (student / "checkpoints" / "final.safetensors").is_file(), out
    # the student is the teacher's network (its config.json net section is not used)
    assert read_metadata(student / "checkpoints" / "final.safetensors")["net"] == teacher_net

    for model, extra in ((teacher, ["--steps", "2"]), (student, [])):
        samples = tmp_path / f"samples-{model.name}.h5"
        _cli(capsys, "sample", "--model", str(model), "--n", "2", "--batch-size", "2",
             "--out", str(samples), "--pde", E2E_PDE, "--resolution", "128", "--device", "cpu",
             "--quiet", *extra)  # fmt: skip
        assert samples.is_file()

    for task in ("forward", "inverse"):
        out = _cli(capsys, "solve", task, "--model", str(student), "--data", str(reference),
                   "--obs-fraction", "0.03", "--n", "1", "--ensemble", "2", "--candidates", "0",
                   "--steps", "1", "--out", str(tmp_path / f"solve-{task}.h5"),
                   "--device", "cpu")  # fmt: skip
        assert (tmp_path / f"solve-{task}.h5").is_file(), out

    for bench in benches:
        cut = _bench_cut(bench, tmp_path, teacher, student, reference)
        out = _cli(capsys, "bench", "--pde", E2E_PDE, "--config", str(cut), "--threads", "1",
                   "--quiet")  # fmt: skip
        assert (tmp_path / f"out-{bench.stem}" / "bench.json").is_file(), out
