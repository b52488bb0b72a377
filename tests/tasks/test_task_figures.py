"""Task figures: a readable PNG per instance, written atomically, for every registered PDE."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from piddm.errors import PiddmError
from piddm.pdes import available_pdes, get_pde
from piddm.tasks import LatentOptConfig, make_mask, optimise_latents, plot_task_instance

S = 16
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_result(name: str, task: str) -> tuple:
    """``(pde, truth, estimate, std, mask)`` for one instance, each ``(C, S, S)``."""
    pde = get_pde(name, S)
    gen = torch.Generator().manual_seed(0)
    truth = torch.from_numpy(pde.generate(0)).float()
    mask = make_mask(pde, task, 0.05, gen)[0]
    estimate = torch.where(mask, truth, truth + 0.1 * torch.randn(truth.shape, generator=gen))
    std = torch.where(mask, 0.0, torch.rand(truth.shape, generator=gen))
    return pde, truth, estimate, std, mask


@pytest.mark.parametrize("name", available_pdes())
def test_task_figure_is_written_atomically(tmp_path: Path, name: str) -> None:
    pde, truth, estimate, std, mask = fake_result(name, "inverse")
    out = plot_task_instance(pde, truth, estimate, std, mask, tmp_path / "task.png")
    assert out == tmp_path / "task.png"
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["task.png"]  # no temporary left over


def test_task_figure_from_an_optimisation_result(tmp_path: Path) -> None:
    pde = get_pde("poisson", S)
    truth = torch.from_numpy(pde.generate(1)).float().unsqueeze(0)
    mask = make_mask(pde, "reconstruct", 0.05, torch.Generator().manual_seed(1))

    def generator(eps: torch.Tensor) -> torch.Tensor:
        return 0.5 * eps

    config = LatentOptConfig(steps=2, ensemble=2, candidates=0)
    result = optimise_latents(generator, pde, truth, mask, config, rng=torch.Generator())
    out = plot_task_instance(
        pde, truth[0], result.estimate[0], result.std[0], mask[0], tmp_path / "r.png", "poisson"
    )
    assert out.stat().st_size > 1000


def test_task_figure_rejects_bad_shapes_and_existing_files(tmp_path: Path) -> None:
    pde, truth, estimate, std, mask = fake_result("darcy", "forward")
    with pytest.raises(PiddmError, match="shape"):
        plot_task_instance(pde, truth, estimate[:1], std, mask, tmp_path / "a.png")
    target = tmp_path / "b.png"
    target.write_bytes(b"old")
    with pytest.raises(PiddmError, match="exists"):
        plot_task_instance(pde, truth, estimate, std, mask, target, overwrite=False)
    assert target.read_bytes() == b"old"


def png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` in pixels from a PNG's IHDR chunk."""
    header = path.read_bytes()[16:24]
    return int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")


def test_task_figure_without_truth_has_estimate_and_std_columns_only(tmp_path: Path) -> None:
    pde, truth, estimate, std, mask = fake_result("darcy", "reconstruct")
    full = plot_task_instance(pde, truth, estimate, std, mask, tmp_path / "full.png")
    bare = plot_task_instance(pde, None, estimate, std, mask, tmp_path / "bare.png")
    (full_w, full_h), (bare_w, bare_h) = png_size(full), png_size(bare)
    assert bare.read_bytes()[:8] == PNG_MAGIC
    assert abs(bare_h - full_h) <= 10 and 0.4 * full_w < bare_w < 0.6 * full_w  # 2 of 4 columns
