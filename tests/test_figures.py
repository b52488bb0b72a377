"""Every kind of figure piddm writes is legible for every registered PDE.

Each figure is drawn with matplotlib's Agg renderer and its text measured in pixels: no two
tick labels overlap (those of the colour bars included), no panel title overlaps another
text, and no text reaches past the figure's edge. Each figure comes from the builder whose
figure the package's ``plot_*`` function saves, and is then written as a PNG (to
``tmp_path``) by the same :func:`piddm.plotting.save_figure`: the file is the figure checked.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from piddm.bench.figures import residual_maps_figure, task_comparison_figure
from piddm.pdes import PDE, available_pdes, get_pde
from piddm.plotting import dataset_figure, save_figure, settle_layout
from piddm.tasks.figures import task_figure
from piddm.training.teacher import samples_figure

S = 32
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def solver_fields(pde: PDE, n: int) -> np.ndarray:
    """``n`` solver samples ``(n, C, S, S)`` stored as a dataset stores them (float32)."""
    return np.stack([pde.generate(seed) for seed in range(n)]).astype(np.float32)


def generated_fields(pde: PDE, n: int) -> np.ndarray:
    """Solver samples with the grid-scale noise of a generated sample (residual ~ O(1))."""
    rng = np.random.default_rng(0)
    fields = solver_fields(pde, n).astype(np.float64)
    scale = np.abs(fields).max(axis=(2, 3), keepdims=True)
    return fields + 0.02 * scale * rng.standard_normal(fields.shape)


def task_instance(pde: PDE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(truth, estimate, std, mask)`` of one instance, each ``(C, S, S)``."""
    truth = solver_fields(pde, 1)[0].astype(np.float64)
    estimate = generated_fields(pde, 1)[0]
    rng = np.random.default_rng(1)
    mask = rng.random(truth.shape) < 0.03
    std = np.abs(estimate - truth) * rng.random(truth.shape)
    return truth, estimate, std, mask


def methods(pde: PDE) -> list[tuple[str, np.ndarray]]:
    """Three methods' samples or estimates for the bench figures, one of them diverged."""
    fields = generated_fields(pde, 3)
    fields[2] *= 40.0  # a method whose error saturates the shared scale
    return [("teacher", fields[0]), ("DiffusionPDE", fields[1]), ("PIDDM", fields[2])]


def draw_data_show(pde: PDE) -> Figure:
    return dataset_figure(solver_fields(pde, 3), pde)  # piddm data show


def draw_demo_samples(pde: PDE) -> Figure:
    title = f"{pde.name}: PIDDM student samples (1 network evaluation) and residual maps"
    return dataset_figure(generated_fields(pde, 3), pde, title)  # piddm demo


def draw_task(pde: PDE) -> Figure:
    truth, estimate, std, mask = task_instance(pde)
    title = f"{pde.name} inverse problem from 3 % observations (red crosses): ensemble of 4"
    return task_figure(pde, truth, estimate, std, mask, title)  # piddm solve, piddm demo


def draw_task_without_truth(pde: PDE) -> Figure:
    _, estimate, std, mask = task_instance(pde)
    return task_figure(pde, None, estimate, std, mask)  # piddm solve --obs FILE


def draw_bench_task(pde: PDE) -> Figure:
    truth, _, _, mask = task_instance(pde)
    return task_comparison_figure(pde, "inverse", truth, mask, methods(pde), obs_fraction=0.03)


def draw_bench_residuals(pde: PDE) -> Figure:
    return residual_maps_figure(pde, solver_fields(pde, 1)[0], methods(pde))


def draw_training_samples(pde: PDE) -> Figure:
    return samples_figure(generated_fields(pde, 4), pde)  # piddm train: figures/samples.png


FIGURES: dict[str, Callable[[PDE], Figure]] = {
    "data-show": draw_data_show,
    "demo-samples": draw_demo_samples,
    "task": draw_task,
    "task-without-truth": draw_task_without_truth,
    "bench-task": draw_bench_task,
    "bench-residuals": draw_bench_residuals,
    "training-samples": draw_training_samples,
}


