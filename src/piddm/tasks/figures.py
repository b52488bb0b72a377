"""Figures of a task result: per channel, truth / estimate / |error| / ensemble std, in the
package's one figure style (:mod:`piddm.plotting`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from piddm.atomic import check_output_path
from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.plotting import (
    ERROR_CMAP,
    draw_field,
    label_axes,
    mark_observed,
    new_figure,
    save_figure,
)

#: One instance's field ``(C, S, S)``: a tensor (on any device) or an array.
Field = torch.Tensor | np.ndarray


def _as_array(name: str, value: Field, shape: tuple[int, ...]) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.shape != shape:
        raise PiddmError(f"{name} must have shape {shape}, got {array.shape}")
    return array


def plot_task_instance(
    pde: PDE,
    truth: Field | None,
    estimate: Field,
    std: Field,
    mask: Field,
    out: str | Path,
    title: str = "",
    overwrite: bool = True,
) -> Path:
    """One instance as a grid of panels: a row per channel, columns truth / estimate /
    |error| / std; every argument is ``(C, S, S)`` (physical units, bool ``mask``).

    Without a ``truth`` (``None``: observations from a file, no reference) the columns are
    estimate / std. Truth and estimate share colour limits per channel; error and std use
    their own sequential scale. Observed nodes are marked with red crosses on every panel of
    their channel. The PNG is written atomically; returns its path.
    """
    check_output_path(out, overwrite)  # fail before drawing
    return save_figure(task_figure(pde, truth, estimate, std, mask, title), out, overwrite)


def task_figure(
    pde: PDE,
    truth: Field | None,
    estimate: Field,
    std: Field,
    mask: Field,
    title: str = "",
) -> Figure:
    """The figure of :func:`plot_task_instance` (same arguments, no file)."""
    shape = (pde.num_channels, pde.resolution, pde.resolution)
    truth_a = None if truth is None else _as_array("truth", truth, shape).astype(np.float64)
    est_a = _as_array("estimate", estimate, shape).astype(np.float64)
    std_a = _as_array("std", std, shape).astype(np.float64)
    mask_a = _as_array("mask", mask, shape).astype(bool)

    columns = ("estimate", "std") if truth_a is None else ("truth", "estimate", "|error|", "std")
    rows, cols = pde.num_channels, len(columns)
    n_obs = int(mask_a.sum())
    fig, axes = new_figure(
        rows,
        cols,
        title or f"{pde.name} {pde.resolution}x{pde.resolution}, {n_obs} observed nodes",
        "red crosses: observed nodes; std: spread of the ensemble's estimates",
    )
    for c, name in enumerate(pde.channels):
        if truth_a is not None:
            shared = np.concatenate([truth_a[c].ravel(), est_a[c].ravel()])
            norm = float(np.linalg.norm(truth_a[c])) or 1.0
            rel = float(np.linalg.norm(est_a[c] - truth_a[c])) / norm
            panels = (truth_a[c], est_a[c], np.abs(est_a[c] - truth_a[c]), std_a[c])
            labels = (*columns[:2], f"{columns[2]} (rel. L2 {rel:.1%})", columns[3])
        else:
            shared = est_a[c].ravel()
            panels, labels = (est_a[c], std_a[c]), columns
        limits = {"vmin": float(shared.min()), "vmax": float(shared.max())}
        on_field_scale = 2 if truth_a is not None else 1  # truth / estimate: shared limits
        for k, (label, image) in enumerate(zip(labels, panels, strict=True)):
            if k < on_field_scale:
                draw_field(axes[c, k], image, f"{name}: {label}", **limits)
            else:
                draw_field(axes[c, k], image, f"{name}: {label}", cmap=ERROR_CMAP, vmin=0.0)
            mark_observed(axes[c, k], mask_a[c])
    label_axes(axes, pde)
    return fig
