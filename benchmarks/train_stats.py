"""Training throughput of a run directory, from its ``stats.jsonl``.

Usage: python benchmarks/train_stats.py RUN_DIR OUT.json
Writes ``{"samples_per_s_mean", "samples_per_s_max", "source"}`` (the mean and maximum of the
logged per-interval throughput, in training samples per second).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from piddm.training.rundir import read_stats


def main() -> None:
    run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    stats = run_dir / "stats.jsonl"
    rates = [row["samples_per_s"] for row in read_stats(run_dir) if "samples_per_s" in row]
    if not rates:
        sys.exit(f"error: {stats} has no samples_per_s entries")
    payload = {
        "samples_per_s_mean": round(sum(rates) / len(rates), 1),
        "samples_per_s_max": round(max(rates), 1),
        "source": str(stats),
    }
    out.write_text(json.dumps(payload) + "\n")


if __name__ == "__main__":
    main()
