"""`piddm demo` on a tiny setting: real pretrained models, real solver, real figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import SUBPROCESS_ENV, piddm_command

TINY = (
    "--samples",
    "4",
    "--teacher-samples",
    "2",
    "--instances",
    "2",
    "--ensemble",
    "2",
    "--candidates",
    "4",
    "--steps",
    "3",
)


def test_demo_prints_its_tables_and_writes_readable_figures(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        piddm_command("demo", "--out", str(out), "--json", *TINY),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["pde"] == "darcy" and report["resolution"] == 32
    solver, teacher, student = report["generation"]
    assert solver["residual_mean"] < 1e-8  # fresh solver data satisfies the discrete PDE
    assert student["nfe"] == 1 and teacher["nfe"] == 35
    assert student["residual_mean"] < teacher["residual_mean"] / 2
    # The shipped student is within 5 % of the solver for its own coefficient (3.7 % median).
    assert student["solver_consistency_median"] < 0.05
    # Scale-free measures: round-off for the solver's own fields, between 0 and ~1 for models.
    assert solver["solver_consistency_median"] < 1e-10
    assert solver["relative_residual_median"] < 1e-10
    for row in (teacher, student):
        assert 1e-4 < row["solver_consistency_median"] < 1.0, row["method"]
        assert 1e-3 < row["relative_residual_median"] < 10.0, row["method"]
        low, high = row["relative_residual_median_ci"]
        assert low <= row["relative_residual_median"] <= high
    assert student["relative_residual_median"] < teacher["relative_residual_median"]
    assert [t["task"] for t in report["tasks"]] == ["forward", "inverse"]
    # Darcy's tasks start from the start networks shipped for them, with solve --start's settings
    assert [t["start"] for t in report["tasks"]] == ["darcy-32-start", "darcy-32-start-inverse"]
    assert [t["solver"] for t in report["tasks"]] == [
        "darcy-32-start + 4 x 0",  # the start alone: more accurate on forward problems
        "darcy-32-start-inverse + 4 x 10",
    ]
    for task in report["tasks"]:
        assert 0 <= task["rel_l2_solution"] < 1.0 and 0 <= task["error_rate"] <= 1
        # Darcy has no exact posterior: the yardstick is the prior mean's error
        assert task["yardstick"] == "prior_mean_error" and "bayes_floor" not in task
        guess = task["prior_mean_error"]
        assert 0.1 < guess["rel_l2_solution"] < 1.0 and 0.2 < guess["error_rate"] < 0.8
        # ... which the solver from a start beats by far (about 10 % against 27 % / 46 %)
        assert task["rel_l2_solution"] < guess["rel_l2_solution"] / 1.5
        assert task["error_rate"] < guess["error_rate"] / 1.5
    assert [t["observed"] for t in report["tasks"]] == ["3 % of a", "3 % of u"]
    # each PDE writes to its own directory under --out
    assert all(Path(f).parent == out / "darcy" for f in report["figures"])
    names = sorted(Path(f).name for f in report["figures"])
    assert names == ["forward.png", "inverse.png", "student-samples.png", "teacher-samples.png"]
    for figure in report["figures"]:
        assert Path(figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert Path(figure).stat().st_size > 10_000

    text = subprocess.run(  # --no-start: every task from screened prior draws
        piddm_command("demo", "--out", str(out), "--no-start", *TINY),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert text.returncode == 0, text.stderr
    assert "PIDDM student" in text.stdout and "figures:" in text.stdout
    header = next(line for line in text.stdout.splitlines() if line.lstrip().startswith("method"))
    assert header.split() == [
        "method",
        "NFE",
        "ms/sample",
        "consistency",
        "rel.",
        "res.",
        "residual",
        "vs",
        "teacher",
    ]
    for task in report["tasks"]:  # "forward  3 % of a  37.8% [54.5%]  13.1% [27.3%] ..."
        line = next(x for x in text.stdout.splitlines() if x.split()[:1] == [task["task"]])
        assert line.count("[") == 3, line
        assert line.endswith("  4 -> 2 x 3"), line  # 4 draws screened, 2 members x 3 steps
    assert "[in brackets] prior mean" in text.stdout
    student_line = next(line for line in text.stdout.splitlines() if "PIDDM student" in line)
    cells = student_line.split()[-4:]  # consistency, rel. res., residual, vs teacher
    assert float(cells[0]) == float(f"{student['solver_consistency_median']:.3g}")
    assert float(cells[1]) == float(f"{student['relative_residual_median']:.3g}")


def test_demo_refuses_bad_settings_with_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    bad = (
        ("--out", str(a_file)),
        ("--obs-fraction", "0"),
        ("--samples", "1"),
        ("--candidates", "-1"),
    )
    for args in bad:
        proc = subprocess.run(
            piddm_command("demo", *args), capture_output=True, text=True, env=SUBPROCESS_ENV
        )
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert a_file.read_text() == "x"


def test_burgers_demo_solves_from_its_initial_condition_and_sensors(tmp_path: Path) -> None:
    """Burgers' own tasks: the forward problem observes the whole initial condition (so its
    input's error is 0), the inverse one sensor columns; both against the zero guess."""
    out = tmp_path / "demo"
    proc = subprocess.run(
        piddm_command("demo", "--pde", "burgers", "--out", str(out), "--json", *TINY),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    forward, inverse = json.loads(proc.stdout)["tasks"]
    assert forward["observed"] == "u(x, 0), all 32 x"
    assert forward["observed_fraction"] == 1 / 32 and forward["rel_l2_coefficient"] == 0.0
    assert inverse["observed"] == "2 sensors x all t"
    assert inverse["observed_fraction"] == 2 / 32
    for task in (forward, inverse):
        assert task["start"] is None and task["solver"] == "4 -> 2 x 3"  # none shipped
        assert task["yardstick"] == "prior_mean_error"
        assert 0.8 < task["prior_mean_error"]["rel_l2_solution"] < 1.0
    assert (out / "burgers" / "forward.png").is_file() and not (out / "forward.png").exists()
