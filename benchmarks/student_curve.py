"""Learning curve of a one-step student: its checkpoints against held-out data and its teacher.

Usage::

    python benchmarks/student_curve.py RUN_DIR --teacher-samples FILE.h5 \
        --reference data/PDE-32-test.h5 [--every 500] [--n 512] [--seed 7] --out OUT.json

For every saved checkpoint ``step-NNNNNNNN.safetensors`` of ``RUN_DIR`` whose step is a
multiple of ``--every``, the student draws ``n`` samples from the latents of ``seed`` (the
latents the teacher samples were drawn from: ``piddm sample`` seeds sample ``i`` alone) and is
scored with :func:`piddm.metrics.evaluate` against the held-out reference, plus

* ``fresh_pair_mse``: ``mean |G(eps) - Phi_teacher(eps)|^2`` in normalised units on these
  latents, which the student never trained on; next to the run's logged pair loss (on its
  training pairs) it measures how much the student over-fits its pair bank.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from piddm.checkpoint import load_model
from piddm.data.io import read_dataset
from piddm.metrics import evaluate
from piddm.sampling import sample_checkpoint
from piddm.training.rundir import read_stats

STEP_FILE = re.compile(r"step-(\d+)\.safetensors$")


def logged_pair_loss(run_dir: Path) -> dict[int, float]:
    """``step -> loss_pairs`` from the run's ``stats.jsonl`` (the mean over each log interval)."""
    return {r["step"]: float(r["loss_pairs"]) for r in read_stats(run_dir) if "loss_pairs" in r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--teacher-samples", type=Path, required=True)
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reference = read_dataset(args.reference)
    teacher = read_dataset(args.teacher_samples)
    pde = reference.pde
    if len(teacher) < args.n:
        raise SystemExit(f"error: {args.teacher_samples} has {len(teacher)} samples, need {args.n}")
    teacher_normalised = pde.normalisation.normalise(torch.from_numpy(teacher.fields[: args.n]))
    losses = logged_pair_loss(args.run_dir)
    rows = []
    for path in sorted((args.run_dir / "checkpoints").glob("step-*.safetensors")):
        step = int(STEP_FILE.search(path.name).group(1))
        if step % args.every:
            continue
        model, meta = load_model(path)
        run = sample_checkpoint(model, meta, args.n, args.seed)
        report = evaluate(pde, run.fields, reference.fields).as_dict()
        student_normalised = pde.normalisation.normalise(torch.from_numpy(run.fields))
        fresh = (student_normalised - teacher_normalised).square().mean().item()
        near = min(losses, key=lambda s: abs(s - step)) if losses else None
        rows.append(
            {
                "step": step,
                **{k: report[k] for k in ("residual_mean", "mmse", "smse", "sfd")},
                "solver_consistency": report["solver_consistency"],
                "mmse_floor": report["mmse_floor"],
                "smse_floor": report["smse_floor"],
                "fresh_pair_mse": fresh,
                "logged_pair_loss": None if near is None else losses[near],
            }
        )
        print(json.dumps(rows[-1]))
    if not rows:
        raise SystemExit(f"error: no checkpoint at a multiple of {args.every} in {args.run_dir}")
    payload = {"run_dir": str(args.run_dir), "n": args.n, "seed": args.seed, "rows": rows}
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
