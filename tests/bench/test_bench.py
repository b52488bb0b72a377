"""``piddm bench``: one row per (method, task) with every key, shared instances / masks /
latents, measured NFE, valid JSON and PNG figures, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import make_dataset, tiny_config_dict, tiny_start_config_dict
from piddm.bench import (
    METHODS,
    ROW_KEYS,
    bench_config_from_dict,
    bench_masks,
    run_bench,
    task_mask_seed,
)
from piddm.bench.figures import task_metric, time_vs_error_figure
from piddm.bench.report import COLUMNS, markdown_table
from piddm.bench.runner import row_label
from piddm.cli import main
from piddm.config import config_from_dict
from piddm.data.generate import sample_seed
from piddm.errors import PiddmError
from piddm.metrics import per_sample_relative_residual, relative_l2, solver_consistency
from piddm.models import load_any
from piddm.pdes import get_pde
from piddm.sampling import latents, make_sampler
from piddm.tasks import make_mask
from piddm.tasks.amortise import amortise
from piddm.tasks.gaussian_posterior import gaussian_posterior

TASKS = ("generate", "forward", "inverse", "reconstruct")
GEN_N, TASK_N, ENSEMBLE, OPT_STEPS, STEPS, REFINE = 4, 2, 2, 2, 4, 2
CANDIDATES = 3  # prior draws screened per task instance
#: Rows with other settings: DiffusionPDE with more steps on one instance, a cheaper PIDDM.
VARIANTS = {
    "diffusionpde": {"6 steps": {"num_steps": STEPS + 2, "n": 1}},
    "piddm-1": {"cheap": {"steps": 1, "ensemble": 1, "candidates": 0}},
}
VARIANT_ROWS = {("diffusionpde", "6 steps"), ("piddm-1", "cheap")}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets run fastest (and robustly on a busy 2-core machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def bench_dict(root: Path, **sections: object) -> dict:
    """A bench config on tiny 16^2 Darcy models built into ``root/cache``."""
    teacher = root / "teacher.yaml"
    if not teacher.exists():
        data = make_dataset(root / "train.h5", n=24)
        teacher.write_text(yaml.safe_dump(tiny_config_dict(data, root / "runs", steps=10)))
    raw = {
        "pde": {"name": "darcy", "resolution": 16},
        "reference": {"path": str(root / "reference.h5"), "n": 16, "seed": 1},
        "build": {
            "cache_dir": str(root / "cache"),
            "teacher_config": str(teacher),
            "teacher_set": {"train.checkpoint_every": 10},
            "student_set": {
                "train.steps": 3,
                "train.log_every": 1,
                "train.checkpoint_every": 3,
                "train.num_samples": 0,
                "optim.batch_size": 4,
                "optim.warmup_steps": 0,
                "distill.pairs": 8,
                "distill.pair_steps": 3,
                "distill.pid_grid": 8,
            },
        },
        "generate": {"n": GEN_N, "batch_size": 3, "teacher_steps": STEPS, "refine_steps": REFINE},
        "tasks": {
            "n": TASK_N,
            "n_per_method": {"dflow": 1},
            "ensemble": ENSEMBLE,
            "candidates": CANDIDATES,
            "inverse": {"candidates": 0},  # a per-task override: the inverse rows do not screen
            "steps": OPT_STEPS,
            "batch_size": 2,
        },
        "baselines": {
            "diffusionpde": {"num_steps": STEPS},
            "cocogen": {"num_steps": STEPS},
            "eci": {"num_steps": STEPS},
            "dflow": {"num_steps": 2, "iterations": 1, "optimizer": "adam"},
        },
        "classical": {
            "map": {"steps": 3, "starts": 1, "candidates": 2},
            "bayes-floor": {"samples": 2},
        },
        "device": "cpu",
        "out_dir": str(root / "out"),
    }
    raw.update(sections)
    return raw


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bench")
    cfg = bench_config_from_dict(bench_dict(root, variants=VARIANTS))
    return root, cfg, run_bench(cfg, progress=False)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code), out, err


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


# --------------------------------------------------------------------------- rows
def test_a_row_per_method_and_task_with_every_key(bench) -> None:
    _, _, result = bench
    keys = {(r["method"], r["task"], r["variant"]) for r in result.rows}
    expected = {(m, t, None) for m in METHODS for t in TASKS}
    expected |= {("piddm-1", t, "lambda0") for t in TASKS}
    expected |= {(m, t, v) for m, v in VARIANT_ROWS for t in TASKS if t != "generate"}
    assert keys == expected and len(result.rows) == len(expected)
    for row in result.rows:
        assert tuple(row) == ROW_KEYS
    assert result.notes == []


#: (method, task) pairs without rows of results on tiny Darcy: no observation terms, tasks
#: only, no Darcy posterior sampler given values of u.
UNSUPPORTED = {
    *((m, t) for m in ("teacher", "pidm", "cocogen", "piddm-ref") for t in TASKS[1:]),
    ("map", "generate"),
    ("bayes-floor", "generate"),
    ("bayes-floor", "inverse"),
    ("bayes-floor", "reconstruct"),
}


def test_unsupported_pairs_say_so(bench) -> None:
    _, _, result = bench
    rows = {(r["method"], r["task"], r["variant"]): r for r in result.rows}
    for method, task in UNSUPPORTED:
        row = rows[method, task, None]
        assert row["supported"] is False and row["note"], (method, task)
        assert row["nfe"] is None and row["rel_l2_solution"] is None
    for (method, task, variant), row in rows.items():
        assert row["supported"] is ((method, task) not in UNSUPPORTED), (method, task)
        if row["supported"]:
            n_task = 1 if method == "dflow" or variant == "6 steps" else TASK_N
            assert row["n"] == (GEN_N if task == "generate" else n_task)
            assert row["seconds_per_sample"] > 0
            assert row["nfe"] == 0 if method in ("map", "bayes-floor") else row["nfe"] >= 1
            key = "mmse" if task == "generate" else "rel_l2_solution"
            assert row[key] is not None and np.isfinite(row[key]), (method, task)
            assert row["error_rate"] is not None or task == "generate"


def test_reconstruct_rows_observe_both_channels(bench) -> None:
    _, _, result = bench
    truth, mask = result.instances["reconstruct"]
    assert mask.shape == truth.shape == (TASK_N, 2, 16, 16)
    assert mask.sum(axis=(2, 3)).tolist() == [[8, 8]] * TASK_N  # 3 % of each channel
    supported = {r["method"] for r in result.rows if r["task"] == "reconstruct" and r["supported"]}
    assert supported == {"diffusionpde", "eci", "dflow", "pid", "piddm-1", "map"}
    for row in result.rows:
        if row["task"] == "reconstruct" and row["supported"] and row["n"] > 1:
            for key in ("rel_l2_coefficient", "rel_l2_solution", "error_rate"):
                ci = row[f"{key}_ci"]
                assert ci is not None and ci[0] <= row[key] <= ci[1], (row_label(row), key)


def test_nfe_is_measured_per_method(bench) -> None:
    _, _, result = bench
    rows = {(r["method"], r["task"], r["variant"]): r for r in result.rows}
    heun = 2 * STEPS - 1
    assert rows["teacher", "generate", None]["nfe"] == heun
    assert rows["diffusionpde", "forward", None]["nfe"] == heun
    assert rows["eci", "inverse", None]["nfe"] == STEPS
    assert rows["piddm-1", "generate", None]["nfe"] == 1
    # PIDDM-ref's L-BFGS: per step at least a gradient and a line-search trial (forward and
    # backward each), then the final objective and the output (measured, not assumed).
    assert rows["piddm-ref", "generate", None]["nfe"] >= 4 * REFINE + 2
    # Latent optimisation: the screened candidates (forward only: the inverse task overrides
    # them), then every ensemble member's forward and backward passes.
    latent = ENSEMBLE * (OPT_STEPS + 1) + ENSEMBLE * OPT_STEPS
    assert rows["piddm-1", "forward", "lambda0"]["nfe"] == CANDIDATES + latent
    assert rows["pid", "forward", None]["nfe"] == CANDIDATES + latent
    assert rows["pid", "inverse", None]["nfe"] == latent
    # Variants run with their own settings: more guided steps, one latent and one step.
    for task in TASKS[1:]:
        assert rows["diffusionpde", task, "6 steps"]["nfe"] == 2 * (STEPS + 2) - 1
        assert rows["piddm-1", task, "cheap"]["nfe"] == 1 * (1 + 1) + 1 * 1


def test_rows_have_scale_free_measures_and_intervals(bench) -> None:
    _, _, result = bench
    pde = get_pde("darcy", 16)
    for row in result.rows:
        if not row["supported"]:
            continue
        label, task = row_label(row), row["task"]
        fields = result.outputs[task, label]
        relative = per_sample_relative_residual(pde, fields)
        assert row["relative_residual_mean"] == pytest.approx(relative.mean()), label
        assert row["relative_residual_median"] == pytest.approx(np.median(relative)), label
        means = ["residual_mean", "relative_residual_mean"]
        if task == "generate":  # consistency over the samples: mean and median
            consistency = solver_consistency(pde, fields)
            assert row["solver_consistency"] == pytest.approx(consistency.mean()), label
            assert row["solver_consistency_median"] == pytest.approx(np.median(consistency))
            means.append("solver_consistency")
        else:  # task means over the instances
            assert row["solver_consistency"] is None and row["solver_consistency_ci"] is None
            means += ["rel_l2_coefficient", "rel_l2_solution", "error_rate"]
        for key in means:
            ci = row[f"{key}_ci"]
            if row["n"] == 1:  # dflow's one task instance: no interval
                assert ci is None, (label, key)
            else:
                assert ci[0] <= row[key] <= ci[1], (label, key)
                assert ci[1] - ci[0] == pytest.approx(2 * (row[key] - ci[0])), (label, key)
    # A task interval is the normal one over the instances.
    row = next(r for r in result.rows if r["method"] == "eci" and r["task"] == "forward")
    truth, _ = result.instances["forward"]
    errors = relative_l2(result.outputs["forward", "eci"], truth)[:, 1]
    half = 1.96 * errors.std(ddof=1) / np.sqrt(len(errors))
    assert row["rel_l2_solution_ci"] == pytest.approx([errors.mean() - half, errors.mean() + half])


def test_methods_share_instances_masks_and_latents(bench) -> None:
    _, cfg, result = bench
    pde = get_pde("darcy", 16)
    for task, channel in (("forward", pde.coefficient_channel), ("inverse", pde.solution_channel)):
        truth, mask = result.instances[task]
        # The masks of the tasks' fixed order (forward 0, inverse 1), whatever tasks.run lists.
        k = ("forward", "inverse").index(task)
        old = make_mask(pde, task, 0.03, torch.Generator().manual_seed(sample_seed(0, k)), TASK_N)
        assert np.array_equal(mask, old.numpy())
        assert np.array_equal(mask, bench_masks(pde, task, TASK_N).numpy())
        assert mask.shape == truth.shape == (TASK_N, 2, 16, 16)
        assert mask[:, channel].sum(axis=(1, 2)).tolist() == [8] * TASK_N  # 3 % of 256
        assert not mask[:, 1 - channel].any()
        # Hard-constraint methods reproduce the shared observations exactly.
        eci, piddm = result.outputs[task, "eci"], result.outputs[task, "piddm-1"]
        assert np.array_equal(eci[mask], truth[mask]) and np.array_equal(piddm[mask], truth[mask])
        assert not np.array_equal(eci, piddm)
        assert np.array_equal(result.outputs[task, "map"][mask], truth[mask])
    # Generation starts from latents(sample_seed(seed, i)), whatever the batch size.
    model, meta = load_any(Path(cfg.build.cache_dir) / "teacher")
    sampler, _ = make_sampler(model, meta, pde, steps=STEPS)
    eps = latents([sample_seed(cfg.generate.seed, i) for i in range(GEN_N)], (2, 16, 16))
    expected = pde.normalisation.denormalise(sampler(eps).double()).numpy()
    # (batches of 3 vs 4: float round-off only; other latents would differ by O(1))
    np.testing.assert_allclose(result.outputs["generate", "teacher"], expected, atol=1e-4)


def test_json_and_figures_are_written(bench) -> None:
    root, _, result = bench
    payload = json.loads((root / "out" / "bench.json").read_text())
    assert payload["rows"] == json.loads(json.dumps(result.rows))
    assert payload["pde"]["name"] == "darcy" and payload["config"]["generate"]["n"] == GEN_N
    names = sorted(Path(p).name for p in payload["figures"])
    expected = [f"{t}-{kind}.png" for t in TASKS[1:] for kind in ("instance-0", "time-vs-error")]
    assert names == sorted([*expected, "generate-residuals.png"])
    for path in payload["figures"]:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plt_image(path).ndim == 3  # a real image, not only a PNG header
    labels = {row_label(r) for r in result.rows if r["task"] == "generate"}
    assert "piddm-1 (lambda0)" in labels
    labels = {row_label(r) for r in result.rows if r["task"] == "inverse"}
    assert {"diffusionpde (6 steps)", "piddm-1 (cheap)"} <= labels


def plt_image(path: str | Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


def test_time_vs_error_figure_is_legible(bench) -> None:
    """One point per measured row with its interval, legend labels by row; no overlaps."""
    from test_figures import legibility_problems

    _, _, result = bench
    pde = get_pde("darcy", 16)
    rows = [r for r in result.rows if r["task"] == "forward" and r["supported"]]
    fig = time_vs_error_figure(pde, "forward", rows)
    assert legibility_problems(fig) == []
    legend = {t.get_text() for t in fig.legends[0].get_texts()}
    points = {f"{row_label(r)} (n={r['n']})" for r in rows if r["method"] != "bayes-floor"}
    assert legend == points | {"Bayes floor"}
    assert task_metric(pde, "inverse") == ("error_rate", "error rate of a")
    assert task_metric(get_pde("poisson", 16), "inverse")[0] == "rel_l2_coefficient"


def test_markdown_table_has_a_line_per_row(bench) -> None:
    _, _, result = bench
    lines = markdown_table(result.rows).splitlines()
    assert lines[0].startswith("| method | task | NFE | s/sample |")
    assert len(lines) == 2 + len(result.rows)
    assert all(line.count("|") == len(COLUMNS) + 1 for line in lines)
    assert sum("unsupported" in line for line in lines) == len(UNSUPPORTED)
    assert any(line.startswith("| piddm-1 (lambda0) | inverse | ") for line in lines)
    assert "| solver consistency median / mean | rel. residual median / mean |" in lines[0]
    teacher = next(line for line in lines if line.startswith("| teacher | generate |"))
    consistency = teacher.split(" | ")[4]  # median / mean ± half-width of the interval
    assert consistency.count(" / ") == 1 and " ± " in consistency.split(" / ")[1]
    dflow = next(line for line in lines if line.startswith("| dflow | forward |"))
    assert " ± " not in dflow.split(" | ")[-2]  # one instance: no interval
    eci = next(line for line in lines if line.startswith("| eci | forward |"))
    assert eci.split(" | ")[-2].count(" ± ") == 2  # rel L2 of coefficient and solution


def test_cli_prints_one_json_object(bench, capsys) -> None:
    root, _, _ = bench
    raw = bench_dict(root, methods=["piddm-1"])
    raw["tasks"].update(run=["inverse"], ablation=False)
    raw["generate"]["consistency"] = False
    config = write_config(root / "cli.yaml", raw)
    out_dir = root / "cli-out"
    code, out, err = run_cli(
        capsys, "bench", "--pde", "darcy", "--config", str(config), "--out-dir", str(out_dir),
        "--json", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert [(r["method"], r["task"], r["variant"]) for r in payload["rows"]] == [
        ("piddm-1", "generate", None),
        ("piddm-1", "generate", "lambda0"),
        ("piddm-1", "inverse", None),
    ]
    assert all(r["solver_consistency"] is None for r in payload["rows"])
    assert json.loads((out_dir / "bench.json").read_text())["rows"] == payload["rows"]
    assert len(payload["figures"]) == 3  # residual maps, the inverse instance, time vs error


def test_missing_models_skip_their_rows_with_a_warning(bench, capsys) -> None:
    root, cfg, _ = bench
    raw = bench_dict(
        root,
        methods=["eci", "pid"],
        models={
            "teacher": str(Path(cfg.build.cache_dir) / "teacher"),
            "pid": str(root / "nowhere"),
        },
    )
    raw["tasks"]["run"] = []
    del raw["build"]
    config = write_config(root / "missing.yaml", raw)
    code, out, err = run_cli(capsys, "bench", "--pde", "darcy", "--config", str(config))
    assert code == 0, err
    lines = out.strip().splitlines()  # the table alone
    assert len(lines) == 3 and lines[2].startswith("| eci | generate | 4 |")
    assert "warning: model 'pid'" in err
    payload = json.loads((root / "out" / "bench.json").read_text())
    assert [(r["method"], r["task"]) for r in payload["rows"]] == [("eci", "generate")]
    assert any("pid" in note for note in payload["notes"])


def test_start_rows_begin_at_the_amortised_start(bench, tmp_path: Path) -> None:
    """A ``piddm-1`` variant with ``start: true`` runs from ``models.start`` (no screening: its
    NFE is the ensemble's steps alone); without a start network it is skipped with a note."""
    root, cfg, _ = bench
    student = Path(cfg.build.cache_dir) / "piddm"
    start_cfg = tiny_start_config_dict(
        root / "train.h5",
        tmp_path / "runs",
        n_holdout=4,
        optim={"batch_size": 4, "warmup_steps": 0},
        steps=2,
        log_every=1,
        checkpoint_every=2,
    )

    def train_start(config: dict, name: str) -> Path:
        """The checkpoint of a start network of ``student`` trained with ``config``."""
        run = amortise(
            config_from_dict(config),
            str(student),
            run_dir=tmp_path / name,
            device="cpu",
            progress=False,
        )
        return run.checkpoint

    start = train_start(start_cfg, "start")
    variants = {"piddm-1": {"amortised": {"start": True, "steps": 1, "ensemble": 2}}}
    raw = bench_dict(
        root,
        methods=["piddm-1"],
        variants=variants,
        models={"piddm": str(student), "start": str(start)},
    )
    raw["tasks"]["run"] = ["inverse"]
    raw["out_dir"] = str(tmp_path / "out")
    del raw["build"]
    result = run_bench(bench_config_from_dict(raw), progress=False)
    rows = {r["variant"]: r for r in result.rows if r["task"] == "inverse"}
    assert set(rows) == {None, "amortised"}
    assert rows["amortised"]["nfe"] == 2 * (1 + 1) + 2 * 1 and rows["amortised"]["n"] == TASK_N
    assert rows[None]["nfe"] > rows["amortised"]["nfe"]
    # A start trained for forward problems alone is refused for the inverse rows, before any
    # row runs (no bench.json is written).
    forward_cfg = {**start_cfg, "start": {**start_cfg.get("start", {}), "tasks": ["forward"]}}
    forward_start = train_start(forward_cfg, "forward-start")
    wrong = {**raw, "models": {**raw["models"], "start": str(forward_start)}}
    wrong["out_dir"] = str(tmp_path / "wrong")
    with pytest.raises(PiddmError, match="trained on forward problems, not inverse"):
        run_bench(bench_config_from_dict(wrong), progress=False)
    assert not (tmp_path / "wrong" / "bench.json").exists()
    del raw["models"]["start"]
    result = run_bench(bench_config_from_dict(raw), progress=False)
    assert {r["variant"] for r in result.rows} == {None}
    assert any("'piddm-1 (amortised)' skipped: no 'start' model" in n for n in result.notes)


def test_gauss_newton_rows_take_their_settings(bench, tmp_path: Path) -> None:
    """A ``piddm-1`` variant with ``optimizer: gauss-newton`` (and its damping) runs the
    Gauss-Newton solver: B (steps + 1) + 1 forward passes plus one backward pass per observed
    node, none of the default's screening; a physics weight is refused with the config error."""
    root, cfg, _ = bench
    student = Path(cfg.build.cache_dir) / "piddm"
    setting = {"optimizer": "gauss-newton", "lambda_infer": 0.0, "candidates": 0}
    variants = {"piddm-1": {"GN": {**setting, "ensemble": 2, "steps": 2, "damping": 1e-4}}}
    raw = bench_dict(root, methods=["piddm-1"], variants=variants, models={"piddm": str(student)})
    raw["tasks"]["run"] = ["inverse"]
    raw["out_dir"] = str(tmp_path / "out")
    del raw["build"]
    result = run_bench(bench_config_from_dict(raw), progress=False)
    rows = {r["variant"]: r for r in result.rows if r["task"] == "inverse"}
    jacobian = rows["GN"]["nfe"] - (2 * (2 + 1) + 1)
    assert jacobian >= 1 and rows["GN"]["n"] == TASK_N
    assert rows["GN"]["rel_l2_coefficient"] is not None
    raw["variants"] = {"piddm-1": {"GN": {"optimizer": "gauss-newton"}}}  # lambda_infer 0.1 stays
    with pytest.raises(PiddmError, match="fits the observations only"):
        run_bench(bench_config_from_dict(raw), progress=False)


def test_classical_rows_need_no_model(tmp_path: Path) -> None:
    """MAP and the Bayes floor on Poisson (linear-Gaussian): the floor is the exact posterior
    mean, so its row is the Gaussian posterior's error; MAP equals it (a Gaussian's mode is
    its mean). Both are timed, with NFE 0, and have no generation rows."""
    raw = {
        "pde": {"name": "poisson", "resolution": 16},
        "reference": {"path": str(tmp_path / "ref.h5"), "n": 8, "seed": 1},
        "tasks": {"n": 4, "n_per_method": {"map": 3}},
        "methods": ["map", "bayes-floor"],
        "variants": {"map": {"two": {"steps": 5, "n": 2}}},  # exact here: settings do not enter
        "device": "cpu",
        "out_dir": str(tmp_path / "out"),
    }
    result = run_bench(bench_config_from_dict(raw), progress=False)
    pde = get_pde("poisson", 16)
    rows = {(r["method"], r["task"]): r for r in result.rows if r["variant"] is None}
    assert len(rows) == 8 and len(result.rows) == 8 + 3 and result.notes == []
    for method in ("map", "bayes-floor"):
        assert not rows[method, "generate"]["supported"] and rows[method, "generate"]["note"]
    for task in TASKS[1:]:
        truth, mask = result.instances[task]
        posterior = gaussian_posterior(pde, np.where(mask, truth, 0.0), mask)[0]
        errors = relative_l2(posterior, truth)
        floor, map_row = rows["bayes-floor", task], rows["map", task]
        assert floor["n"] == 4 and map_row["n"] == 3 and floor["nfe"] == map_row["nfe"] == 0
        assert floor["model"] is None and floor["seconds_per_sample"] > 0
        assert floor["rel_l2_solution"] == pytest.approx(errors[:, 1].mean())
        assert floor["rel_l2_coefficient"] == pytest.approx(errors[:, 0].mean())
        assert map_row["rel_l2_solution"] == pytest.approx(errors[:3, 1].mean())
        variant = next(r for r in result.rows if r["task"] == task and r["variant"] == "two")
        assert variant["n"] == 2 and row_label(variant) == "map (two)"
        assert variant["rel_l2_solution"] == pytest.approx(errors[:2, 1].mean())
        assert floor["rel_l2_solution_ci"][0] < floor["rel_l2_solution"]
    names = sorted(Path(p).name for p in result.figures)
    assert [n for n in names if "time-vs-error" in n] == [
        f"{t}-time-vs-error.png" for t in sorted(TASKS[1:])
    ]


def test_masks_depend_on_the_task_not_on_tasks_run() -> None:
    """Each task's masks are seeded by its place in (forward, inverse, reconstruct): running
    reconstruct too, or inverse alone, leaves them as the bench always drew them."""
    pde = get_pde("darcy", 16)
    for k, task in enumerate(("forward", "inverse", "reconstruct")):
        assert task_mask_seed(task, 3) == sample_seed(3, k)
        masks = bench_masks(pde, task, 5, 0.1, seed=3)
        old = make_mask(pde, task, 0.1, torch.Generator().manual_seed(sample_seed(3, k)), 5)
        assert np.array_equal(masks.numpy(), old.numpy())
        assert np.array_equal(bench_masks(pde, task, 2, 0.1, seed=3), masks[:2])  # a prefix


# --------------------------------------------------------------------------- bad input
def assert_user_error(code: int, err: str, fragment: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], err


@pytest.mark.parametrize(
    ("change", "pde", "fragment"),
    [
        ({"methods": ["teacher", "piddm-2"]}, "darcy", "did you mean 'piddm-1'"),
        ({}, "poisson", "does not match the config's PDE 'darcy'"),
        ({"reference": {"path": "missing.h5"}}, "darcy", "set reference.n"),
        ({"generate": {"nn": 3}}, "darcy", "generate.nn: unknown key"),
        ({"baselines": {"eci": {"num_step": 3}}}, "darcy", "did you mean 'num_steps'"),
        ({"baselines": {"foo": {}}}, "darcy", "config baselines: unknown name 'foo'"),
        ({"tasks": {"run": ["denoise"]}}, "darcy", "config tasks.run"),
        ({"variants": {"teacher": {"x": {}}}}, "darcy", "config variants: unknown name 'teacher'"),
        (
            {"variants": {"diffusionpde": {"2000 steps": {"num_step": 9}}}},
            "darcy",
            "variants.diffusionpde.2000 steps.num_step: unknown setting (did you mean 'num_steps'",
        ),
        ({"variants": {"piddm-1": {"a": {"steps": -1}}}}, "darcy", "variants.piddm-1.a.steps"),
        ({"variants": {"piddm-1": {"a": {"n": 5}}}}, "darcy", "variants.piddm-1.a.n: expected 1"),
        ({"variants": {"piddm-1": {"lambda0": {}}}}, "darcy", "labels the ablation"),
        ({"variants": {"eci": []}}, "darcy", "config variants.eci: expected a mapping of row"),
        (
            {"variants": {"map": {"a": {"starts": 8, "candidates": 4}}}},
            "darcy",
            "config variants.map.a: MAP setting candidates",
        ),
        ({"classical": {"map": {"stps": 3}}}, "darcy", "did you mean 'steps'"),
        ({"classical": {"map": {"steps": 0}}}, "darcy", "config classical.map: MAP setting steps"),
        ({"classical": {"bayes-floor": {"samples": 0}}}, "darcy", "classical.bayes-floor.samples"),
        ({"classical": {"mpa": {}}}, "darcy", "config classical: unknown name 'mpa'"),
        ({"tasks": {"n": 9}}, "darcy", "tasks.n: 9 instances but reference.n is 8"),
        ({"tasks": {"n": 2, "candidates": -1}}, "darcy", "tasks.candidates"),
        ({"tasks": {"n": 2, "forward": {"candidates": -1}}}, "darcy", "tasks.forward.candidates"),
        ({"tasks": {"n": 2, "inverse": {"ensembl": 2}}}, "darcy", "did you mean 'ensemble'"),
    ],
)
def test_bad_inputs_are_one_line_errors(
    tmp_path: Path, capsys, change: dict, pde: str, fragment: str
) -> None:
    raw = {
        "pde": {"name": "darcy", "resolution": 16},
        "reference": {"path": str(tmp_path / "ref.h5"), "n": 8},
        "tasks": {"n": 2},
        "out_dir": str(tmp_path / "out"),
        **change,
    }
    config = write_config(tmp_path / "bad.yaml", raw)
    code, _, err = run_cli(capsys, "bench", "--pde", pde, "--config", str(config))
    assert_user_error(code, err, fragment)


def test_training_data_as_reference_is_refused(bench) -> None:
    root, cfg, _ = bench
    raw = bench_dict(root, methods=["teacher"], tasks={"run": []})
    raw["reference"] = {"path": str(root / "train.h5")}
    with pytest.raises(PiddmError, match="training data"):
        run_bench(bench_config_from_dict(raw), progress=False, figures=False)


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[2] / "configs").glob("bench-*.yaml")),
    ids=lambda p: p.name,
)
def test_shipped_bench_configs_load(path: Path) -> None:
    from piddm.bench.config import load_bench_config

    cfg = load_bench_config(path)
    assert cfg.pde.name in ("darcy", "poisson") and cfg.methods


