"""Render benchmarks/RESULTS.md (the headline tables) and the tables of benchmarks/LOG.md
from the JSON files in benchmarks/results/.

Usage: python benchmarks/make_results.py          # rewrites benchmarks/RESULTS.md
       python benchmarks/make_results.py --check  # fails if RESULTS.md is not what it renders
       python benchmarks/make_results.py --log > /tmp/tables.md   # LOG.md's tables

Every number in both pages comes from a JSON file written by a command listed there; this
script only formats them, so the tables cannot drift from the measurements.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from piddm.bench.figures import task_metric
from piddm.export import read_cards
from piddm.pdes import get_pde

RESULTS = Path(__file__).parent / "results"


def load(name: str) -> Any:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() and path.stat().st_size else None


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def ratio(value: Any, floor: Any) -> str:
    if value is None or floor is None:
        return "-"
    return f"{value:.3g} ({value / floor:.2g}x)"


def data_table() -> list[str]:
    rows = load("data-generation.json")
    if not rows:
        return ["(not measured)"]
    out = ["| PDE | S | workers | n | seconds | samples/s |", "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['pde']} | {r['resolution']} | {r['workers']} | {r['n']} | {r['seconds']} "
            f"| {r['samples_per_s']} |"
        )
    return out


def teacher_table(pdes: list[str]) -> list[str]:
    out = [
        "| PDE | steps | training wall time | samples/s (train) | residual mean / median "
        "(data) | MMSE (x floor) | SMSE (x floor) | SFD (x floor) | solver consistency |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pde in pdes:
        train, ev = load(f"{pde}-32-teacher-train.json"), load(f"{pde}-32-teacher-eval.json")
        stats = load(f"{pde}-32-teacher-stats.json") or {}
        if not (train and ev):
            continue
        # A continued run (train.init_from) lists its first stage separately.
        first = load(f"{pde}-32-teacher-stage1-train.json")
        steps, minutes = f"{train['steps']}", f"{train['seconds'] / 60:.0f}"
        if first:
            steps = f"{first['steps']} + {train['steps']}"
            minutes = f"{first['seconds'] / 60:.0f} + {train['seconds'] / 60:.0f}"
        out.append(
            f"| {pde} | {steps} | {minutes} min "
            f"| {fmt(stats.get('samples_per_s_mean'))} (max {fmt(stats.get('samples_per_s_max'))}) "
            f"| {fmt(ev['residual_mean'])} / {fmt(ev['residual_median'])} "
            f"({fmt(ev['reference_residual_mean'])}) "
            f"| {ratio(ev['mmse'], ev['mmse_floor'])} | {ratio(ev['smse'], ev['smse_floor'])} "
            f"| {ratio(ev['sfd'], ev['sfd_floor'])} | {fmt(ev['solver_consistency'])} |"
        )
    return out


def pretrained_table() -> list[str]:
    """Teacher vs PIDDM student of every shipped model, from the model cards."""
    cards = {card.name: card for card in read_cards()}
    out = [
        "| PDE | teacher consistency median | student consistency median | teacher / student "
        "rel. residual median | student MMSE / teacher's | student SMSE / teacher's "
        "| teacher ms/sample | student ms/sample | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pde in ("darcy", "poisson", "helmholtz", "burgers"):
        t, s = cards.get(f"{pde}-32-teacher"), cards.get(f"{pde}-32-piddm")
        if t is None or s is None:
            continue
        te, se = t.eval, s.eval
        out.append(
            f"| {pde} | {interval(te, 'solver_consistency_median', 100, ' %')} "
            f"| {interval(se, 'solver_consistency_median', 100, ' %')} "
            f"| {fmt(te.get('relative_residual_median'))} / "
            f"{fmt(se.get('relative_residual_median'))} "
            f"| {se['mmse'] / te['mmse']:.2f}x | {se['smse'] / te['smse']:.2f}x "
            f"| {1e3 * t.seconds_per_sample:.1f} | {1e3 * s.seconds_per_sample:.2f} "
            f"| {t.seconds_per_sample / s.seconds_per_sample:.0f}x |"
        )
    return out


def demo_table() -> list[str]:
    out = [
        "| PDE | wall time incl. import | student residual | teacher residual "
        "| forward rel L2 (u) | inverse rel L2 (a) | inverse error rate |",
        "|---|---|---|---|---|---|---|",
    ]
    for pde in ("darcy", "poisson", "helmholtz", "burgers"):
        demo = load(f"demo-{pde}.json")
        if not demo:
            continue
        _, teacher, student = demo["generation"]
        forward, inverse = demo["tasks"]
        out.append(
            f"| {pde} | {demo['wall_seconds']:.0f} s | {fmt(student['residual_mean'])} "
            f"| {fmt(teacher['residual_mean'])} | {forward['rel_l2_solution']:.1%} "
            f"| {inverse['rel_l2_coefficient']:.1%} | {fmt(inverse['error_rate'])} |"
        )
    return out


def bayes_table(pde: str) -> list[str]:
    """Exact Gaussian posterior (the Bayes floor) per task and observation fraction."""
    bound = load(f"{pde}-32-bayes-bound.json")
    if not bound:
        return []
    out = [
        "| task | observed | nodes | rel. L2 coefficient | rel. L2 solution | s / instance |",
        "|---|---|---|---|---|---|",
    ]
    for r in bound["rows"]:
        out.append(
            f"| {r['task']} | {r['obs_fraction']:.0%} | {r['observed_nodes']} "
            f"| {r['rel_l2_coefficient']:.3g} | {r['rel_l2_solution']:.3g} "
            f"| {r['seconds_per_instance']:.3g} |"
        )
    return out


def task_floor(pde: str, task: str, fraction: float) -> float | None:
    """The Bayes floor of a task's headline field at ``fraction`` observed, if computed:
    Poisson's exact posterior (both tasks), Darcy's sampled forward floor."""
    if pde == "darcy":
        floors = [load(path.name) for path in RESULTS.glob("darcy-32-forward-floor*.json")]
        matches = [f for f in floors if task == "forward" and f["obs_fraction"] == fraction]
        return matches[0]["rel_l2_solution_pooled"] if matches else None
    bound = load(f"{pde}-32-bayes-bound.json") or {"rows": []}
    field = "rel_l2_solution" if task == "forward" else "rel_l2_coefficient"
    rows = [r for r in bound["rows"] if r["task"] == task and r["obs_fraction"] == fraction]
    return rows[0][field] if rows else None


def observation_table(pde: str) -> list[str]:
    """PIDDM's task errors against the observed fraction: the bench's own 3 % rows, then
    benchmarks/observation_count.py's (same instances, mask seeds and settings), then its
    rows with every member re-solved (``--solver-members``)."""
    study = load(f"{pde}-32-observation-count.json")
    bench = load(f"{pde}-32.json")
    if not study or not bench:
        return []
    fraction = bench["config"]["tasks"]["obs_fraction"]
    rows = [
        {**r, "obs_fraction": fraction, "observed_nodes": round(fraction * 1024), "bench": True}
        for r in bench["rows"]
        if r["method"] == "piddm-1" and r["variant"] is None and r["task"] != "generate"
    ]
    rows += [r for r in study["rows"] if r["obs_fraction"] != fraction]
    solved = load(f"{pde}-32-observation-count-solver-members.json") or {"rows": []}
    rows += [{**r, "task": f"{r['task']}, solver members"} for r in solved["rows"]]
    out = [
        "| task | observed | nodes | rel. L2 coefficient | rel. L2 solution | error rate "
        "| headline (x Bayes floor) | s / instance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["task"], r["obs_fraction"])):
        task = r["task"].split(",")[0]
        if task == "forward":
            headline = r["rel_l2_solution"]
        else:
            headline = r["error_rate"] if pde == "darcy" else r["rel_l2_coefficient"]
        source = " (bench)" if r.get("bench") else ""
        out.append(
            f"| {r['task']} | {r['obs_fraction']:.0%}{source} | {r['observed_nodes']} "
            f"| {fmt(r['rel_l2_coefficient'])} | {fmt(r['rel_l2_solution'])} "
            f"| {fmt(r['error_rate'])} "
            f"| {ratio(headline, task_floor(pde, task, r['obs_fraction']))} "
            f"| {fmt(r['seconds_per_sample'])} |"
        )
    return out


def map_table() -> list[str]:
    """The Darcy inverse problem by PDE-constrained MAP (benchmarks/darcy_inverse_map.py):
    settings chosen on training instances, then the held-out bench instances."""
    out = [
        "| instances | n | sigma | t0 -> t1 | Adam steps | lr | starts | combine "
        "| error rate | rel. L2 coefficient | rel. L2 solution (solver) | s / instance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, instances in (("sweep", "training"), ("", "held-out (bench)")):
        study = load(f"darcy-32-inverse-map{'-' + name if name else ''}.json")
        for r in study["rows"] if study else []:
            c = r["setting"]
            out.append(
                f"| {instances} | {study['n']} | {c['sigma']:g} | {c['t0']:g} -> {c['t1']:g} "
                f"| {c['steps']} | {c['lr']:g} | {c['starts']} of {c['candidates']} "
                f"| {'vote' if c.get('vote') else 'lowest J'} | {fmt(r['error_rate'])} "
                f"| {fmt(r['rel_l2_coefficient'])} | {fmt(r['rel_l2_solution'])} "
                f"| {fmt(r['seconds_per_instance'])} |"
            )
    return out if len(out) > 2 else []


#: Learning curves of Darcy students (benchmarks/student_curve.py): file stem -> row label.
CURVES = {
    "darcy-32-piddm-lambda0-1024pairs-curve": "0; 1,024 pairs, constant 2e-4",
    "darcy-32-piddm-1024pairs-curve": "0.1 through a and u; 1,024 pairs, constant 2e-4",
    "darcy-32-piddm-lambda0-nospread-curve": "0; 8,192 pairs, cosine from 5e-4",
    "darcy-32-piddm-gradall-curve": "0.1 through a and u; 8,192 pairs, cosine (stopped)",
    "darcy-32-piddm-nospread-curve": "0.1 through u only; 8,192 pairs, cosine from 5e-4",
    "darcy-32-piddm-lambda0-curve": "0; the same, with the spread term (100)",
    "darcy-32-piddm-curve": "0.1 through u only; the same, with the spread term (100)",
}
#: Checkpoints shown per curve: these steps and each curve's last one.
CURVE_STEPS = (500, 1000, 2000, 3000)


def curve_table() -> list[str]:
    """Checkpoints of the Darcy students against the held-out data and the teacher."""
    teacher = load("darcy-32-teacher-eval.json")
    out = [
        "| `lambda_train` (physics gradient); pairs, rate | step | residual (vs teacher) "
        "| MMSE vs teacher | SMSE vs teacher | pair loss: training / fresh latents |",
        "|---|---|---|---|---|---|",
    ]
    for stem, name in CURVES.items():
        curve = load(f"{stem}.json")
        if not curve or not teacher:
            continue
        last = curve["rows"][-1]["step"]
        for r in curve["rows"]:
            if r["step"] not in CURVE_STEPS and r["step"] != last:
                continue
            out.append(
                f"| {name} | {r['step']} | {fmt(r['residual_mean'])} "
                f"({r['residual_mean'] / teacher['residual_mean']:.2g}x) "
                f"| {r['mmse'] / teacher['mmse']:.2f}x | {r['smse'] / teacher['smse']:.3g}x "
                f"| {fmt(r['logged_pair_loss'])} / {fmt(r['fresh_pair_mse'])} |"
            )
    return out if len(out) > 2 else []


#: Task-settings sweeps (benchmarks/task_sweep.py) on training instances, per PDE: the
#: student without the spread term (settings chosen there), then the one with it.
SWEEPS = (
    "forward-sweep",
    "inverse-sweep",
    "forward-sweep-spread",
    "inverse-sweep-spread",
    "forward-sweep-candidates",
    "inverse-sweep-candidates",
    "inverse-sweep-steps",
    "inverse-sweep-lbfgs",
)


def load_sweeps(pde: str) -> list[dict[str, Any]]:
    """The task-settings sweeps of ``pde`` that exist, in the order of :data:`SWEEPS`."""
    return [sweep for stem in SWEEPS if (sweep := load(f"{pde}-32-{stem}.json"))]


def steps_label(setting: dict[str, Any]) -> str:
    """``"50 Adam"``; a regulariser other than the sphere projection is named too."""
    name = {"adam": "Adam", "lbfgs": "L-BFGS"}[setting["optimizer"]]
    if setting["projection"]:
        return f"{setting['steps']} {name}"
    return f"{setting['steps']} {name}, norm penalty {setting['penalty']:g}"


def sweep_table(sweeps: list[dict[str, Any]]) -> list[str]:
    """Latent-optimisation settings of the tasks, scored on the teacher's training data.

    The members' error (mean relative L2 of the ensemble members one by one) exists only in
    sweeps run since task_sweep.py reports it."""
    out = [
        "| task | student | screened | latents | steps | lr | `lambda_infer` "
        "| rel. L2 coefficient | rel. L2 solution | error rate | members' rel. L2 solution "
        "| s / instance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sweep in sweeps:
        for r in sweep["rows"]:
            c = r["setting"]
            screened = c.get("candidates", 0) or "-"  # sweeps before screening lack the key
            out.append(
                f"| {sweep['task']} | `{Path(sweep['model']).name}` | {screened} | {c['ensemble']} "
                f"| {steps_label(c)} | {c['lr']:g} "
                f"| {c['lambda_infer']:g} "
                f"| {fmt(r['rel_l2_coefficient'])} | {fmt(r['rel_l2_solution'])} "
                f"| {fmt(r['error_rate'])} | {fmt(r.get('member_rel_l2_solution'))} "
                f"| {r['seconds_per_instance']:.2f} |"
            )
    return out


def label(row: dict[str, Any]) -> str:
    return row["method"] + (f" ({row['variant']})" if row.get("variant") else "")


def generate_table(bench: dict[str, Any]) -> list[str]:
    out = [
        "| method | n | NFE | s / sample | residual mean | residual median | MMSE (x floor) "
        "| SMSE (x floor) | SFD (x floor) | solver consistency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bench["rows"]:
        if r["task"] != "generate" or not r.get("supported", True):
            continue
        out.append(
            f"| {label(r)} | {r['n']} | {fmt(r['nfe'])} | {fmt(r['seconds_per_sample'])} "
            f"| {fmt(r['residual_mean'])} | {fmt(r['residual_median'])} "
            f"| {ratio(r['mmse'], r['mmse_floor'])} | {ratio(r['smse'], r['smse_floor'])} "
            f"| {ratio(r['sfd'], r['sfd_floor'])} | {fmt(r['solver_consistency'])} |"
        )
    return out


def task_table(bench: dict[str, Any]) -> list[str]:
    out = [
        "| task | method | n | NFE | s / instance | rel. L2 coefficient | rel. L2 solution "
        "| error rate | residual mean |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bench["rows"]:
        if r["task"] == "generate":
            continue
        if not r.get("supported", True):
            out.append(f"| {r['task']} | {label(r)} | - | - | - | not supported | | | |")
            continue
        out.append(
            f"| {r['task']} | {label(r)} | {r['n']} | {fmt(r['nfe'])} "
            f"| {fmt(r['seconds_per_sample'])} | {fmt(r['rel_l2_coefficient'])} "
            f"| {fmt(r['rel_l2_solution'])} | {fmt(r['error_rate'])} "
            f"| {fmt(r['residual_mean'])} |"
        )
    return out


def interval(row: dict[str, Any], key: str, scale: float = 1.0, unit: str = "") -> str:
    """``value [lo, hi]`` of ``row[key]`` and its 95 % interval ``row[key + '_ci']``."""
    value, ci = row.get(key), row.get(f"{key}_ci")
    if value is None:
        return "-"
    text = f"{scale * value:.3g}{unit}"
    return text if ci is None else f"{text} [{scale * ci[0]:.3g}, {scale * ci[1]:.3g}]"


PHYSICS_PDES = ("darcy", "poisson", "helmholtz", "burgers")


def physics_rows(pde: str) -> dict[str, dict[str, Any]]:
    """Label -> row: the shipped teacher's card ("teacher (card)") first, then the rows of
    ``benchmarks/results/<pde>-32-physics.json``."""
    teacher = next((c for c in read_cards() if c.name == f"{pde}-32-teacher"), None)
    rows = {} if teacher is None else {"teacher (card)": {"nfe": teacher.nfe, **teacher.eval}}
    payload = load(f"{pde}-32-physics.json") or {"rows": []}
    return rows | {row["label"]: row for row in payload["rows"]}


def physics_table() -> list[str]:
    """Per PDE: the shipped teacher (its model card) and every generator of
    ``benchmarks/physics_table.py`` (both: 512 samples, seed-7 latents, 1,024 held-out solver
    samples): consistency and relative residual with their 95 %
    intervals, the raw residual, MMSE / SMSE / SFD against their floors."""
    lines = [
        "| PDE | model | NFE | consistency median [95 %] | consistency mean [95 %] "
        "| rel. residual median [95 %] | residual mean | MMSE | SMSE | SFD |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pde in PHYSICS_PDES:
        for name, row in physics_rows(pde).items():
            lines.append(
                f"| {pde} | {name} | {row['nfe']:g} "
                f"| {interval(row, 'solver_consistency_median', 100, ' %')} "
                f"| {interval(row, 'solver_consistency', 100, ' %')} "
                f"| {interval(row, 'relative_residual_median')} | {fmt(row['residual_mean'])} | "
                + " | ".join(ratio(row[k], row[f"{k}_floor"]) for k in ("mmse", "smse", "sfd"))
                + " |"
            )
    return lines if len(lines) > 2 else []


def section(title: str, table: list[str]) -> None:
    """Print ``## title`` and its table, or nothing when the table is empty."""
    if table:
        print(f"\n## {title}\n")
        print("\n".join(table))


