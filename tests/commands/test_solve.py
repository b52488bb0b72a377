"""``piddm solve``: every result carries its yardstick; Burgers' tasks are its own; no
progress bars off a terminal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import SUBPROCESS_ENV, make_dataset, piddm_command
from piddm.tasks.latent import GAUSS_NEWTON_CONFIG, START_CONFIG, start_config

#: A fast latent optimisation: the test is about what the result says, not how good it is.
QUICK = ("--n", "2", "--ensemble", "2", "--candidates", "0", "--steps", "2")


def solve(
    tmp_path: Path, pde: str, task: str, *extra: str, quick: bool = True, fraction: str = "0.03"
) -> subprocess.CompletedProcess[str]:
    """``piddm solve TASK`` on 2 fresh instances of ``pde`` with its pretrained student,
    ``fraction`` observed (with ``QUICK``'s settings unless ``quick`` is false)."""
    data = tmp_path / f"{pde}.h5"
    if not data.exists():
        make_dataset(data, pde, 32, n=2)
    out = tmp_path / f"{pde}-{task}.h5"
    settings = QUICK if quick else ("--n", "2")
    return subprocess.run(
        piddm_command(
            "solve", task, "--model", f"{pde}-32-piddm", "--data", str(data),
            "--obs-fraction", fraction, "--out", str(out), "--overwrite", *settings, *extra,
        ),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("task", ["forward", "inverse"])
def test_poisson_results_carry_the_exact_bayes_floor(tmp_path: Path, task: str) -> None:
    proc = solve(tmp_path, "poisson", task, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["yardstick"] == "bayes_floor"
    floor = summary["bayes_floor"]
    assert set(floor) == {"rel_l2_coefficient", "rel_l2_solution", "error_rate"}
    assert floor["error_rate"] is None  # no two-valued coefficient
    # 3 % of one channel observed: the floor is far from 0 and, being the best possible
    # estimate on average, not far above a 2-step optimisation's error either
    assert 0.05 < floor["rel_l2_solution"] < 1.0
    # ... and next to it the error a method must beat: the prior mean, observations put in
    guess = summary["prior_mean_error"]
    assert guess["rel_l2_solution"] > floor["rel_l2_solution"]
    assert guess["rel_l2_coefficient"] > floor["rel_l2_coefficient"]
    assert "latent optimisation" not in proc.stderr  # stderr is a pipe: no progress bar


def test_burgers_forward_observes_the_initial_condition_against_the_zero_guess(
    tmp_path: Path,
) -> None:
    proc = solve(tmp_path, "burgers", "forward", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["observed_fraction"] == pytest.approx(1 / 32)  # row 0, not 3 % of it
    assert summary["rel_l2_coefficient"] == 0.0  # the input is observed exactly
    assert summary["yardstick"] == "prior_mean_error"
    guess = summary["prior_mean_error"]
    assert guess["rel_l2_coefficient"] == 0.0 and 0.8 < guess["rel_l2_solution"] < 1.0


def test_the_text_output_prints_the_yardstick_next_to_each_metric(tmp_path: Path) -> None:
    proc = solve(tmp_path, "burgers", "inverse")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "2 sensors x all t" in lines[0]
    assert lines[1].split() == ["metric", "estimate", "prior_mean_error"]
    solution = next(line for line in lines if line.split()[0] == "rel_l2_solution")
    estimate, reference = (float(cell) for cell in solution.split()[1:])
    assert 0 < estimate and 0.8 < reference < 1.0


def test_gauss_newton_takes_its_own_settings_unless_given(tmp_path: Path) -> None:
    """``--optimizer gauss-newton`` runs GAUSS_NEWTON_CONFIG (B (steps + 1) + 1 forward
    passes and one backward pass per observed node: the summary's nfe counts both), and so
    does the default (auto) on Poisson, whose data are Gaussian; a given option wins; the
    estimate is better than the prior mean."""
    runs = {}
    explicit = ("--optimizer", "gauss-newton")
    for name, extra in (("auto", ()), ("own", explicit), ("given", (*explicit, "--steps", "2"))):
        proc = solve(tmp_path, "poisson", "inverse", "--json", *extra, quick=False)
        assert proc.returncode == 0, proc.stderr
        runs[name] = json.loads(proc.stdout)
    b, k = GAUSS_NEWTON_CONFIG.ensemble, GAUSS_NEWTON_CONFIG.steps
    jacobian = runs["given"]["nfe"] - (b * 3 + 1)  # the backward passes: 3 % of 32^2 nodes
    assert 25 <= jacobian <= 35
    assert runs["own"]["nfe"] == b * (k + 1) + 1 + jacobian
    assert runs["auto"]["nfe"] == runs["own"]["nfe"]
    own = runs["own"]
    assert own["rel_l2_solution"] < own["prior_mean_error"]["rel_l2_solution"]


def test_the_default_optimizer_is_adam_where_data_are_not_gaussian(tmp_path: Path) -> None:
    """Darcy's two-phase data, or a physics term asked for on Poisson: auto is Adam, with
    B (steps + 1) forward and B steps backward passes."""
    adam = 2 * (2 + 1) + 2 * 2  # QUICK: 2 latents, 2 steps
    for pde, extra in (("darcy", ()), ("poisson", ("--lambda-infer", "0.1"))):
        proc = solve(tmp_path, pde, "inverse", "--json", *extra)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["nfe"] == adam, pde


def test_darcy_tasks_start_from_the_start_network_shipped_for_them(tmp_path: Path) -> None:
    """``--start auto`` (the default) with the shipped Darcy student: the start trained on
    the task alone, else the one of every task, at an observed fraction inside its training
    range, with its settings (``start_config``); none outside that range or with ``--start
    none``."""
    cases = [
        ("inverse", "0.03", (), "darcy-32-start-inverse"),
        ("forward", "0.03", (), "darcy-32-start"),
        ("reconstruct", "0.03", (), "darcy-32-start"),
        ("forward", "0.3", (), None),  # above the 1-10 % darcy-32-start was trained on
        ("inverse", "0.03", ("--start", "none"), None),
    ]
    for task, fraction, extra, expected in cases:
        quick = expected is None  # a start's own settings are cheap: 4 x 10
        proc = solve(tmp_path, "darcy", task, "--json", *extra, quick=quick, fraction=fraction)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["start"] == expected, (task, fraction, extra)
        if expected:  # B (steps + 1) forward and B steps backward passes (forward: no step)
            config = start_config(task)
            b, k = config.ensemble, config.steps
            assert k == (0 if task == "forward" else START_CONFIG.steps)
            assert summary["nfe"] == b * (k + 1) + b * k
            assert summary["error_rate"] < summary["prior_mean_error"]["error_rate"]
    text = solve(tmp_path, "darcy", "inverse")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].endswith(", from start network darcy-32-start-inverse")
