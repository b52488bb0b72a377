"""``piddm data generate | merge | show | import | export``: solver-backed datasets, and
DiffusionPDE's data converted to and from them."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
import torch

from piddm.commands.options import (
    INT64,
    SEED,
    json_option,
    out_option,
    overwrite_option,
    quiet_option,
)
from piddm.data.generate import Shard, generate_dataset, merge_shards
from piddm.data.importing import export_dataset, import_dataset
from piddm.data.io import open_dataset_file, read_dataset
from piddm.errors import PiddmError
from piddm.jsonio import emit_json
from piddm.pdes import get_pde
from piddm.plotting import plot_dataset_samples

STATS_SAMPLES = 256  # `data show` reports the residual over at most this many samples


@click.group(name="data")
def command() -> None:
    """Generate, merge and inspect solver-backed PDE datasets (HDF5); import / export
    DiffusionPDE's data."""


@command.command(name="generate")
@click.argument("pde")
@click.option(
    "--resolution", "-s", type=INT64, required=True, help="Grid size S (S x S nodes), 8 to 4096."
)
@click.option(
    "--n", "n", type=INT64, required=True, help="Number of samples (all shards together)."
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Dataset seed.")
@out_option()
@click.option("--workers", type=INT64, default=1, show_default=True, help="Solver processes.")
@click.option(
    "--shard", default=None, help="Generate only shard I/N of the n samples (job arrays)."
)
@click.option(
    "--param", "params", multiple=True, help="PDE parameter override NAME=VALUE (e.g. k=2)."
)
@overwrite_option()
@quiet_option
@json_option
def generate(
    pde: str,
    resolution: int,
    n: int,
    seed: int,
    out: str,
    workers: int,
    shard: str | None,
    params: tuple[str, ...],
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Solve N samples of PDE (darcy, poisson, helmholtz, burgers) into an HDF5 file.

    Sample i depends only on (seed, i): the file is identical for any --workers, and the
    shards of --shard I/N joined with `piddm data merge` equal a single run.
    """
    model = get_pde(pde, resolution, **_parse_params(params))
    start = time.perf_counter()
    path = generate_dataset(
        model,
        n,
        seed,
        out,
        workers=workers,
        shard=Shard.parse(shard) if shard else None,
        overwrite=overwrite,
        progress=not quiet,
    )
    seconds = time.perf_counter() - start
    count = _count(path)
    summary = {
        "out": str(path),
        "pde": model.name,
        "resolution": resolution,
        "n": count,
        "seconds": seconds,
        "samples_per_second": count / seconds,
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"wrote {count} {model.name} samples at {resolution}^2 to {path} ({seconds:.1f} s)"
        )


@command.command(name="merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(dir_okay=False))
@out_option("Merged .h5 file.")
@overwrite_option()
@json_option
def merge(shards: tuple[str, ...], out: str, overwrite: bool, as_json: bool) -> None:
    """Join the shard files of one `data generate --shard I/N` job array into one dataset."""
    path = merge_shards(list(shards), out, overwrite=overwrite)
    if as_json:
        emit_json({"out": str(path), "n": _count(path), "shards": len(shards)})
    else:
        click.echo(f"merged {len(shards)} shards into {path} ({_count(path)} samples)")


@command.command(name="show")
@click.argument("dataset", type=click.Path(dir_okay=False))
@out_option("Output .png figure.")
@click.option("--samples", "-k", type=click.IntRange(1, 16), default=3, show_default=True)
@json_option
def show(dataset: str, out: str, samples: int, as_json: bool) -> None:
    """Plot samples of DATASET (each channel and its residual map) and print its residual.

    Files store float32, which rounds every value by up to 6e-8 relative: the residual of
    solver data read back from a file is at float32 round-off (about 1e-11 for Darcy at
    32^2), not at the solver's float64 round-off (1e-28, the demo's solver row). For
    comparison, the drawn samples' inputs are solved again in float64 and the residual of
    those fields is printed too.
    """
    if not out.lower().endswith(".png"):
        raise PiddmError(f"--out must be a .png file, got '{out}'")
    data = read_dataset(dataset, limit=STATS_SAMPLES, check_finite=False)
    shown = data.fields[:samples]
    path = plot_dataset_samples(shown, data.pde, out)
    pde = data.pde
    residual = pde.mean_squared_residual(torch.from_numpy(data.fields.astype(np.float64)))
    finite = shown[np.isfinite(shown).all(axis=(1, 2, 3))].astype(np.float64)
    try:
        solved = np.stack([pde.solve_own_input(f) for f in finite]) if len(finite) else None
    except (PiddmError, RuntimeError, ValueError):
        solved = None  # the solver fails on a (generated) input: no float64 comparison
    resolved = None if solved is None else pde.mean_squared_residual(torch.from_numpy(solved))
    summary = {
        "out": str(path),
        "pde": pde.name,
        "resolution": pde.resolution,
        "dtype": _stored_dtype(dataset),
        "n_checked": len(data),
        "residual_mean": float(residual.mean()),
        "residual_median": float(residual.median()),
        "resolved_float64_residual_mean": None if resolved is None else float(resolved.mean()),
        "n_resolved": 0 if solved is None else len(finite),
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"{dataset}: {pde.name} at {pde.resolution}^2, fields stored as {summary['dtype']}; "
        f"mean squared residual (first {len(data)} samples) {summary['residual_mean']:.2e}"
    )
    if resolved is not None:
        click.echo(
            f"  {summary['dtype']} storage rounds every value, so even solver data has a "
            f"residual at {summary['dtype']} round-off here; the first {len(finite)} samples' "
            f"inputs solved in float64 have {float(resolved.mean()):.2e}"
        )
    click.echo(f"figure: {path}")


@command.command(name="import")
@click.argument("source", type=click.Path())
@out_option()
@click.option(
    "--pde",
    type=click.Choice(["darcy", "poisson", "helmholtz"]),
    default=None,
    help="PDE of the data [from a .mat file's keys; required for .npy layouts].",
)
@click.option(
    "--layout",
    type=click.Choice(["auto", "diffusionpde-mat", "diffusionpde-npy", "fundps-npy"]),
    default="auto",
    show_default=True,
    help="Source layout (auto: from the content).",
)
@click.option("--n", "n", type=INT64, default=None, help="Import the first N samples [all].")
@overwrite_option()
@json_option
def import_(
    source: str,
    out: str,
    pde: str | None,
    layout: str,
    n: int | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Convert DiffusionPDE's data SOURCE (or FunDPS / DDIS's copy) into a piddm dataset.

    \b
    SOURCE layouts (docs/diffusionpde.md):
      diffusionpde-mat  the released .mat files (MATLAB 5 or 7.3), e.g. darcy.mat with
                        thresh_a_data / thresh_p_data (N, X, Y); poisson: f_data / phi_data;
                        helmholtz: f_data / psi_data
      diffusionpde-npy  its training copy: a directory of merge_{i}.npy (X, Y, 2), scaled
      fundps-npy        FunDPS / DDIS's normalised copy as a .npy (N, 2, X, Y)

    Prints the mean squared residual, the relative residual and the solver consistency of the
    imported fields under piddm's discretisation: facts about data from another solver and
    grid, not errors.
    """
    report = import_dataset(source, out, pde=pde, layout=layout, limit=n, overwrite=overwrite)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"imported {report.n} {report.pde} samples at {report.resolution}^2 from {source} "
        f"({report.layout}, {report.container}: {', '.join(report.keys)}) into {report.out}"
    )
    click.echo("under piddm's discretisation (facts about the data, not errors):")
    click.echo(
        f"  mean squared residual  {report.residual_mean:.3g} (median {report.residual_median:.3g})"
    )
    click.echo(
        f"  relative residual      {report.relative_residual_mean:.3g} "
        f"(median {report.relative_residual_median:.3g})"
    )
    click.echo(
        f"  solver consistency     {report.solver_consistency:.3g} "
        f"(relative L2 of u, first {report.consistency_samples} samples)"
    )


