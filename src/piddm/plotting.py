"""One figure style for every figure piddm writes (data, demo, tasks, bench, training).

The pieces, used by :mod:`piddm.tasks.figures`, :mod:`piddm.bench.figures` and the training
run's ``figures/samples.png`` alike:

* :func:`new_figure`: a grid of panels under a title and an optional reading guide, laid out
  by matplotlib's constrained layout so that nothing is clipped or overlaps;
* :func:`draw_field`: one ``(S, S)`` image on the unit square (``origin="lower"``, ticks at
  0, 0.5, 1) with its own colour bar; :func:`label_axes` names the outer axes with
  ``pde.axis_labels`` (``x`` / ``y``, or ``t`` / ``x`` for a space-time image);
* :func:`add_colorbar` / :func:`residual_colorbar`: compact tick labels; a residual map is on
  a diverging symmetric-log scale centred at 0 (:func:`residual_norm`) with five ticks
  (``-peak``, ``-peak/100``, 0, ``peak/100``, ``peak``) that cannot collide;
* :func:`residual_guide`: the line under a residual map's title, its relative residual and
  solver consistency (docs/concepts.md, "Physics measures").

Figures are :class:`matplotlib.figure.Figure` objects (no pyplot state, no GUI backend), so
that they are safe to draw inside a training run; :func:`save_figure` writes the PNG
atomically.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Normalize, SymLogNorm
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FuncFormatter, MaxNLocator

from piddm.atomic import atomic_output, check_output_path
from piddm.errors import PiddmError
from piddm.metrics import solver_consistency
from piddm.pdes import PDE

PANEL = 2.3  # inches per image panel; a grid cell is PANEL + 0.5 wide (its colour bar)
DPI = 110
TITLE_SIZE = 10  # figure title and reading guide
PANEL_TITLE_SIZE = 8
LABEL_SIZE = 8  # axis labels
TICK_SIZE = 7
FIELD_CMAP = "viridis"
ERROR_CMAP = "magma"  # |error| and ensemble std: sequential, from 0
RESIDUAL_CMAP = "RdBu_r"  # residual maps: diverging, white at 0
OBSERVED = {"s": 6, "c": "red", "marker": "x", "linewidths": 0.6}  # observed-node crosses
RESIDUAL_NOTE = (
    "rel. res.: |R| / |R of the zero field| (1: no better than zero); "
    "consistency: relative L2 to the solver's solution for the sample's own input"
)


def new_figure(rows: int, cols: int, title: str, note: str = "") -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` panels (``axes[r, c]``) under ``title`` and, on the lines
    below it, ``note`` (a reading guide); both are wrapped to the figure's width."""
    width = (PANEL + 0.5) * cols + 0.4
    lines = _wrap(title, width) + _wrap(note, width)
    # compress: the panels keep their aspect ratio and the colour bars their panels' height
    # (two rows' colour bars never meet, so their end labels cannot collide)
    fig = Figure(
        figsize=(width, PANEL * rows + 0.2 * len(lines) + 0.3),
        layout=ConstrainedLayoutEngine(compress=True, w_pad=0.04, h_pad=0.04),
    )
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    fig.suptitle("\n".join(lines), fontsize=TITLE_SIZE)
    return fig, axes


def _wrap(text: str, width_inches: float) -> list[str]:
    """``text`` split into lines that fit ``width_inches`` at :data:`TITLE_SIZE`."""
    chars = max(20, int(width_inches * 72 / (0.55 * TITLE_SIZE)))  # 0.55 em: a wide average
    return [line for part in text.splitlines() for line in textwrap.wrap(part, chars)]


