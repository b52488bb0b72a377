"""Teacher samples from the EMA weights vs the raw (last-step) weights of a run.

Usage: ``python benchmarks/ema_vs_raw.py darcy`` -> ``benchmarks/results/<pde>-32-ema-vs-raw.json``.
Heun 18, 512 samples (seed 7, as the teacher evaluation), against ``data/<pde>-32-test.h5``.
The raw weights are the optimiser's, read from the run's latest training state.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from piddm.checkpoint import load_model, load_training_state, read_latest
from piddm.data.io import read_dataset
from piddm.metrics import evaluate
from piddm.sampling import pde_of, sample_checkpoint

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    pde_name = sys.argv[1] if len(sys.argv) > 1 else "darcy"
    run = Path(f"runs/{pde_name}-32-teacher")
    ema, metadata = load_model(run)
    raw, _ = load_model(run)
    record = read_latest(run / "checkpoints")
    raw.load_state_dict(load_training_state(run / "checkpoints" / record["state"])["model"])
    pde = pde_of(metadata)
    reference = read_dataset(f"data/{pde_name}-32-test.h5").fields
    out = {
        "pde": pde_name,
        "step": record["step"],
        "ema_decay": metadata["config"]["optim"]["ema_decay"],
    }
    for name, model in (("ema", ema), ("raw", raw)):
        run_ = sample_checkpoint(model, metadata, 512, 7)
        out[name] = evaluate(pde, run_.fields, reference, consistency=False).as_dict()
        r = out[name]
        ratios = {k: r[k] / r[f"{k}_floor"] for k in ("mmse", "smse", "sfd")}
        print(
            f"{pde_name} {name}: residual {r['residual_mean']:.3g}, "
            + ", ".join(f"{k.upper()} {v:.2f}x floor" for k, v in ratios.items())
        )
    (RESULTS / f"{pde_name}-32-ema-vs-raw.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