def log_tables() -> None:
    """Print every table of benchmarks/LOG.md."""
    pdes = ["darcy", "poisson"]
    section(
        "Physics of the generators: solver consistency, relative residual (32^2, 512 samples)",
        physics_table(),
    )
    print("\n## Data generation\n")
    print("\n".join(data_table()))
    print("\n## Pretrained models shipped in the package (32^2, all four PDEs)\n")
    print("\n".join(pretrained_table()))
    print("\n## `piddm demo` (fresh process, default settings)\n")
    print("\n".join(demo_table()))
    print("\n## Teachers (32^2, CPU)\n")
    print("\n".join(teacher_table(pdes)))
    section("Darcy students: learning curves (512 samples, seed-7 latents)", curve_table())
    section(
        "Task solver speed: every PIDDM row of the task benches against DiffusionPDE",
        speed_table(full=True),
    )
    for pde in pdes:
        if tasks := load(f"{pde}-32-tasks.json"):
            section(
                f"{pde} 32^2: the task bench (configs/bench-{pde}-32-tasks-cpu.yaml)",
                task_table(tasks),
            )
    for pde in pdes:
        bench = load(f"{pde}-32.json")
        if not bench:
            continue
        print(f"\n## {pde} 32^2: generation (same latents for every method)\n")
        print("\n".join(generate_table(bench)))
        print(f"\n## {pde} 32^2: tasks, 3 % random observations\n")
        print("\n".join(task_table(bench)))
        if sweeps := load_sweeps(pde):
            section(
                f"{pde} 32^2: task settings on {sweeps[0]['n']} training instances "
                "(3 % observations, `benchmarks/task_sweep.py`)",
                sweep_table(sweeps),
            )
        section(
            f"{pde} 32^2: the Bayes floor of the tasks (exact Gaussian posterior)",
            bayes_table(pde),
        )
        section(
            f"{pde} 32^2: PIDDM's task errors against the observed fraction (100 held-out "
            "instances, `benchmarks/observation_count.py`)",
            observation_table(pde),
        )
        if pde == "darcy":
            section(
                "darcy 32^2: the inverse problem by PDE-constrained MAP (exact prior, the "
                "solver and its adjoint; `benchmarks/darcy_inverse_map.py`)",
                map_table(),
            )
        extra = load(f"{pde}-32-forward-full.json")
        if extra:
            print(
                f"\nForward problem with the coefficient fully observed ({extra['n']} instances, "
                f"`{extra['command']}`): PIDDM relative L2 of the solution "
                f"{extra['piddm_rel_l2_solution']:.3g}, "
                f"residual {extra['piddm_residual_mean']:.3g}, "
                f"{extra['piddm_seconds_per_instance']:.2f} s per instance; the numerical solver "
                f"is exact (the held-out truth is its output) in "
                f"{1e3 * extra['solver_seconds_per_instance']:.2g} ms per instance."
            )