def draw_field(
    ax: Axes,
    image: np.ndarray,
    title: str,
    *,
    cmap: str = FIELD_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    norm: Normalize | None = None,
    colorbar: bool = True,
    extend: str = "neither",
) -> AxesImage:
    """Draw ``image`` ``(S, S)`` (``image[i, j]``: row ``i`` is the first axis, bottom to top)
    on the unit square with ticks at 0, 0.5 and 1, titled ``title``, with its own colour bar
    unless ``colorbar`` is False. Returns the image handle (for a shared colour bar)."""
    if norm is None:
        norm = Normalize(vmin=vmin, vmax=vmax)
    handle = ax.imshow(
        image, origin="lower", extent=(0.0, 1.0, 0.0, 1.0), cmap=cmap, norm=norm,
        interpolation="nearest",
    )  # fmt: skip
    ax.set_title(title, fontsize=PANEL_TITLE_SIZE)
    ax.set_xticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
    ax.set_yticks([0.0, 0.5, 1.0], ["0", "0.5", "1"])
    ax.tick_params(labelsize=TICK_SIZE, length=2, pad=1.5)
    if colorbar:
        if isinstance(norm, SymLogNorm):
            residual_colorbar(ax.get_figure(), handle, ax)
        else:
            add_colorbar(ax.get_figure(), handle, ax, extend=extend)
    return handle


def mark_observed(ax: Axes, observed: np.ndarray) -> None:
    """Red crosses on the nodes where ``observed`` ``(S, S)`` (bool) is True."""
    if observed.any():
        rows, cols = np.nonzero(observed)
        s = observed.shape[0]
        ax.scatter(_node(cols, s), _node(rows, s), **OBSERVED)


def _node(index: np.ndarray, size: int) -> np.ndarray:
    """Unit-square coordinate of the centre of pixel ``index`` of ``size`` (imshow's extent)."""
    return (index + 0.5) / size


def label_axes(axes: np.ndarray, pde: PDE) -> None:
    """Name the axes of a grid of image panels with ``pde.axis_labels`` (rows, columns) and
    keep tick labels on the outer panels only: the left column and the bottom row."""
    grid = np.atleast_2d(axes)
    rows, cols = grid.shape
    for r in range(rows):
        for c in range(cols):
            ax = grid[r, c]
            if not ax.get_images():
                continue
            if c == 0:
                ax.set_ylabel(pde.axis_labels[0], fontsize=LABEL_SIZE, labelpad=2)
            else:
                ax.tick_params(labelleft=False)
            if r == rows - 1:
                ax.set_xlabel(pde.axis_labels[1], fontsize=LABEL_SIZE, labelpad=2)
            else:
                ax.tick_params(labelbottom=False)


def _compact(value: float, _: object = None) -> str:
    """A short tick label: ``0``, ``0.25``, ``12``, ``3e-05``."""
    return "0" if value == 0 else f"{value:.2g}".replace("e-0", "e-").replace("e+0", "e")


def add_colorbar(
    fig: Figure, handle: AxesImage, ax: Axes | Sequence[Axes], extend: str = "neither"
) -> Colorbar:
    """A colour bar for ``handle`` beside ``ax`` (one axes, or a row of them sharing it)
    with at most five compact tick labels."""
    shared = not isinstance(ax, Axes)
    bar = fig.colorbar(
        handle, ax=list(ax) if shared else ax, fraction=0.05, pad=0.02, aspect=20, extend=extend
    )
    bar.locator = MaxNLocator(nbins=4)
    bar.formatter = FuncFormatter(_compact)
    bar.update_ticks()
    bar.ax.tick_params(labelsize=TICK_SIZE, length=2, pad=1.5)
    return bar


def residual_norm(residual: np.ndarray) -> SymLogNorm:
    """Diverging, symmetric-log colour scale centred at 0 (residuals span many decades)."""
    finite = np.abs(residual[np.isfinite(residual)])
    peak = float(finite.max()) if finite.size else 1.0
    peak = peak or 1.0
    # linscale 1: the linear band around 0 gets a decade's height
    return SymLogNorm(linthresh=max(peak * 1e-3, 1e-300), linscale=1.0, vmin=-peak, vmax=peak)


