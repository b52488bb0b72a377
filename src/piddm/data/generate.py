"""Solver-backed dataset generation: deterministic per sample, parallel, sharded, atomic.

Sample ``i`` of a dataset made with seed ``K`` uses the seed ``sample_seed(K, i)`` alone, so a
file is identical whatever the number of worker processes, and the shards ``I/N`` of a job
array merge (:func:`merge_shards`) into exactly the file one machine would have written.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from piddm.atomic import atomic_output, check_output_path
from piddm.data.io import (
    DatasetWriter,
    dataset_attrs,
    open_dataset_file,
    pde_from_attrs,
    read_attrs,
    reading,
)
from piddm.errors import PiddmError
from piddm.pdes import PDE, get_pde
from piddm.progress import show_progress

#: Samples per task handed to a worker process: large enough to amortise IPC, small enough
#: to keep the progress bar and memory smooth.
CHUNK = 16


def sample_seed(seed: int, index: int) -> int:
    """The int64 seed of sample ``index`` of a dataset generated with ``seed``."""
    state = np.random.SeedSequence(int(seed), spawn_key=(int(index),)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` disjoint contiguous index ranges of ``n`` samples."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"I/N"`` with ``0 <= I < N``."""
        try:
            left, right = text.split("/")
            shard = cls(int(left), int(right))
        except ValueError:
            raise PiddmError(f"--shard must look like I/N (e.g. 0/4), got '{text}'") from None
        if shard.count < 1 or not 0 <= shard.index < shard.count:
            raise PiddmError(f"--shard {text}: need 0 <= I < N")
        return shard

    def range(self, n: int) -> range:
        """Indices of this shard among ``0 .. n-1``."""
        return range(self.index * n // self.count, (self.index + 1) * n // self.count)


def generator_settings(pde: PDE, n: int, seed: int) -> dict[str, Any]:
    """The generator description stored in the file (identical for shards and merged files)."""
    return {"n": int(n), "seed": int(seed), "seeding": "SeedSequence(seed, spawn_key=(index,))"}


# Worker state: one PDE object per process (its factorisation caches live there).
_WORKER_PDE: PDE | None = None


def _init_worker(name: str, resolution: int, params: dict[str, float]) -> None:
    global _WORKER_PDE
    torch.set_num_threads(1)
    _WORKER_PDE = get_pde(name, resolution, **params)


def _solve_chunk(seeds: Sequence[int]) -> np.ndarray:
    assert _WORKER_PDE is not None
    fields = np.stack([_WORKER_PDE.generate(s) for s in seeds])
    with np.errstate(over="ignore"):  # values beyond float32 become inf: refused by the caller
        return fields.astype(np.float32)


def _chunks(seeds: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(seeds), CHUNK):
        yield seeds[start : start + CHUNK]


def generate_dataset(
    pde: PDE,
    n: int,
    seed: int,
    out: str | Path,
    workers: int = 1,
    shard: Shard | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Solve ``n`` samples of ``pde`` (or the shard's part of them) into the HDF5 file ``out``.

    ``progress``: a progress bar on stderr, drawn only when stderr is a terminal. Raises
    :class:`PiddmError` for ``n <= 0``, ``workers < 1`` or an unusable output path; the file
    appears only when complete.
    """
    if int(n) <= 0:
        raise PiddmError(f"--n must be positive, got {n}")
    if int(workers) < 1:
        raise PiddmError(f"--workers must be >= 1, got {workers}")
    out_path = check_output_path(out, overwrite)
    indices = shard.range(n) if shard else range(n)
    if len(indices) == 0:
        raise PiddmError(f"shard {shard.index}/{shard.count} of n={n} is empty")  # type: ignore[union-attr]
    seeds = [sample_seed(seed, i) for i in indices]
    attrs = dataset_attrs(pde, generator_settings(pde, n, seed))
    if shard is not None:
        attrs.update(shard=f"{shard.index}/{shard.count}", index_start=indices.start)
    bar = tqdm(
        total=len(seeds),
        desc=f"{pde.name} {pde.resolution}^2",
        unit="sample",
        disable=not show_progress(quiet=not progress),
    )
    with atomic_output(out_path) as tmp:
        writer = DatasetWriter(tmp, len(seeds), pde, attrs)
        try:
            for block_seeds, block in zip(
                _chunks(seeds), _solve_blocks(pde, seeds, workers), strict=True
            ):
                if not np.isfinite(block).all():
                    raise PiddmError(
                        f"the {pde.name} solver produced NaN/Inf values (float32) with "
                        f"parameters {pde.params}; check the PDE parameters"
                    )
                writer.append(block, block_seeds)
                bar.update(len(block_seeds))
        finally:
            writer.close()
            bar.close()
    return out_path


def _solve_blocks(pde: PDE, seeds: list[int], workers: int) -> Iterator[np.ndarray]:
    """Solved blocks in order, computed in this process or in a pool of ``workers`` processes."""
    init_args = (pde.name, pde.resolution, dict(pde.params))
    if workers == 1:
        _init_worker(*init_args)
        yield from map(_solve_chunk, _chunks(seeds))
        return
    # "spawn": forking a process that has initialised torch's thread pools can deadlock.
    context = mp.get_context("spawn")
    env_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers: one BLAS thread each
    try:
        with context.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
            yield from pool.imap(_solve_chunk, _chunks(seeds))
    finally:
        if env_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env_threads


def merge_shards(paths: Sequence[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Join shard files into the file a single run would have produced.

    The shards must come from the same generator settings and together cover ``0 .. n-1``
    exactly once; they may be given in any order.
    """
    if not paths:
        raise PiddmError("no shard files given")
    out_path = check_output_path(out, overwrite)
    shards = []
    for path in paths:
        with open_dataset_file(path) as handle, reading(path):
            attrs = read_attrs(handle)
            count = int(handle["fields"].shape[0])
        if "shard" not in attrs:
            raise PiddmError(f"{path} is not a shard (no 'shard' attribute)")
        shards.append((int(attrs["index_start"]), count, Path(path), attrs))
    shards.sort(key=lambda item: item[0])
    first = shards[0][3]
    same_keys = ("pde", "resolution", "params", "generator")
    position = 0
    for start, count, path, attrs in shards:
        if any(attrs[k] != first[k] for k in same_keys):
            raise PiddmError(f"{path} was generated with other settings than {shards[0][2]}")
        if start != position:
            what = "overlaps" if start < position else "leaves a gap before"
            raise PiddmError(f"{path} {what} index {position}; shards must tile 0..n-1")
        position += count
    total = int(first["generator"]["n"])
    if position != total:
        raise PiddmError(f"the shards cover {position} of {total} samples; some are missing")
    pde = pde_from_attrs(first)
    attrs_out = dataset_attrs(pde, first["generator"])
    with atomic_output(out_path) as tmp:
        writer = DatasetWriter(tmp, total, pde, attrs_out)
        try:
            for _, count, path, _ in shards:
                with open_dataset_file(path) as handle:
                    for begin in range(0, count, CHUNK):
                        rows = slice(begin, min(begin + CHUNK, count))
                        with reading(path):
                            fields, seeds = handle["fields"][rows], handle["seeds"][rows]
                        writer.append(fields, seeds)
        finally:
            writer.close()
    return out_path
