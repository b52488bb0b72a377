"""Progress bars: drawn on a terminal only, never into a pipe or a log, never with --quiet or
--json."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import SUBPROCESS_ENV, piddm_command
from piddm.pdes import get_pde
from piddm.progress import show_progress
from piddm.tasks import LatentOptConfig, make_mask, optimise_latents


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_show_progress_needs_a_terminal_and_no_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not show_progress()
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert show_progress() and not show_progress(quiet=True)


def test_the_latent_optimisation_draws_its_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pde = get_pde("poisson", 16)
    truth = torch.from_numpy(pde.generate(0)[None]).double()
    mask = make_mask(pde, "inverse", 0.1, torch.Generator().manual_seed(0))
    config = LatentOptConfig(steps=3, ensemble=2, candidates=0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    optimise_latents(lambda eps: eps, pde, truth, mask, config, progress=show_progress())
    assert "latent optimisation" in terminal.getvalue() and "3/3" in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    optimise_latents(lambda eps: eps, pde, truth, mask, config, progress=show_progress(True))
    assert quiet.getvalue() == ""


def test_data_generation_into_a_pipe_draws_no_bar(tmp_path: Path) -> None:
    proc = subprocess.run(
        piddm_command("data", "generate", "darcy", "-s", "16", "--n", "3", "--out",
                      str(tmp_path / "d.h5")),
        capture_output=True,
        text=True,
        env=SUBPROCESS_ENV,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "sample/s" not in proc.stderr and "%|" not in proc.stderr
