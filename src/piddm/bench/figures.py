"""Figures of a benchmark: one task instance solved by every method, and residual maps.

* :func:`plot_task_comparison`: per channel a row of fields (truth, then each method's
  estimate, all with the truth's colour limits) and a row of ``|error|`` (one colour scale
  shared by all methods); observed nodes are red crosses on every panel of their channel.
* :func:`plot_residual_maps`: one generated sample per method (plus a solver sample): its
  fields and its PDE residual map, on one diverging symmetric-log scale centred at 0 shared
  by all columns, so that residuals compare across methods; each map's title carries its
  relative residual and solver consistency;
* :func:`plot_time_vs_error`: per task, every row's seconds per instance (log scale) against
  its error (:func:`task_metric`) with the 95 % interval as an error bar, the Bayes floor as a
  horizontal line.

All are drawn in the package's one figure style (:mod:`piddm.plotting`); each has a builder
(:func:`task_comparison_figure`, :func:`residual_maps_figure`, :func:`time_vs_error_figure`)
that returns the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from piddm.pdes import PDE
from piddm.plotting import (
    ERROR_CMAP,
    LABEL_SIZE,
    PANEL,
    RESIDUAL_CMAP,
    RESIDUAL_NOTE,
    TICK_SIZE,
    TITLE_SIZE,
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

#: The row of the Bayes floor, drawn as a line rather than a point.
FLOOR_METHOD = "bayes-floor"


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


def task_metric(pde: PDE, task: str) -> tuple[str, str]:
    """``(row key, label)`` of the error a task is scored by: the relative L2 of the solution
    for the forward problem and reconstruction (whose coefficient is reported beside it), and
    for the inverse problem the PDE's error rate of a thresholded coefficient (Darcy, as
    DiffusionPDE scores it) or else the relative L2 of the coefficient."""
    solution = pde.channels[pde.solution_channel]
    coefficient = pde.channels[pde.coefficient_channel]
    if task != "inverse":
        return "rel_l2_solution", f"rel. L2 of {solution}"
    if pde.threshold is not None:
        return "error_rate", f"error rate of {coefficient}"
    return "rel_l2_coefficient", f"rel. L2 of {coefficient}"


def plot_time_vs_error(
    pde: PDE, task: str, rows: Sequence[dict[str, Any]], out: str | Path
) -> Path:
    """Seconds per instance against the task's error (:func:`task_metric`) of the bench's task
    ``rows`` (``piddm.bench.runner`` rows of one task). Returns the PNG's path."""
    return save_figure(time_vs_error_figure(pde, task, rows), out)


def time_vs_error_figure(pde: PDE, task: str, rows: Sequence[dict[str, Any]]) -> Figure:
    """The figure of :func:`plot_time_vs_error` (same arguments, no file): one point per row
    with a measured error, labelled ``method (variant)`` in the legend, its 95 % interval as
    a vertical bar; the Bayes floor is a horizontal line (its interval shaded) where present."""
    key, name = task_metric(pde, task)
    measured = [r for r in rows if r.get(key) is not None and r.get("seconds_per_sample")]
    fig = Figure(figsize=(2 * PANEL + 3.0, 2 * PANEL), layout="constrained")
    ax = fig.subplots()
    title = f"{pde.name} {pde.resolution}x{pde.resolution} {task}: cost against error"
    fig.suptitle(title + "\nbars: 95 % intervals over the instances", fontsize=TITLE_SIZE)
    markers = "osD^vP*Xh<>"
    for k, row in enumerate(r for r in measured if r["method"] != FLOOR_METHOD):
        label = row["method"] if row["variant"] is None else f"{row['method']} ({row['variant']})"
        value, ci = 100 * row[key], row.get(f"{key}_ci")
        yerr = None if ci is None else [[value - 100 * ci[0]], [100 * ci[1] - value]]
        ax.errorbar(
            [row["seconds_per_sample"]],
            [value],
            yerr=yerr,
            fmt=markers[k % len(markers)],
            capsize=3,
            label=f"{label} (n={row['n']})",
        )
    for row in (r for r in measured if r["method"] == FLOOR_METHOD):
        value, ci = 100 * row[key], row.get(f"{key}_ci")
        ax.axhline(value, color="black", linestyle="--", linewidth=1, label="Bayes floor")
        if ci is not None:
            ax.axhspan(100 * ci[0], 100 * ci[1], color="black", alpha=0.1, linewidth=0)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per instance (log)", fontsize=LABEL_SIZE)
    ax.set_ylabel(f"{name} (%)", fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, which="major", alpha=0.3)
    if measured:
        fig.legend(loc="outside right upper", fontsize=TICK_SIZE, frameon=False)
    return fig
