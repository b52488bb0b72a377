"""``piddm bench``: all baselines (docs/method.md, "Baselines") vs PIDDM, one table + figures."""

from __future__ import annotations

from pathlib import Path

import click
import torch

from piddm.bench import load_bench_config, markdown_table, run_bench
from piddm.commands.options import config_option, device_flag, json_option, path_option
from piddm.errors import PiddmError
from piddm.jsonio import emit_json
from piddm.progress import show_progress


@click.command(name="bench")
@click.option("--pde", required=True, help="PDE of the benchmark (must match the config's).")
@config_option("Bench config (YAML), e.g. configs/bench-smoke.yaml.")
@path_option(
    "--out-dir", kind="dir", as_path=True, help="Figures and bench.json [config's out_dir]."
)
@device_flag(None, "Where to run [config's device].")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads of torch [torch's default]; 1 gives steadier timings on a busy machine.",
)
@click.option("--quiet", is_flag=True, help="No progress bars or progress lines on stderr.")
@json_option
def command(
    pde: str,
    config_path: Path,
    out_dir: Path | None,
    device: str | None,
    threads: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Benchmark PIDDM against the teacher, PIDM, DiffusionPDE, CoCoGen, ECI, D-Flow, PID, the
    PDE-constrained MAP and the Bayes floor.

    Every method runs in this process on the same held-out instances, observation masks and
    seeded latents (generation, and the forward, inverse and reconstruction tasks); NFE and
    wall time per sample are measured around each method's sampling. Prints one markdown
    table (with --json: one JSON object with the rows instead) and writes figures (among them
    a time-vs-error plot per task) and bench.json to the output directory. Models missing
    from the config are skipped with a warning; a 'build' section trains tiny ones into a
    cache first.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = load_bench_config(config_path)
    if pde != cfg.pde.name:
        raise PiddmError(f"--pde {pde} does not match the config's PDE '{cfg.pde.name}'")

    def log(message: str) -> None:
        if not quiet or message.startswith("warning:"):
            click.echo(message, err=True)

    result = run_bench(
        cfg, device=device, out_dir=out_dir, progress=show_progress(quiet=quiet or as_json), log=log
    )
    out = Path(out_dir or cfg.out_dir)
    if as_json:
        payload = result.payload(cfg, out)
        payload["config_path"] = str(config_path)
        emit_json(payload)
        return
    click.echo(markdown_table(result.rows))
    click.echo(f"figures and bench.json in {out}", err=True)
