"""Downstream tasks with a one-step generator (docs/method.md, "Tasks").

One algorithm, latent optimisation (:func:`optimise_latents`), serves forward problems,
inverse problems, reconstruction from sparse observations (masks from :func:`make_mask`) and
PIDDM-ref refinement (:func:`refine`, the same loop with an empty mask). Observation files
(``piddm solve --obs``) are read and validated by :func:`read_observations`. The classical
references of the tasks, PDE-constrained MAP (:func:`map_estimate`) and the Bayes floor
(:func:`floor_estimate`), are in :mod:`piddm.tasks.classical`.
"""

from __future__ import annotations

from piddm.diffusion.one_step import OneStep, one_step
from piddm.tasks.classical import (
    MapConfig,
    floor_estimate,
    floor_supports,
    map_estimate,
    map_supports,
)
from piddm.tasks.figures import plot_task_instance
from piddm.tasks.latent import (
    OPTIMIZERS,
    LatentGenerator,
    LatentOptConfig,
    LatentOptResult,
    optimise_latents,
    refine,
    solve_task,
)
from piddm.tasks.masks import (
    MASK_MODES,
    TASKS,
    Task,
    burgers_sensor_count,
    check_fraction,
    check_task,
    make_mask,
    task_masks,
    validate_mask,
    validate_observations,
)
from piddm.tasks.observations import (
    OBS_SUFFIXES,
    Observations,
    check_against_truth,
    check_observation_path,
    check_observations,
    read_observations,
)

__all__ = [
    "MASK_MODES",
    "OBS_SUFFIXES",
    "OPTIMIZERS",
    "TASKS",
    "LatentGenerator",
    "LatentOptConfig",
    "LatentOptResult",
    "MapConfig",
    "Observations",
    "OneStep",
    "Task",
    "burgers_sensor_count",
    "check_against_truth",
    "check_fraction",
    "check_observation_path",
    "check_observations",
    "check_task",
    "floor_estimate",
    "floor_supports",
    "make_mask",
    "map_estimate",
    "map_supports",
    "one_step",
    "optimise_latents",
    "plot_task_instance",
    "read_observations",
    "refine",
    "solve_task",
    "task_masks",
    "validate_mask",
    "validate_observations",
]
