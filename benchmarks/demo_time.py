"""Wall time of ``piddm demo`` in a fresh process (first import included), with its report.

Usage: ``python benchmarks/demo_time.py darcy`` -> ``benchmarks/results/demo-darcy.json``.
Run it on an idle machine: the figure is what a newcomer waits for after ``pip install``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    pde = sys.argv[1] if len(sys.argv) > 1 else "darcy"
    with tempfile.TemporaryDirectory() as tmp:
        command = ["piddm", "demo", "--pde", pde, "--out", tmp, "--json"]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"piddm demo failed: {proc.stderr.strip()}")
    report = json.loads(proc.stdout)
    report.update(wall_seconds=wall, command=" ".join(command[:4]))
    out = RESULTS / f"demo-{pde}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{pde}: {wall:.1f} s wall (in-process {report['seconds']:.1f} s) -> {out}")


if __name__ == "__main__":
    main()