@command.command(name="export")
@click.argument("dataset", type=click.Path(dir_okay=False))
@out_option("Output .mat file.")
@overwrite_option()
@json_option
def export(dataset: str, out: str, overwrite: bool, as_json: bool) -> None:
    """Write DATASET (darcy, poisson, helmholtz) in DiffusionPDE's MATLAB layout.

    Two (N, S, S) float64 arrays under DiffusionPDE's keys (darcy: thresh_a_data /
    thresh_p_data); `piddm data import` of the file gives back the same fields.
    """
    summary = export_dataset(dataset, out, overwrite=overwrite)
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"wrote {summary['n']} {summary['pde']} samples at {summary['resolution']}^2 to "
            f"{summary['out']} (DiffusionPDE's layout: {', '.join(summary['keys'])})"
        )


def _parse_params(items: tuple[str, ...]) -> dict[str, float]:
    params: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise PiddmError(f"--param must look like NAME=NUMBER, got '{item}'")
    return params


def _stored_dtype(path: str | Path) -> str:
    """The dtype of the file's ``fields`` (``float32`` for every file piddm writes)."""
    with open_dataset_file(path) as handle:
        return str(handle["fields"].dtype)


def _count(path: Path) -> int:
    with open_dataset_file(path) as handle:
        return int(handle["fields"].shape[0])