#: PDEs and tasks of the headline task table (each task is scored by
#: :func:`piddm.bench.figures.task_metric`: Darcy's inverse problem by its threshold error
#: rate, as DiffusionPDE scores it).
HEADLINE_PDES = ("darcy", "poisson")
HEADLINE_TASKS = ("forward", "inverse", "reconstruct")
#: Physics table of the headline: models shown per PDE, in this order (labels of
#: benchmarks/physics_table.py's rows; the teacher comes from its card), then the shipped
#: student and its PIDDM-ref row; every other row is on the log page.
HEADLINE_MODELS = ("teacher (card)", "lambda0", "plain", "preconditioned")
#: The student each PDE ships (docs/pretrained.md), by its label in the physics table.
SHIPPED = {
    "darcy": "grown4-std300",
    "poisson": "solved-l300",
    "helmholtz": "solved-l3000-std",
    "burgers": "solved4k-l300-grown4",
}
#: The label of the shipped student's PIDDM-ref row (physics_table.py --refine).
REFINED = "piddm-ref"


def mean_with_interval(row: dict[str, Any], key: str, scale: float = 1.0, unit: str = "") -> str:
    """``m ± h`` (``h`` the half-width of the 95 % interval ``row[key + '_ci']``) or ``m``."""
    value, ci = row.get(key), row.get(f"{key}_ci")
    if value is None:
        return "-"
    text = f"{scale * value:.3g}"
    if ci is not None:
        text += f" ± {scale * (ci[1] - ci[0]) / 2:.2g}"
    return text + unit


