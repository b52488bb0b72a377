"""``piddm sample``: draw samples from a teacher or a student checkpoint."""

from __future__ import annotations

import click

from piddm.atomic import check_output_path
from piddm.commands.options import (
    INT64,
    SEED,
    device_option,
    json_option,
    model_option,
    out_option,
    overwrite_option,
    quiet_option,
)
from piddm.jsonio import emit_json
from piddm.models import check_model_matches, load_any
from piddm.progress import show_progress
from piddm.sampling import pde_of, sample_checkpoint, write_samples
from piddm.training.distributed import DistInfo, resolve_device


@click.command(name="sample")
@model_option
@click.option("--n", "n", type=INT64, required=True, help="Number of samples.")
@click.option("--steps", type=INT64, default=None, help="Teacher Heun steps [default: config, 18].")
@click.option(
    "--refine", type=INT64, default=0, show_default=True, help="Student latent refinement steps."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Sample seed.")
@click.option("--batch-size", type=INT64, default=64, show_default=True)
@out_option()
@click.option("--pde", default=None, help="Refuse a model of any other PDE.")
@click.option(
    "--resolution", type=INT64, default=None, help="Refuse a model of any other resolution."
)
@overwrite_option()
@device_option
@quiet_option
@json_option
def command(
    model: str,
    n: int,
    steps: int | None,
    refine: int,
    seed: int,
    batch_size: int,
    out: str,
    pde: str | None,
    resolution: int | None,
    overwrite: bool,
    device: str,
    quiet: bool,
    as_json: bool,
) -> None:
    """Sample N fields from MODEL into an HDF5 dataset (physical units, solver-data format).

    Teachers integrate the probability-flow ODE with Heun (2 x steps - 1 evaluations);
    students generate in one evaluation (plus refinement steps if --refine > 0). Sample i
    depends only on (seed, i), not on the batch size.
    """
    check_output_path(out, overwrite)
    torch_device = resolve_device(device, DistInfo(0, 1, 0))
    denoiser, metadata = load_any(model, torch_device)
    check_model_matches(metadata, pde, resolution)
    model_pde = pde_of(metadata)
    run = sample_checkpoint(
        denoiser,
        metadata,
        n,
        seed,
        steps=steps,
        refine=refine,
        batch_size=batch_size,
        device=torch_device,
        progress=show_progress(quiet=quiet or as_json),
    )
    nfe = run.nfe
    generator = {
        "model": str(model),
        "kind": metadata.get("kind"),
        "seed": seed,
        "nfe": nfe,
        "steps": steps,
        "refine": refine,
    }
    path = write_samples(out, run, model_pde, generator, overwrite=overwrite)
    summary = {
        "n": n,
        "nfe": nfe,
        "seconds_per_sample": run.seconds_per_sample,
        "out": str(path),
        "seconds": run.seconds,
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"wrote {n} samples to {path} (NFE {nfe}, {run.seconds_per_sample * 1e3:.1f} ms/sample)"
        )