def _power(value: float) -> str:
    """A one-digit power-of-ten label: ``0``, ``3e-7``, ``-2e0``, ``8e4``."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def residual_colorbar(fig: Figure, handle: AxesImage, ax: Axes | Sequence[Axes]) -> Colorbar:
    """The colour bar of a residual map (a :func:`residual_norm` scale): ticks at ``+-peak``,
    ``+-peak/100`` and 0, two decades apart, so their labels never collide."""
    bar = add_colorbar(fig, handle, ax)
    peak = float(handle.norm.vmax)
    bar.set_ticks([-peak, -peak * 1e-2, 0.0, peak * 1e-2, peak])
    bar.set_ticklabels([_power(t) for t in bar.get_ticks()])
    bar.ax.tick_params(labelsize=TICK_SIZE, length=2, pad=1.5)
    return bar


def residual_guide(pde: PDE, fields: np.ndarray) -> list[str]:
    """Per sample of ``fields`` ``(K, C, S, S)`` (physical units) the line under its residual
    map's title: ``rel. res. R, consistency C`` (:meth:`PDE.relative_residual`,
    :func:`piddm.metrics.solver_consistency`). A field with NaN, or one the solver fails on,
    gets ``nan``: a figure never stops a training run."""
    x = torch.from_numpy(np.asarray(fields, dtype=np.float64))
    relative = pde.relative_residual(x).numpy()
    consistency = np.full(len(x), np.nan)
    for i, field in enumerate(x.numpy()):
        if not np.isfinite(field).all():
            continue
        try:
            consistency[i] = solver_consistency(pde, field[None])[0]
        except (PiddmError, RuntimeError, ValueError):
            pass  # the solver fails on this input (Newton diverges on a wild sample): nan
    return [
        f"rel. res. {r:.2g}, consistency {c:.2g}"
        for r, c in zip(relative, consistency, strict=True)
    ]


def settle_layout(fig: Figure) -> None:
    """Run the constrained layout once without rendering: its first pass places axis labels
    before the tick labels beside them are final (a label could end past the figure's edge),
    so the draw that renders (the second) is the settled one."""
    fig.draw_without_rendering()


def save_figure(fig: Figure, out: str | Path, overwrite: bool = True) -> Path:
    """Write ``fig`` as PNG atomically, in its settled layout (:func:`settle_layout`)."""
    path = check_output_path(out, overwrite)
    settle_layout(fig)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    return path


def dataset_figure(fields: np.ndarray, pde: PDE, title: str = "") -> Figure:
    """One row per sample of ``fields`` ``(K, C, S, S)`` (physical units): each channel and
    the residual map, whose title carries its mean squared residual and the reading guide
    (:func:`residual_guide`)."""
    fields = np.asarray(fields)
    x = torch.from_numpy(fields.astype(np.float64))
    residual = pde.residual(x).numpy()
    msr = pde.mean_squared_residual(x).numpy()
    guide = residual_guide(pde, fields)
    rows, cols = len(fields), pde.num_channels + 1
    fig, axes = new_figure(
        rows, cols, title or f"{pde.name} {pde.resolution}x{pde.resolution}", RESIDUAL_NOTE
    )
    for r in range(rows):
        for c, name in enumerate(pde.channels):
            draw_field(axes[r, c], fields[r, c], f"{name} (sample {r})")
        draw_field(
            axes[r, -1],
            residual[r],
            f"residual, mean sq. {msr[r]:.1e}\n{guide[r]}",
            cmap=RESIDUAL_CMAP,
            norm=residual_norm(residual[r]),
        )
    label_axes(axes, pde)
    return fig


def plot_dataset_samples(
    fields: np.ndarray, pde: PDE, out: str | Path, title: str = "", overwrite: bool = True
) -> Path:
    """Write :func:`dataset_figure` of ``fields`` ``(K, C, S, S)`` to ``out`` (PNG)."""
    return save_figure(dataset_figure(fields, pde, title), out, overwrite)
