"""Figures a person can read: field panels with shared colour limits, residual maps centred at 0."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures are files, never windows

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import SymLogNorm  # noqa: E402

from piddm.atomic import atomic_output, check_output_path  # noqa: E402
from piddm.pdes import PDE  # noqa: E402


def _imshow(ax: plt.Axes, image: np.ndarray, title: str, **kwargs: object) -> None:
    handle = ax.imshow(image, origin="lower", **kwargs)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    plt.colorbar(handle, ax=ax, fraction=0.046, pad=0.04)


def residual_norm(residual: np.ndarray) -> SymLogNorm:
    """Diverging, symmetric-log colour scale centred at 0 (residuals span many decades)."""
    peak = float(np.abs(residual).max()) or 1.0
    # linscale 1: the linear band around 0 gets a decade's height, so tick labels don't overlap
    return SymLogNorm(linthresh=max(peak * 1e-3, 1e-12), linscale=1.0, vmin=-peak, vmax=peak)


def save_figure(fig: plt.Figure, out: str | Path, overwrite: bool = True) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    path = check_output_path(out, overwrite)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_dataset_samples(
    fields: np.ndarray, pde: PDE, out: str | Path, title: str = "", overwrite: bool = True
) -> Path:
    """One row per sample: each channel and the residual map; ``fields`` is ``(K, C, S, S)``."""
    x = torch.from_numpy(np.asarray(fields, dtype=np.float64))
    residual = pde.residual(x).numpy()
    msr = pde.mean_squared_residual(x).numpy()
    rows, cols = len(fields), pde.num_channels + 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for r in range(rows):
        for c, name in enumerate(pde.channels):
            _imshow(axes[r, c], fields[r, c], f"{name} (sample {r})", cmap="viridis")
        _imshow(
            axes[r, -1],
            residual[r],
            f"residual, mean sq. {msr[r]:.1e}",
            cmap="RdBu_r",
            norm=residual_norm(residual[r]),
        )
    for ax in axes[:, 0]:
        ax.set_ylabel("x" if pde.name != "burgers" else "t", fontsize=8)
    fig.suptitle(title or f"{pde.name} {pde.resolution}x{pde.resolution}", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out, overwrite)


def plot_comparison(
    panels: Sequence[tuple[str, np.ndarray]],
    out: str | Path,
    title: str = "",
    observed: np.ndarray | None = None,
    overwrite: bool = True,
) -> Path:
    """Truth / estimate / |error| / std style panels for one field ``(S, S)``.

    The first two panels share colour limits; ``observed`` (``(S, S)`` bool) marks the
    observation points on every panel.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.0), squeeze=False)
    shared = np.concatenate([p[1].ravel() for p in panels[:2]])
    limits = {"vmin": float(shared.min()), "vmax": float(shared.max())}
    for k, (name, image) in enumerate(panels):
        kwargs: dict[str, object] = {"cmap": "viridis"}
        if k < 2:
            kwargs.update(limits)
        else:
            kwargs["cmap"] = "magma"
        _imshow(axes[0, k], image, name, **kwargs)
        if observed is not None and observed.any():
            rows, cols = np.nonzero(observed)
            axes[0, k].scatter(cols, rows, s=4, c="red", marker="x", linewidths=0.6)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out, overwrite)
