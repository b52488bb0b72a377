"""``piddm eval``: metrics of SPEC section 6 for a sample file against held-out solver data."""

from __future__ import annotations

import click

from piddm.cli import emit_json
from piddm.commands.options import json_option
from piddm.errors import PiddmError


@click.command(name="eval")
@click.option("--samples", required=True, type=click.Path(dir_okay=False), help="Generated .h5.")
@click.option("--reference", required=True, type=click.Path(dir_okay=False), help="Solver .h5.")
@click.option("--no-consistency", is_flag=True, help="Skip the solver-consistency metric.")
@json_option
def command(samples: str, reference: str, no_consistency: bool, as_json: bool) -> None:
    """Residual, MMSE/SMSE and SFD (with noise floors) and solver consistency of SAMPLES.

    The reference should be held-out solver data (not the training set) with at least twice
    as many samples as SAMPLES so that the noise floors use disjoint halves of equal size
    (each floor is averaged over 16 random splits of the reference).
    """
    from piddm.data.io import read_dataset
    from piddm.metrics import evaluate

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
    import numpy as np

    if not np.isfinite(gen.fields).all():
        raise PiddmError(f"{samples} contains NaN or Inf values: the model diverged")
    report = evaluate(ref.pde, gen.fields, ref.fields, consistency=not no_consistency).as_dict()
    if as_json:
        emit_json(report)
        return
    floor = {"mmse": "mmse_floor", "smse": "smse_floor", "sfd": "sfd_floor"}
    click.echo(
        f"{report['n']} samples of {gen.pde.name} {gen.pde.resolution}^2 vs {len(ref)} reference"
    )
    click.echo(
        f"  residual mean {report['residual_mean']:.3e}  median {report['residual_median']:.3e}"
        f"  (reference {report['reference_residual_mean']:.3e})"
    )
    for key, floor_key in floor.items():
        click.echo(
            f"  {key:<5} {report[key]:.3e}  floor {report[floor_key]:.3e}"
            f"  ({report[key] / max(report[floor_key], 1e-300):.2f}x)"
        )
    if report["solver_consistency"] is not None:
        click.echo(f"  solver consistency (rel. L2) {report['solver_consistency']:.3e}")