def headline_physics() -> list[str]:
    """Teacher against its students per PDE: consistency and relative residual with their
    95 % intervals, MMSE / SMSE against their noise floors."""
    lines = [
        "| PDE | model | NFE | consistency median [95 %] | rel. residual median [95 %] "
        "| MMSE (x floor) | SMSE (x floor) |",
        "|---|---|---|---|---|---|---|",
    ]
    for pde in PHYSICS_PDES:
        rows = physics_rows(pde)
        for name in (*HEADLINE_MODELS, SHIPPED[pde], REFINED):
            if name not in rows:
                continue
            row = rows[name]
            shipped = " (shipped)" if SHIPPED.get(pde) == name else ""
            lines.append(
                f"| {pde} | {name}{shipped} | {row['nfe']:g} "
                f"| {interval(row, 'solver_consistency_median', 100, ' %')} "
                f"| {interval(row, 'relative_residual_median')} | "
                + " | ".join(ratio(row[k], row[f"{k}_floor"]) for k in ("mmse", "smse"))
                + " |"
            )
    return lines


def task_cell(row: dict[str, Any] | None, key: str) -> str:
    """``m % ± h (s s, n=N)`` of a bench task row (``-`` without one or without the metric)."""
    if row is None or row.get(key) is None:
        return "-"
    return (
        f"{mean_with_interval(row, key, 100, ' %')} "
        f"({row['seconds_per_sample']:.2g} s, n={row['n']})"
    )