def test_diffusionpde_masks_are_the_ones_the_bench_observes(bench) -> None:
    """``tasks.masks: diffusionpde``: every task row observes DiffusionPDE's point sets."""
    from piddm.tasks.diffusionpde import diffusionpde_masks

    root, _, _ = bench
    raw = bench_dict(root, methods=["piddm-1"], out_dir=str(root / "out-dpde"))
    raw["tasks"] = {**raw["tasks"], "masks": "diffusionpde", "run": ["forward"]}
    raw["generate"] = {**raw["generate"], "n": 2}
    result = run_bench(bench_config_from_dict(raw), progress=False)
    _, mask = result.instances["forward"]
    expected = diffusionpde_masks(get_pde("darcy", 16), "forward", TASK_N).numpy()
    assert np.array_equal(mask, expected) and mask.any()


def test_per_task_settings_override_only_their_task(tmp_path: Path) -> None:
    raw = {
        "pde": {"name": "darcy", "resolution": 16},
        "reference": {"path": str(tmp_path / "ref.h5"), "n": 8},
        "tasks": {
            "n": 2,
            "ensemble": 4,
            "candidates": 64,
            "forward": {"candidates": 0, "solver_members": True},
        },
    }
    tasks = bench_config_from_dict(raw).tasks
    assert tasks.latent_settings("forward") == {
        **tasks.latent_settings("inverse"),
        "candidates": 0,
        "solver_members": True,
    }
    assert tasks.latent_settings("inverse")["candidates"] == 64
    assert tasks.latent_settings("inverse")["solver_members"] is False
    assert tasks.latent_settings("forward")["ensemble"] == 4
