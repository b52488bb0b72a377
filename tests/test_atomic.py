"""Atomic output: all or nothing, with ordinary file permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from piddm.atomic import atomic_output, current_umask


def test_written_file_has_the_permissions_of_a_new_file(tmp_path: Path) -> None:
    target = tmp_path / "w.safetensors"
    old = os.umask(0o022)
    try:
        with atomic_output(target) as tmp:
            save_file({"w": torch.zeros(3)}, str(tmp))  # safetensors creates it 0o600
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert current_umask() == 0o022  # reading the umask left it as it was
    finally:
        os.umask(old)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
