"""Figures of a benchmark: one task instance solved by every method, and residual maps.

* :func:`plot_task_comparison`: per channel a row of fields (truth, then each method's
  estimate, all with the truth's colour limits) and a row of ``|error|`` (one colour scale
  shared by all methods); observed nodes are red crosses on every panel of their channel.
* :func:`plot_residual_maps`: one generated sample per method (plus a solver sample): its
  fields and its PDE residual map, on one diverging symmetric-log scale centred at 0 shared
  by all columns, so that residuals compare across methods; each map's title carries its
  relative residual and solver consistency.

Both are drawn in the package's one figure style (:mod:`piddm.plotting`); each has a builder
(:func:`task_comparison_figure`, :func:`residual_maps_figure`) that returns the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from piddm.pdes import PDE
from piddm.plotting import (
    ERROR_CMAP,
    RESIDUAL_CMAP,
    RESIDUAL_NOTE,
    add_colorbar,
    draw_field,
    label_axes,
    mark_observed,
    new_figure,
    residual_colorbar,
    residual_guide,
    residual_norm,
    save_figure,
)


def plot_task_comparison(
    pde: PDE,
    task: str,
    truth: np.ndarray,
    mask: np.ndarray,
    estimates: Sequence[tuple[str, np.ndarray]],
    out: str | Path,
    obs_fraction: float | None = None,
) -> Path:
    """The same instance solved by every method; ``truth``, ``mask`` and each estimate are
    ``(C, S, S)`` (physical units, bool mask). Estimates use the truth's colour limits per
    channel, errors one scale per channel (the median of the methods' peak errors; larger
    errors saturate). Returns the PNG's path."""
    fig = task_comparison_figure(pde, task, truth, mask, estimates, obs_fraction)
    return save_figure(fig, out)


def task_comparison_figure(
    pde: PDE,
    task: str,
    truth: np.ndarray,
    mask: np.ndarray,
    estimates: Sequence[tuple[str, np.ndarray]],
    obs_fraction: float | None = None,
) -> Figure:
    """The figure of :func:`plot_task_comparison` (same arguments, no file)."""
    truth = np.asarray(truth, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    cols = 1 + len(estimates)
    rows = 2 * pde.num_channels
    observed = f", {100 * obs_fraction:g} % observed" if obs_fraction is not None else ""
    fig, axes = new_figure(
        rows,
        cols,
        f"{pde.name} {pde.resolution}x{pde.resolution} {task}{observed}",
        "red crosses: observed nodes; estimates on the truth's colour scale, |error| on one "
        "scale per channel (larger errors saturate)",
    )
    for c, name in enumerate(pde.channels):
        top, bottom = axes[2 * c], axes[2 * c + 1]
        limits = {"vmin": float(truth[c].min()), "vmax": float(truth[c].max())}
        errors = [np.abs(np.asarray(e[c], dtype=np.float64) - truth[c]) for _, e in estimates]
        finite = [e[np.isfinite(e)] for e in errors]
        # One scale for all methods: the median of their peak errors (a diverged method
        # saturates instead of washing out the others; the colour bar's arrow says so).
        peaks = [float(e.max()) for e in finite if e.size]
        peak = float(np.median(peaks)) if peaks else 1.0
        peak = peak or 1.0
        handle = draw_field(top[0], truth[c], f"{name}: truth", colorbar=False, **limits)
        mark_observed(top[0], mask[c])
        bottom[0].axis("off")
        bottom[0].text(
            0.5,
            0.5,
            f"|error| of {name}\n{int(mask[c].sum())} observed nodes",
            ha="center",
            va="center",
            fontsize=8,
            transform=bottom[0].transAxes,
        )
        err_handle = None
        norm = float(np.linalg.norm(truth[c])) or 1.0
        for k, ((label, estimate), error) in enumerate(zip(estimates, errors, strict=True)):
            draw_field(top[k + 1], np.asarray(estimate)[c], label, colorbar=False, **limits)
            rel = float(np.linalg.norm(np.nan_to_num(error, nan=np.inf))) / norm
            err_handle = draw_field(
                bottom[k + 1],
                error,
                f"rel. L2 {rel:.1%}",
                cmap=ERROR_CMAP,
                vmin=0.0,
                vmax=peak,
                colorbar=False,
            )
            mark_observed(top[k + 1], mask[c])
            mark_observed(bottom[k + 1], mask[c])
        add_colorbar(fig, handle, top)
        if err_handle is not None:
            add_colorbar(fig, err_handle, bottom, extend="max")
    label_axes(axes, pde)
    return fig


def plot_residual_maps(
    pde: PDE,
    reference: np.ndarray,
    samples: Sequence[tuple[str, np.ndarray]],
    out: str | Path,
) -> Path:
    """Fields and residual map of one solver sample and one sample per method (``(C, S, S)``
    each, physical units); all residual maps share one diverging scale. Returns the path."""
    return save_figure(residual_maps_figure(pde, reference, samples), out)


def residual_maps_figure(
    pde: PDE, reference: np.ndarray, samples: Sequence[tuple[str, np.ndarray]]
) -> Figure:
    """The figure of :func:`plot_residual_maps` (same arguments, no file)."""
    columns = [("solver (reference)", np.asarray(reference, dtype=np.float64))]
    columns += [(label, np.asarray(x, dtype=np.float64)) for label, x in samples]
    stack = np.stack([x for _, x in columns])
    residuals = pde.residual(torch.from_numpy(stack)).numpy()
    msr = pde.mean_squared_residual(torch.from_numpy(stack)).numpy()
    guide = residual_guide(pde, stack)
    shared = residual_norm(residuals)
    cols, rows = len(columns), pde.num_channels + 1
    fig, axes = new_figure(
        rows,
        cols,
        f"{pde.name} {pde.resolution}x{pde.resolution}: one generated sample per method "
        "(field colour limits of the solver sample; residuals on one shared scale)",
        RESIDUAL_NOTE,
    )
    for c, name in enumerate(pde.channels):
        limits = {"vmin": float(columns[0][1][c].min()), "vmax": float(columns[0][1][c].max())}
        handle = None
        for k, (label, x) in enumerate(columns):
            handle = draw_field(axes[c, k], x[c], f"{label}\n{name}", colorbar=False, **limits)
        add_colorbar(fig, handle, axes[c])
    handle = None
    for k in range(cols):
        handle = draw_field(
            axes[-1, k],
            residuals[k],
            f"residual, mean sq. {msr[k]:.1e}\n{guide[k]}",
            cmap=RESIDUAL_CMAP,
            norm=shared,
            colorbar=False,
        )
    residual_colorbar(fig, handle, axes[-1])
    label_axes(axes, pde)
    return fig