def labelled_cells(rows: list[dict[str, Any]], key: str) -> str:
    """``label: cell; ...`` of variant rows, ``-`` if there are none."""
    return "; ".join(f"{r['variant']}: {task_cell(r, key)}" for r in rows) or "-"


def supported_rows(bench: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """The supported rows of ``task`` in a bench JSON."""
    return [r for r in bench["rows"] if r["task"] == task and r.get("supported", True)]


def headline_task_row(
    pde: str, task: str, bench: dict[str, Any], full: dict[str, Any] | None = None
) -> str:
    """One line of :func:`headline_tasks`: ``bench`` is the PDE's task bench JSON (an older one
    without reconstruction, variants or classical rows renders dashes there); the best other
    baseline comes from ``full``, the full bench, when the task bench has none."""
    key, name = task_metric(get_pde(pde, 32), task)
    rows = supported_rows(bench, task)
    main = {r["method"]: r for r in rows if not r.get("variant")}
    variants = {m: [r for r in rows if r["method"] == m and r.get("variant")] for m in main}
    steps = bench["config"].get("baselines", {}).get("diffusionpde", {}).get("num_steps")
    dpde = task_cell(main.get("diffusionpde"), key)
    if steps is not None and dpde != "-":
        dpde = f"{steps} steps: {dpde}"

    def others_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r
            for r in rows
            if not r.get("variant")
            and r["method"] not in ("piddm-1", "diffusionpde", *CLASSICAL)
            and r.get(key) is not None
        ]

    others = others_of(rows) or (others_of(supported_rows(full, task)) if full else [])
    best = min(others, key=lambda r: r[key], default=None)
    best_text = "-" if best is None else f"{best['method']}: {task_cell(best, key)}"
    map_text = task_cell(main.get("map"), key)
    if map_text == "-" and (pde, task) == ("darcy", "inverse"):
        if study := load("darcy-32-inverse-map.json"):  # the script's rows, before the bench's
            best_map = min(study["rows"], key=lambda r: r[key])
            map_text = (
                f"{100 * best_map[key]:.3g} % ({best_map['seconds_per_instance']:.2g} s, "
                f"n={study['n']})"
            )
    floor_text = task_cell(main.get("bayes-floor"), key)
    if floor_text == "-":
        floor = task_floor(pde, task, bench["config"]["tasks"]["obs_fraction"])
        floor_text = "-" if floor is None else f"{100 * floor:.3g} %"
    shown = [r for r in variants.get("piddm-1", []) if r["variant"] in HEADLINE_VARIANTS]
    shown += task_start_rows(pde, task)
    cells = [
        pde,
        task,
        name,
        task_cell(main.get("piddm-1"), key),
        labelled_cells(shown, key),
        dpde,
        labelled_cells(variants.get("diffusionpde", []), key),
        best_text,
        map_text,
        floor_text,
    ]
    return "| " + " | ".join(cells) + " |"