def visible_texts(fig: Figure) -> list[Text]:
    """Every drawn, non-empty text of ``fig``: tick labels of ticks in view (:func:`tick_labels`)
    and every other visible text."""
    labels = tick_labels(fig)
    every_tick_label = {
        id(label)
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        for label in (tick.label1, tick.label2)
    }
    others = [
        t
        for t in fig.findobj(Text)
        if id(t) not in every_tick_label and t.get_visible() and t.get_text().strip()
    ]
    return labels + others


def tick_labels(fig: Figure) -> list[Text]:
    """The drawn tick labels of every axes of ``fig``, colour bars included: those of the
    ticks inside the axis' view (matplotlib keeps, but does not draw, the labels of ticks
    outside it)."""
    labels = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            locs = axis.get_majorticklocs()
            lo, hi = sorted(axis.get_view_interval())
            slack = 1e-9 * (hi - lo)
            for loc, tick in zip(locs, axis.get_major_ticks(len(locs)), strict=True):
                if lo - slack <= loc <= hi + slack:
                    labels += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    return [t for t in labels if t.get_text()]


def overlapping(boxes: list[tuple[str, Bbox]]) -> list[str]:
    """Pairs of named boxes that overlap by more than half a pixel."""
    shrunk = [(name, box.expanded(1.0, 1.0).padded(-0.5)) for name, box in boxes]
    return [
        f"{a!r} and {b!r}"
        for (a, box_a), (b, box_b) in combinations(shrunk, 2)
        if box_a.overlaps(box_b)
    ]


def legibility_problems(fig: Figure) -> list[str]:
    """What a reader would stumble on: overlapping tick labels, titles overlapping any text,
    text clipped by the figure's edge."""
    settle_layout(fig)  # as save_figure does before writing the PNG
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    problems = []
    ticks = [(t.get_text(), t.get_window_extent(renderer)) for t in tick_labels(fig)]
    problems += [f"tick labels {pair} overlap" for pair in overlapping(ticks)]
    texts = visible_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    titles = {id(ax.title) for ax in fig.axes} | {
        id(t) for t in texts if t.get_text() == fig.get_suptitle()
    }
    for (a, box_a), (b, box_b) in combinations(zip(texts, boxes, strict=True), 2):
        if (id(a) in titles or id(b) in titles) and box_a.padded(-0.5).overlaps(box_b.padded(-0.5)):
            problems.append(f"title {a.get_text()!r} overlaps {b.get_text()!r}")
    edge = fig.bbox.padded(0.5)
    for text, box in zip(texts, boxes, strict=True):
        if not (edge.contains(box.x0, box.y0) and edge.contains(box.x1, box.y1)):
            problems.append(f"{text.get_text()!r} is clipped by the figure's edge")
    return problems


@pytest.mark.parametrize("kind", FIGURES)
@pytest.mark.parametrize("name", available_pdes())
def test_figure_is_legible(name: str, kind: str, tmp_path: Path) -> None:
    pde = get_pde(name, S)
    fig = FIGURES[kind](pde)
    assert legibility_problems(fig) == []
    out = save_figure(fig, tmp_path / f"{name}-{kind}.png")  # the checked figure, as a PNG
    assert out.read_bytes()[:8] == PNG_MAGIC
    # the outer panels name their axes with the PDE's own labels
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert set(pde.axis_labels) <= labels


def test_the_check_finds_overlaps_and_clipping() -> None:
    fig = Figure(figsize=(2.0, 2.0))
    ax = fig.subplots()
    ax.set_xticks([0.0, 0.01], ["a long tick label", "another long one"])
    fig.suptitle("a title far too long to fit in a figure two inches wide")
    problems = legibility_problems(fig)
    assert any(p.startswith("tick labels") for p in problems)
    assert any("clipped" in p for p in problems)


def test_residual_maps_carry_their_reading_guide() -> None:
    pde = get_pde("darcy", S)
    fig = dataset_figure(solver_fields(pde, 2), pde)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("residual")]
    assert len(titles) == 2
    for title in titles:
        guide = title.splitlines()[1]
        assert guide.startswith("rel. res. ") and ", consistency " in guide
        relative = float(guide.split()[2].rstrip(","))
        consistency = float(guide.split()[-1])
        assert relative < 1e-4 and consistency < 1e-6  # solver data, rounded to float32
