"""The bench's observation masks, for the bench and for every script that scores its instances.

The masks of task ``task`` are drawn from ``torch.Generator().manual_seed(sample_seed(seed,
k))``, ``k`` the task's index in the fixed order :data:`piddm.tasks.masks.TASKS` (forward 0,
inverse 1, reconstruct 2) whatever ``tasks.run`` lists, so that running another set of tasks
leaves each task's masks unchanged; ``seed`` is the config's ``tasks.seed`` (0 in every shipped
config).
"""

from __future__ import annotations

import torch

from piddm.data.generate import sample_seed
from piddm.pdes import PDE
from piddm.tasks.masks import TASKS, check_task, task_masks


def task_mask_seed(task: str, seed: int = 0) -> int:
    """The seed of the generator of ``task``'s masks under ``tasks.seed = seed``."""
    return sample_seed(seed, TASKS.index(check_task(task)))


def bench_masks(
    pde: PDE,
    task: str,
    n: int,
    fraction: float = 0.03,
    seed: int = 0,
    mode: str = "random",
) -> torch.Tensor:
    """The bench's masks ``(n, C, S, S)`` (bool, CPU) of its first ``n`` instances of ``task``
    at ``tasks.obs_fraction = fraction``, ``tasks.seed = seed``, ``tasks.masks = mode``; the
    first ``m`` of them are the masks of ``m < n`` instances."""
    generator = torch.Generator().manual_seed(task_mask_seed(task, seed))
    return task_masks(pde, task, fraction, generator, n=n, mode=mode)