#: The bench variants that are ``piddm solve``'s settings other than the screened Adam one:
#: from the amortised start (``START_CONFIG``) and by Gauss-Newton (``GAUSS_NEWTON_CONFIG``).
SOLVE_VARIANTS = ("amortised 4 x 10", "Gauss-Newton 16 x 5")
#: The PIDDM variants of the headline: ``piddm solve``'s settings, the start alone and its
#: longest optimisation (every other row: the log's speed table).
HEADLINE_VARIANTS = (*SOLVE_VARIANTS, "amortised 4 x 0", "amortised 4 x 100")

#: The rows of a per-task start bench in the headline: its main row (``piddm solve --start``'s
#: setting) and its longest optimisation.
TASK_START_VARIANTS = (None, "4 x 100")


def task_start_rows(pde: str, task: str) -> list[dict[str, Any]]:
    """PIDDM's rows from the start network trained for ``task`` alone (the bench
    ``PDE-32-tasks-TASK-start.json``: same instances and masks as the task bench), labelled
    ``TASK start B x K``; none without that file."""
    bench = load(f"{pde}-32-tasks-{task}-start.json")
    if not bench:
        return []
    settings = bench["config"]["tasks"]
    main_label = f"{settings['ensemble']} x {settings['steps']}"
    return [
        {**r, "variant": f"{task} start {r.get('variant') or main_label}"}
        for r in supported_rows(bench, task)
        if r["method"] == "piddm-1" and r.get("variant") in TASK_START_VARIANTS
    ]


#: Methods of the bench without a network (their own columns of the headline).
CLASSICAL = ("map", "bayes-floor")


