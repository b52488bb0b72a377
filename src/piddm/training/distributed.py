"""DDP plumbing: process-group setup under ``torchrun``, device choice, rank-0 helpers.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; with ``WORLD_SIZE > 1`` the
process group is initialised with gloo on CPU and nccl on CUDA. Without them the run is a
single process and every helper here is a no-op.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from piddm.errors import PiddmError

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def batch_slice(self, global_batch: int) -> slice:
        """The rows of a global batch that this rank trains on (equal contiguous slices)."""
        if global_batch % self.world_size:
            raise PiddmError(
                f"config optim.batch_size: {global_batch} is not divisible by the "
                f"{self.world_size} ranks of this job"
            )
        size = global_batch // self.world_size
        return slice(self.rank * size, (self.rank + 1) * size)


def resolve_device(name: str, info: DistInfo) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; ranks use ``cuda:LOCAL_RANK``."""
    if name not in DEVICES:
        raise PiddmError(f"unknown device '{name}'; expected one of {', '.join(DEVICES)}")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise PiddmError("--device cuda was requested but CUDA is not available")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def init_distributed(device_name: str) -> DistInfo:
    """Join the ``torchrun`` job described by the environment (no-op for a single process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    info = DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)
    if world_size > 1 and not dist.is_initialized():
        use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(hours=2),  # rank 0 may generate the dataset first
        )
    return info


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every rank (e.g. a run directory chosen by rank 0)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise mean over ranks of a 1-D tensor."""
    if not info.enabled:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / info.world_size


def all_reduce_max(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise maximum over ranks of a 1-D tensor (e.g. flags that any rank may raise)."""
    if not info.enabled:
        return values
    out = values.clone()
    dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def run_on_main(fn: Any, info: DistInfo) -> Any:
    """Run ``fn()`` on rank 0 only and return its result on every rank.

    A :class:`PiddmError` on rank 0 is re-raised on every rank (so no rank waits forever in
    a collective for a rank that has already failed).
    """
    if not info.enabled:
        return fn()
    outcome: tuple[str, Any] = ("ok", None)
    if info.is_main:
        try:
            outcome = ("ok", fn())
        except PiddmError as exc:
            outcome = ("error", str(exc))
        except Exception as exc:
            outcome = ("crash", f"{type(exc).__name__}: {exc}")
            broadcast_object(outcome, info)
            raise
    outcome = broadcast_object(outcome, info)
    if outcome[0] == "error":
        raise PiddmError(outcome[1])
    if outcome[0] == "crash":
        raise RuntimeError(f"rank 0 failed: {outcome[1]}")
    return outcome[1]
