"""Shared fixtures: tiny solver-backed datasets and tiny training configs (16^2, CPU)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from piddm.data import write_dataset
from piddm.pdes import get_pde

#: Environment for subprocesses running ``python -m piddm``: one thread each (2-core machine).
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny nets run fastest (and robustly on a busy 2-core machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_dataset(path: Path, name: str = "darcy", resolution: int = 16, n: int = 32) -> Path:
    """Solve ``n`` samples of ``name`` with the package's solver and write them to ``path``."""
    pde = get_pde(name, resolution)
    fields = np.stack([pde.generate(seed) for seed in range(n)])
    return write_dataset(path, fields, np.arange(n), pde)


@pytest.fixture(scope="session")
def darcy16_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 Darcy samples at 16^2 (read-only: copy before modifying)."""
    return make_dataset(tmp_path_factory.mktemp("data") / "darcy16.h5")


def tiny_config_dict(data_path: Path | str, runs_root: Path | str, **train: object) -> dict:
    """A teacher config that trains a ~20 k-parameter U-Net on 16^2 Darcy in a few seconds."""
    return {
        "kind": "teacher",
        "pde": {"name": "darcy", "resolution": 16},
        "data": {"path": str(data_path)},
        "net": {
            "base_channels": 8,
            "channel_mult": [1, 2],
            "num_res_blocks": 1,
            "attention": False,
            "num_groups": 4,
        },
        "diffusion": {"steps": 4},
        "optim": {"lr": 2e-3, "warmup_steps": 5, "batch_size": 8, "ema_decay": 0.9},
        "train": {
            "steps": 20,
            "log_every": 5,
            "checkpoint_every": 10,
            "seed": 3,
            "desc": "tiny",
            "runs_root": str(runs_root),
            "num_samples": 0,
            **train,
        },
    }


def tiny_start_config_dict(
    data_path: Path | str,
    runs_root: Path | str,
    n_holdout: int,
    *,
    optim: dict | None = None,
    start: dict | None = None,
    **train: object,
) -> dict:
    """A ``kind: start`` config on 16^2 Darcy with :func:`tiny_config_dict`'s U-Net sizes,
    optimiser (or ``optim``) and training settings (with ``train`` overrides); ``start``: its
    ``start`` section (default: the config's)."""
    teacher = tiny_config_dict(data_path, runs_root, **{"desc": "start", **train})
    cfg = {
        "kind": "start",
        "pde": teacher["pde"],
        "data": {"path": str(data_path), "n_holdout": n_holdout},
        "net": teacher["net"],
        "optim": optim or teacher["optim"],
        "train": teacher["train"],
    }
    return cfg if start is None else {**cfg, "start": start}


@pytest.fixture
def tiny_config(tmp_path: Path, darcy16_dataset: Path):
    """Factory: ``tiny_config(**train_overrides) -> path of a YAML config`` in ``tmp_path``."""

    def make(name: str = "tiny.yaml", **train: object) -> Path:
        path = tmp_path / name
        path.write_text(
            yaml.safe_dump(tiny_config_dict(darcy16_dataset, tmp_path / "runs", **train))
        )
        return path

    return make


def piddm_command(*args: str) -> list[str]:
    """argv that runs the ``piddm`` CLI of this interpreter."""
    return [sys.executable, "-m", "piddm", *args]


def torchrun_command(*args: str, ranks: int = 2) -> list[str]:
    """argv that runs the ``piddm`` CLI of this interpreter as a ``ranks``-process ``torchrun``
    job on this machine."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*launcher, "--nproc_per_node", str(ranks), "-m", "piddm", *args]
