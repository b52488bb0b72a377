"""The run entry shared by ``piddm train`` and ``piddm distill``: process group, device, run
directory, then the one loop.

:class:`RunOptions` are how a run is run (run directory, resume / overwrite, device, progress):
the keywords that :func:`piddm.training.train` and :func:`piddm.distill.run.distill` both take.
:func:`run_session` joins the ``torchrun`` job described by the environment (a no-op for a
single process) and resolves the device; on exit it destroys the process group only if it
created it, so a caller that set up its own group (a notebook, a test, a larger DDP program)
keeps it. Within the session, :meth:`RunSession.open_run_dir` prepares the run directory on
rank 0 and :meth:`RunSession.fit` hands the run to :func:`~piddm.training.loop.fit`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from piddm.config import Config
from piddm.training.distributed import (
    DistInfo,
    init_distributed,
    resolve_device,
    run_on_main,
    shutdown_distributed,
)
from piddm.training.loop import TrainResult, TrainSpec, fit
from piddm.training.rundir import prepare_run_dir


@dataclass(frozen=True)
class RunOptions:
    """How a run is run: its ``run_dir`` (``None``: the next numbered directory), whether to
    ``resume`` it from its latest checkpoint or ``overwrite`` its checkpoints, the ``device``
    (``auto``, ``cpu``, ``cuda``) and whether rank 0 shows ``progress``."""

    run_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    progress: bool = True


@dataclass(frozen=True)
class RunSession:
    """This process's place in the job (``info``), its ``device`` and the run's ``options``."""

    info: DistInfo
    device: torch.device
    options: RunOptions

    @property
    def show_progress(self) -> bool:
        """Whether this process draws progress bars (rank 0 only, if ``options.progress``)."""
        return self.options.progress and self.info.is_main

    def open_run_dir(self, cfg: Config) -> tuple[Path, dict[str, Any] | None]:
        """``(run directory, resume record)`` of :func:`~piddm.training.rundir.prepare_run_dir`
        run on rank 0 (a new numbered directory if ``options.run_dir`` is ``None``), on every
        rank."""
        o = self.options
        path = None if o.run_dir is None else Path(o.run_dir)
        return run_on_main(lambda: prepare_run_dir(cfg, path, o.resume, o.overwrite), self.info)

    def fit(
        self, cfg: Config, spec: TrainSpec, run_dir: Path, resume_record: dict[str, Any] | None
    ) -> TrainResult:
        """:func:`~piddm.training.loop.fit` on this session's ranks and device."""
        progress = self.options.progress
        return fit(cfg, spec, run_dir, self.info, self.device, resume_record, progress)


@contextmanager
def run_session(options: RunOptions) -> Iterator[RunSession]:
    """Join the ``torchrun`` job (if any) and resolve ``options.device`` (``auto``, ``cpu``,
    ``cuda``); on exit, destroy the process group if, and only if, this call created it."""
    owned = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(options.device)
    try:
        yield RunSession(info, resolve_device(options.device, info), options)
    finally:
        if owned:  # leave a caller's process group alone
            shutdown_distributed()


__all__ = ["RunOptions", "RunSession", "run_session"]