def headline_tasks() -> list[str]:
    """Per PDE and task: the headline error of PIDDM (and its variants), of DiffusionPDE (and
    its variants, e.g. its published 2,000 steps), of the best other baseline, of the
    PDE-constrained MAP and of the Bayes floor, each ± its 95 % half-width where the bench
    recorded one, with seconds per instance and n."""
    lines = [
        "| PDE | task | metric | PIDDM | PIDDM variants | DiffusionPDE | DiffusionPDE variants "
        "| best other baseline | PDE-constrained MAP | Bayes floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pde in HEADLINE_PDES:
        full = load(f"{pde}-32.json")
        bench = load(f"{pde}-32-tasks.json") or full
        if bench:
            lines += [headline_task_row(pde, task, bench, full) for task in HEADLINE_TASKS]
    return lines


def speed_rows(pde: str, task: str, bench: dict[str, Any]) -> list[dict[str, Any]]:
    """Every PIDDM row of a task bench with its error, seconds per instance and, against
    DiffusionPDE's 2,000 and 200 steps of the same run, whether its error is lower and its
    speed-up (``None`` where that row is missing)."""
    key, _ = task_metric(get_pde(pde, 32), task)
    rows = supported_rows(bench, task)
    dp = {r.get("variant"): r for r in rows if r["method"] == "diffusionpde"}
    out = []
    for r in (r for r in rows if r["method"] == "piddm-1"):
        entry: dict[str, Any] = {"row": r, "key": key}
        for name, ref in (("dp2000", dp.get("2000 steps")), ("dp200", dp.get(None))):
            if ref is not None and ref.get(key) is not None:
                entry[name] = (
                    ref,
                    r[key] < ref[key],
                    ref["seconds_per_sample"] / r["seconds_per_sample"],
                )
        out.append(entry)
    return out


def speed_cell(entry: dict[str, Any], name: str) -> str:
    """``error (lower|higher), speed-up`` against one DiffusionPDE row."""
    if name not in entry:
        return "-"
    ref, lower, speed = entry[name]
    mark = "lower" if lower else "**higher**"
    return f"{100 * ref[entry['key']]:.3g} % ({mark}), {speed:.3g}x"


#: The PIDDM rows of the headline speed table: ``piddm solve``'s three settings (``None``: the
#: screened Adam setting, ``--start none``).
SPEED_ROWS = (None, *SOLVE_VARIANTS)


def speed_table(full: bool = False) -> list[str]:
    """PIDDM against DiffusionPDE at 2,000 and 200 steps within one task bench (ratios of wall
    times from one run): the headline (``full=False``) shows ``piddm solve``'s two settings
    (:data:`SPEED_ROWS`), the log every PIDDM row."""
    lines = [
        "| PDE | task | PIDDM row | error | s / instance | DiffusionPDE-2000: error, speed-up "
        "| DiffusionPDE-200: error, speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for pde in HEADLINE_PDES:
        bench = load(f"{pde}-32-tasks.json")
        if not bench:
            continue
        for task in HEADLINE_TASKS:
            for e in speed_rows(pde, task, bench):
                r = e["row"]
                if not full and r.get("variant") not in SPEED_ROWS:
                    continue
                lines.append(
                    f"| {pde} | {task} | {r.get('variant') or 'screened 8 x 50'} | "
                    f"{mean_with_interval(r, e['key'], 100, ' %')} | "
                    f"{r['seconds_per_sample']:.2g} | "
                    f"{speed_cell(e, 'dp2000')} | {speed_cell(e, 'dp200')} |"
                )
    return lines


HEADER = """\
# Benchmark results: the headline

Measured on the project's 2-core CPU machine (no GPU) at 32^2. Every table is rendered by
`python benchmarks/make_results.py` from the JSON files in `benchmarks/results/`; the command
behind each file, the sweeps that chose every setting, the learning curves, the teachers' and
the data's tables and the notes on what was tried are on the log page,
[LOG.md](LOG.md). Measures are defined in [docs/concepts.md](../docs/concepts.md),
"Metrics" and "Physics measures"; intervals are 95 % (normal approximation for means,
seeded bootstrap for medians) over samples or instances.
"""

PHYSICS_NOTE = """\
512 samples of the seed-7 latents against 1,024 held-out solver samples. Consistency:
`|u - u*| / |u*|`, `u*` the solver's solution for the sample's own coefficient (initial
condition; Darcy: the two-phase medium it stands for, each node's nearer phase); relative
residual: `|R(x)| / |R(x0)|` (1 for the zero solution, 0 for the solver's). "lambda0": no
physics term; "plain": the paper's residual term; "preconditioned":
fine-tuned from "plain" with the preconditioned residual `P^-1 R` (`distill.residual_norm:
preconditioned`, lambda 10); the shipped student: further fine-tunes onto solver-corrected
pair targets (`distill.pair_targets: solved`) at lambda 100-1,000 with a cosine decay ("solved-lN";
Helmholtz: then lambda 1,000 and 3,000 with the spread term, "-std"; Darcy: then lambda
1,000 on 8,192 solved pairs with the gradient to `u` only, then grown to 1.74 M parameters
(`distill.grow_blocks: 4`, four identity-initialised refinement blocks per decoder level)
and trained on, the last 1,000 steps with the spread term 300, "grown4-std300"; Burgers:
lambda 300 on 4,096 solved pairs of the stage-4 teacher, grown by 2 and then 4 blocks per
level (1.74 M parameters), "solved4k-l300-grown4": every Burgers row is a student of that
teacher);
"piddm-ref": the shipped student with PIDDM-ref's 3 L-BFGS refinement steps (NFE measured).
Every intermediate row is on the log page. Targets: student consistency median <= 3 %
(Darcy, Burgers), <= 1.5 % (Poisson, Helmholtz) and below its teacher's; student MMSE / SMSE
<= 1.5x the teacher's; every teacher's SMSE <= 3x floor (the Burgers teacher samples with 40
Heun steps, NFE 79). Met: every consistency bound, every student's median below its
teacher's (Burgers by a margin inside the intervals: 1.03 % [0.99, 1.05] against 1.05 %
[1.00, 1.11]), every MMSE and SMSE ratio, every teacher's SMSE, PIDDM-ref's spread and
consistency.
Command: `python benchmarks/physics_table.py PDE LABEL=RUN ... --reference
data/PDE-32-test.h5 --out benchmarks/results/PDE-32-physics.json` (LOG.md, "Physics").
"""

TASKS_NOTE = """\
From the task benches of 2026-12-03 (`piddm bench --pde PDE --config
configs/bench-PDE-32-tasks-cpu.yaml --threads 1`, its bench.json is
benchmarks/results/PDE-32-tasks.json; 35-50 minutes each, sharing the cores with other jobs,
so wall times are up to 1.5x an idle machine's): held-out instances, 3 % of
the nodes observed (reconstruction: 3 % of each field), the same masks for every method;
PIDDM, MAP and the floor on the first 30 instances, DiffusionPDE on the first 10 of them
(Darcy's MAP too). An error is the mean over instances in percent ± the half-width of its
95 % interval, then seconds per instance and n.
"PIDDM" is the screened Adam setting (8 members x 50 Adam steps from 256 screened draws:
`piddm solve --start none` on Darcy, `--optimizer adam` on Poisson); its variants: "amortised
4 x 10", `piddm solve --start`'s setting, from the student's amortised start network (`piddm
amortise`; docs/method.md, "Amortised start"; with the shipped student `piddm solve`'s
default, `--start auto`, takes it from the shipped starts), "4 x 0" the start alone,
"4 x 100" the same start with 100 steps; "inverse start": the Darcy inverse problem from a
start network trained on inverse problems alone (configs/darcy-32-start-inverse-cpu.yaml; its bench:
`configs/bench-darcy-32-inverse-start-cpu.yaml`, results in
benchmarks/results/darcy-32-tasks-inverse-start.json);
"Gauss-Newton 16 x 5", `piddm solve`'s default on Poisson and Helmholtz (`--optimizer
gauss-newton`: 16 prior draws moved by minimum-norm steps onto the observations,
near-posterior draws; docs/method.md, "Tasks"), run on Poisson only (it does not converge on
the two-phase Darcy student). Every other PIDDM
row (8 x 20 from the start, Gauss-Newton 32 x 10 and 4 x 3) is in the log's speed table.
"Best other baseline" (ECI, D-Flow, PID, CoCoGen, PIDM) is the 2026-12-02 full bench's
(`configs/bench-PDE-32-cpu.yaml`, the students shipped then, 100 instances: LOG.md). MAP and
Bayes floor are the bench's `map` / `bayes-floor` rows (`piddm.tasks.classical`; on Poisson
both are the exact Gaussian posterior mean); Darcy has no floor for the inverse problem and
reconstruction. Time-vs-error figures: `benchmarks/figures/PDE-32-TASK-time-vs-error.png`.
The Darcy rows are the bench rerun with the shipped (grown) student and a start network
trained for it (2026-12-03; the previous student's bench: LOG.md). Targets met: PIDDM >= 10x
faster than DiffusionPDE-2000 with a lower error on every task (Darcy from the amortised
start at 4 x 10: 52-58x, and >= 5x faster than DiffusionPDE-200; Poisson by Gauss-Newton,
40-100x), a setting under 1 s per instance on every task, the Darcy forward error within
1.15x its floor (the start alone: 1.08x), the Poisson forward and inverse errors within 1.2x
their floors (Gauss-Newton: 1.02x and 1.09x; reconstruction 1.20x), the Darcy inverse error
rate <= 9 % (target; the MAP 7.95 %): 8.9 % from the shipped inverse start
(`darcy-32-start-inverse`, 4,000 training steps) with 100 steps, 9.0 % at 8 x 20 (9.5 % at
4 x 10, `piddm solve`'s default); the start of every task reaches 11.7 % (LOG.md, "Shipped
start networks"). The inverse-start rows were timed while a second job shared the cores.
"""


SPEED_NOTE = """\
Speed-up: DiffusionPDE's seconds per instance over PIDDM's, both from the same task bench
(DiffusionPDE on the first 10 of PIDDM's 30 instances); "lower" / "higher": PIDDM's error
against DiffusionPDE's. Every PIDDM row of the benches (also the start alone and 8 x 20) is
on the log page.
"""


def headline() -> str:
    """The text of benchmarks/RESULTS.md."""
    parts = [HEADER, "## Do generated fields agree with the solver?\n"]
    parts += ["\n".join(headline_physics()), "", PHYSICS_NOTE]
    parts += ["## Forward, inverse and reconstruction problems (3 % observed)\n"]
    parts += ["\n".join(headline_tasks()), "", TASKS_NOTE]
    parts += ["## Task solver speed: PIDDM against DiffusionPDE in one run\n"]
    parts += ["\n".join(speed_table()), "", SPEED_NOTE]
    return "\n".join(parts)


def main(argv: list[str]) -> None:
    results = Path(__file__).parent / "RESULTS.md"
    if argv == ["--log"]:
        log_tables()
        return
    if argv == ["--check"]:
        if not results.is_file() or results.read_text() != headline():
            raise SystemExit(f"{results} is stale: run python benchmarks/make_results.py")
        return
    if argv:
        raise SystemExit("usage: python benchmarks/make_results.py [--log | --check]")
    results.write_text(headline())


if __name__ == "__main__":
    main(sys.argv[1:])
