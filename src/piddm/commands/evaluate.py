"""``piddm eval``: the metrics of docs/concepts.md for a sample file against held-out solver
data; solver consistency and the relative residual first, the raw residual as a diagnostic."""

from __future__ import annotations

from typing import Any

import click
import numpy as np

from piddm.commands.options import json_option
from piddm.data.io import read_dataset
from piddm.errors import PiddmError
from piddm.jsonio import emit_json
from piddm.metrics import evaluate


@click.command(name="eval")
@click.option("--samples", required=True, type=click.Path(dir_okay=False), help="Generated .h5.")
@click.option("--reference", required=True, type=click.Path(dir_okay=False), help="Solver .h5.")
@click.option("--no-consistency", is_flag=True, help="Skip the solver-consistency metric.")
@json_option
def command(samples: str, reference: str, no_consistency: bool, as_json: bool) -> None:
    """Solver consistency, relative residual, MMSE/SMSE and SFD (with noise floors) and the
    raw residual of SAMPLES.

    Solver consistency (relative L2 between each sample's solution and the solver's for its
    own input) and the relative residual (|R| over the zero field's |R|; 0 for the solver, 1
    for a zero solution) are scale-free; the raw mean squared residual is in physical units,
    a diagnostic. Means and medians come with 95 % intervals (normal approximation for a
    mean, bootstrap for a median). The reference should be held-out solver data (not the
    training set) with at least twice as many samples as SAMPLES so that the noise floors use
    disjoint halves of equal size (each floor is averaged over 16 random splits of the
    reference).
    """
    gen = read_dataset(samples, check_finite=False)
    ref = read_dataset(reference)
    if (gen.pde.name, gen.pde.resolution) != (ref.pde.name, ref.pde.resolution):
        raise PiddmError(
            f"samples are {gen.pde.name} at {gen.pde.resolution}^2 but the reference is "
            f"{ref.pde.name} at {ref.pde.resolution}^2"
        )
    if gen.pde.params != ref.pde.params:
        raise PiddmError(
            f"PDE parameters differ: samples {gen.pde.params}, reference {ref.pde.params}"
        )
    if not np.isfinite(gen.fields).all():
        raise PiddmError(f"{samples} contains NaN or Inf values: the model diverged")
    report = evaluate(ref.pde, gen.fields, ref.fields, consistency=not no_consistency).as_dict()
    if as_json:
        emit_json(report)
        return
    click.echo(
        f"{report['n']} samples of {gen.pde.name} {gen.pde.resolution}^2 vs {len(ref)} reference"
    )
    for line in report_lines(report):
        click.echo(f"  {line}")


def _interval(ci: list[float] | None) -> str:
    """``[lo, hi]`` of a 95 % interval, or ``[-]`` when it is undefined."""
    return "[-]" if ci is None else f"[{ci[0]:.3e}, {ci[1]:.3e}]"


def _median_and_mean(report: dict[str, Any], median: str, mean: str) -> str:
    """``median M [lo, hi]  mean A [lo, hi]`` of two keys and their ``_ci`` intervals."""
    return (
        f"median {report[median]:.3e} {_interval(report[median + '_ci'])}"
        f"  mean {report[mean]:.3e} {_interval(report[mean + '_ci'])}"
    )


def report_lines(report: dict[str, Any]) -> list[str]:
    """The text lines of an :class:`~piddm.metrics.EvalReport` dict: solver consistency,
    relative residual, MMSE / SMSE / SFD against their floors, and the raw residual."""
    if report["solver_consistency"] is None:
        lines = ["solver consistency: not measured (--no-consistency)"]
    else:
        consistency = _median_and_mean(report, "solver_consistency_median", "solver_consistency")
        lines = [f"solver consistency (rel. L2 to the solver)  {consistency}"]
    relative = _median_and_mean(report, "relative_residual_median", "relative_residual_mean")
    lines.append(f"relative residual |R|/|R(zero field)|      {relative}")
    for key in ("mmse", "smse", "sfd"):
        value, floor = report[key], report[f"{key}_floor"]
        lines.append(
            f"{key:<5} {value:.3e}  floor {floor:.3e}  ({value / max(floor, 1e-300):.2f}x)"
        )
    lines.append(
        f"residual (diagnostic, mean squared, physical units)  mean {report['residual_mean']:.3e}"
        f" {_interval(report['residual_mean_ci'])}  median {report['residual_median']:.3e}"
        f"  (reference {report['reference_residual_mean']:.3e})"
    )
    return lines
