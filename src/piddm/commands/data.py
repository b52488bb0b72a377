"""``piddm data generate | merge | show | import | export``: solver-backed datasets, and
DiffusionPDE's data converted to and from them."""

from __future__ import annotations

import time
from pathlib import Path

import click

from piddm.cli import emit_json
from piddm.commands.options import INT64, SEED
from piddm.errors import PiddmError

PROGRESS_HELP = "Hide the progress bar."
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
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .h5 file.")
@click.option("--workers", type=INT64, default=1, show_default=True, help="Solver processes.")
@click.option(
    "--shard", default=None, help="Generate only shard I/N of the n samples (job arrays)."
)
@click.option(
    "--param", "params", multiple=True, help="PDE parameter override NAME=VALUE (e.g. k=2)."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help=PROGRESS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
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
    from piddm.data.generate import Shard, generate_dataset
    from piddm.pdes import get_pde

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
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Merged .h5 file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def merge(shards: tuple[str, ...], out: str, overwrite: bool, as_json: bool) -> None:
    """Join the shard files of one `data generate --shard I/N` job array into one dataset."""
    from piddm.data.generate import merge_shards

    path = merge_shards(list(shards), out, overwrite=overwrite)
    if as_json:
        emit_json({"out": str(path), "n": _count(path), "shards": len(shards)})
    else:
        click.echo(f"merged {len(shards)} shards into {path} ({_count(path)} samples)")


@command.command(name="show")
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .png figure.")
@click.option("--samples", "-k", type=click.IntRange(1, 16), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def show(dataset: str, out: str, samples: int, as_json: bool) -> None:
    """Plot samples of DATASET (each channel and its residual map) and print its residual."""
    import numpy as np
    import torch

    from piddm.data.io import read_dataset
    from piddm.plotting import plot_dataset_samples

    if not out.lower().endswith(".png"):
        raise PiddmError(f"--out must be a .png file, got '{out}'")
    data = read_dataset(dataset, limit=STATS_SAMPLES, check_finite=False)
    path = plot_dataset_samples(data.fields[:samples], data.pde, out)
    residual = data.pde.mean_squared_residual(torch.from_numpy(data.fields.astype(np.float64)))
    summary = {
        "out": str(path),
        "pde": data.pde.name,
        "resolution": data.pde.resolution,
        "n_checked": len(data),
        "residual_mean": float(residual.mean()),
        "residual_median": float(residual.median()),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(
            f"{dataset}: {data.pde.name} at {data.pde.resolution}^2, mean squared residual "
            f"(first {len(data)} samples) {summary['residual_mean']:.2e}; figure: {path}"
        )


@command.command(name="import")
@click.argument("source", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .h5 file.")
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
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
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
    from piddm.data.importing import import_dataset

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
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Output .mat file.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def export(dataset: str, out: str, overwrite: bool, as_json: bool) -> None:
    """Write DATASET (darcy, poisson, helmholtz) in DiffusionPDE's MATLAB layout.

    Two (N, S, S) float64 arrays under DiffusionPDE's keys (darcy: thresh_a_data /
    thresh_p_data); `piddm data import` of the file gives back the same fields.
    """
    from piddm.data.importing import export_dataset

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


def _count(path: Path) -> int:
    from piddm.data.io import open_dataset_file

    with open_dataset_file(path) as handle:
        return int(handle["fields"].shape[0])
