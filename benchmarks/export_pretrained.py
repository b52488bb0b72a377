"""Export trained 32^2 runs into the package as pretrained models, with model cards.

Usage (after ``bash benchmarks/pretrained_pipeline.sh PDE``)::

    python benchmarks/export_pretrained.py darcy poisson helmholtz burgers

For each PDE: ``runs/<pde>-32-teacher`` -> ``src/piddm/pretrained/<pde>-32-teacher.*`` and
``runs/<pde>-32-piddm`` -> ``<pde>-32-piddm.*`` (float16 weights + JSON card measured on the
exported weights against ``data/<pde>-32-test.h5``: every key of ``piddm eval``, among them
solver consistency and the relative residual, median and mean with 95 % intervals), then
``docs/pretrained.md`` is rendered from every card. With ``--render-only`` only the page is
rendered. The start networks (trained with the shipped student as ``--student``)::

    piddm amortise --student darcy-32-piddm --config configs/darcy-32-start-cpu.yaml \
        --run-dir runs/darcy-32-start
    piddm amortise --student darcy-32-piddm --config configs/darcy-32-start-inverse-cpu.yaml \
        --run-dir runs/darcy-32-start-inverse
    python benchmarks/export_pretrained.py darcy --roles start start-inverse

(their cards: :func:`piddm.export.start_card`, the task metrics of ``piddm solve --start``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from piddm.atomic import atomic_output
from piddm.checkpoint import load_model, resolve_checkpoint
from piddm.config import DistillConfig, OptimConfig
from piddm.data.io import read_dataset
from piddm.distill import residual_norm_of
from piddm.export import (
    check_residual,
    check_start,
    export_weights,
    measure,
    model_card,
    read_cards,
    render_cards,
    start_card,
    start_student,
    time_per_sample,
    write_card,
)
from piddm.models import PRETRAINED_DIR
from piddm.nets import count_parameters
from piddm.training.rundir import read_stats

ROOT = Path(__file__).resolve().parent.parent
MACHINE = (
    "a 2-core CPU (shared with a second training run), torch " + torch.__version__.split("+")[0]
)
TRAIN_DATA = "4,000 solver samples (seed 0; 200 more held out during training)"
TEST_DATA = "1,024 held-out solver samples (seed 1)"
#: Arguments of benchmarks/pretrained_pipeline.sh that trained each shipped pair.
PIPELINE = {
    "darcy": "2500 4000 4000 1000",
    "poisson": "2500 1500 4000 1500",
    "helmholtz": "2500 500 4000 500",
    "burgers": "2500 500 4000 500",
}


def train_seconds(run_dir: Path) -> float:
    """Cumulative training seconds of a run (its last ``stats.jsonl`` record)."""
    return float(read_stats(run_dir)[-1]["seconds"])


def export_one(pde: str, role: str, reference: np.ndarray) -> None:
    """Export ``runs/<pde>-32-<role>`` with its card, measured against ``reference``."""
    run_dir = ROOT / "runs" / f"{pde}-32-{role}"
    name = f"{pde}-32-{role}"
    if role == "teacher":
        config, command = (
            f"configs/{pde}-32-cpu.yaml",
            f"piddm train --config configs/{pde}-32-cpu.yaml",
        )
    else:
        config = f"configs/{pde}-32-piddm-cpu.yaml"
        command = f"piddm distill --teacher runs/{pde}-32-teacher --config {config}"
    if role.startswith("start"):
        export_start(pde, role, reference)
        return
    model, metadata = load_model(resolve_checkpoint(run_dir))
    fp32_check = check_residual(model, metadata)
    weights = export_weights(run_dir, name)
    notes = []
    trained = metadata.get("config", {})
    if role == "piddm":
        distill, optim = trained.get("distill", {}), trained.get("optim", {})
        grad = distill.get("residual_grad", DistillConfig.residual_grad)
        notes.append(
            f"Distilled from `{pde}-32-teacher` (lambda_train {distill.get('lambda_train'):g}, "
            f"{distill.get('pairs'):,} pairs, lr {optim.get('lr'):g} "
            f"{optim.get('lr_schedule', OptimConfig.lr_schedule)}"
            + (", physics gradient to the solution channel only" if grad == "solution" else "")
            + (
                f", spread term {spread:g}"
                if (spread := distill.get("std_weight", DistillConfig.std_weight))
                else ""
            )
            + f", {residual_norm_of(metadata)} residual"
            + (
                f"; its U-Net grown by {grown} refinement blocks per decoder level, "
                f"{count_parameters(model):,} parameters"
                if (grown := distill.get("grow_blocks", DistillConfig.grow_blocks))
                else ""
            )
            + ")."
        )
        if origin := trained.get("train", {}).get("init_from"):
            if origin == name:  # the previous release's model of the same name
                origin = f"the previously shipped {name} (the paper's plain residual)"
            notes.append(
                f"Stage 2 of 2: {int(metadata['step']):,} steps from the EMA weights of "
                f"{origin}; steps and training time below are stage 2's."
            )
    elif trained.get("train", {}).get("init_from"):
        origin = trained["train"]["init_from"]
        if origin == name:  # the previous release's model of the same name
            origin = f"piddm 0.1.0's pretrained {name} (2,500 steps of this config)"
        optim = trained["optim"]
        schedule = optim.get("lr_schedule", OptimConfig.lr_schedule)
        notes.append(
            f"Stage 2 of 2: {int(metadata['step']):,} steps from the EMA weights of {origin}, "
            f"lr {optim['lr']:g} with a {schedule} decay, EMA "
            f"ramp-up {optim.get('ema_rampup')}; steps and training time below are stage 2's."
        )
    source = {
        "config": config,
        "command": command,
        "pipeline": "OMP_NUM_THREADS=1 bash benchmarks/pretrained_pipeline.sh "
        f"{pde} {PIPELINE[pde]}",
        "steps": int(metadata["step"]),
        "train_seconds": train_seconds(run_dir),
        "machine": MACHINE,
        "python": platform.python_version(),
    }
    card = model_card(
        weights, reference, source, {"train": TRAIN_DATA, "test": TEST_DATA}, notes=notes
    )
    card.notes.insert(
        0,
        f"Check residual (first 64 samples, seed 0): {fp32_check:.4g} with the float32 "
        f"weights, {card.check['residual_mean']:.4g} with the shipped float16 weights.",
    )
    path = write_card(card)
    ev = card.eval
    print(
        f"{name}: {weights.stat().st_size / 1e6:.2f} MB, solver consistency median "
        f"{ev['solver_consistency_median']:.4g}, relative residual median "
        f"{ev['relative_residual_median']:.4g}, residual {ev['residual_mean']:.4g}, card {path}",
        file=sys.stderr,
    )


def export_start(pde: str, role: str, reference: np.ndarray) -> None:
    """Export the start network ``runs/<pde>-32-<role>`` (trained by
    ``configs/<pde>-32-<role>-cpu.yaml``) with its card."""
    name = f"{pde}-32-{role}"
    run_dir = ROOT / "runs" / name
    config = f"configs/{name}-cpu.yaml"
    model, metadata = load_model(resolve_checkpoint(run_dir))
    fp32_check = check_start(model, metadata)
    weights = export_weights(run_dir, name)
    source = {
        "config": config,
        "command": f"piddm amortise --student {start_student(metadata)} --config {config}",
        "steps": int(metadata["step"]),
        "train_seconds": train_seconds(run_dir),
        "machine": MACHINE,
        "python": platform.python_version(),
    }
    load = os.getloadavg()[0]  # other jobs on the cores slow the solver's timings
    card = start_card(weights, reference, source, {"train": TRAIN_DATA, "test": TEST_DATA})
    threads = torch.get_num_threads()
    card.timing += f", {threads} thread{'s' * (threads > 1)}, load average {load:.1f} before"
    card.notes.insert(
        0,
        f"Check (start alone on {card.check['n']} fresh instances, 3 % observed): "
        + "; ".join(
            f"{task} rel. L2 of the solution {fp32_check[task]['rel_l2_solution']:.4g} with the "
            f"float32 weights, {card.check['tasks'][task]['rel_l2_solution']:.4g} with the "
            "shipped float16 weights"
            for task in card.check["tasks"]
        )
        + ".",
    )
    path = write_card(card)
    for task, rows in card.eval["tasks"].items():
        cells = ", ".join(
            f"{label}: rel. L2 of a {row['rel_l2_coefficient']:.4g}, of u "
            f"{row['rel_l2_solution']:.4g}, error rate {row['error_rate']}"
            for label, row in rows.items()
        )
        print(f"{name} {task}: {cells}", file=sys.stderr)
    print(f"{name}: {weights.stat().st_size / 1e6:.2f} MB, card {path}", file=sys.stderr)


def retime() -> None:
    """Re-measure time per sample: 64 samples in one batch for every model (same batch size,
    so the teacher / student ratio is the cost of the number of network evaluations)."""
    for card in read_cards(PRETRAINED_DIR):
        if card.kind == "start":  # timed per task instance by its export
            continue
        weights = PRETRAINED_DIR / f"{card.name}.safetensors"
        card.seconds_per_sample = time_per_sample(weights, 64)
        card.timing = f"best of 3 batches of 64, {torch.get_num_threads()} threads, idle machine"
        write_card(card)
        print(f"{card.name}: {1e3 * card.seconds_per_sample:.2f} ms/sample", file=sys.stderr)


def remeasure(names: list[str]) -> None:
    """Re-measure the ``eval`` of shipped models (all, or ``names``) on their float16 weights
    against ``data/<pde>-32-test.h5``, keeping the rest of each card: for models whose
    training run is not on this machine, when the metrics gain keys."""
    for card in read_cards(PRETRAINED_DIR):
        if (names and card.name not in names) or card.kind == "start":
            continue
        model, metadata = load_model(PRETRAINED_DIR / f"{card.name}.safetensors")
        reference = read_dataset(ROOT / "data" / f"{card.pde}-32-test.h5").fields
        card.eval, _ = measure(model, metadata, reference, int(card.eval["n"]))
        write_card(card)
        ev = card.eval
        print(
            f"{card.name}: solver consistency median {ev['solver_consistency_median']:.4g}, "
            f"relative residual median {ev['relative_residual_median']:.4g}",
            file=sys.stderr,
        )


def render() -> Path:
    out = ROOT / "docs" / "pretrained.md"
    with atomic_output(out) as tmp:
        tmp.write_text(render_cards(read_cards(PRETRAINED_DIR)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdes", nargs="*", default=[])
    parser.add_argument("--roles", nargs="+", default=["teacher", "piddm"])
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--retime",
        action="store_true",
        help="only re-measure ms/sample of every shipped model (run it on an idle machine)",
    )
    parser.add_argument(
        "--remeasure",
        nargs="*",
        metavar="NAME",
        help="only re-measure the eval of these shipped models (none named: all) on their "
        "float16 weights, keeping the rest of each card",
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.retime:
        retime()
    elif args.remeasure is not None:
        remeasure(args.remeasure)
    elif not args.render_only:
        for pde in args.pdes:
            reference = read_dataset(ROOT / "data" / f"{pde}-32-test.h5").fields
            for role in args.roles:
                export_one(pde, role, reference)
    print(f"wrote {render()}", file=sys.stderr)


if __name__ == "__main__":
    main()
