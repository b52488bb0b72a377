"""Amortised start: a network that maps observations to a starting latent of a student.

Latent optimisation (:mod:`piddm.tasks.latent`) searches the latent space of a one-step
student ``G`` for a field that matches the observations; from random starts it needs many
steps and screened candidates. A start network ``E`` (:class:`piddm.nets.start.StartNet`),
trained once per student on training data, maps the observations ``y`` (normalised, zero
where unobserved) and their mask ``M`` to a latent ``eps0 = E(y, M)`` whose field
``G(eps0)`` is already near the instance, so a few optimiser steps finish the job
(docs/method.md, "Amortised start"). Its training objective, for a training field ``x``
(normalised) masked with a random task and observed fraction:

    L = mean_{c,i,j} (G(E(x * M, M)) - x)^2  +  latent_penalty * ((|E(x * M, M)|^2 - d) / d)^2,

``G`` frozen, ``d = C S S``. :func:`start_latents` applies a trained network to physical
observations, :func:`load_start` loads one for a PDE; :func:`start_metadata` is its
checkpoint metadata.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from piddm import __version__
from piddm.checkpoint import read_metadata
from piddm.config import Config, StartConfig, config_to_dict
from piddm.errors import PiddmError
from piddm.models import check_model_matches, load_any, pretrained_names, resolve_model
from piddm.nets import UNetConfig, build_unet
from piddm.nets.start import StartNet
from piddm.pdes import PDE
from piddm.tasks.masks import make_mask
from piddm.training.objectives import BatchRandom
from piddm.training.teacher import unet_config


def start_unet_config(cfg: Config, pde: PDE) -> UNetConfig:
    """The U-Net of a start network: ``cfg.net``'s sizes on ``2 C`` inputs and ``C`` outputs."""
    c = pde.num_channels
    return dataclasses.replace(unet_config(cfg, pde), in_channels=2 * c, out_channels=c)


def build_start(cfg: Config, pde: PDE) -> StartNet:
    """A fresh start network; its output layer is zero, so it starts at ``eps0 = 0``."""
    return StartNet(build_unet(start_unet_config(cfg, pde)))


def start_metadata(
    cfg: Config, pde: PDE, student: str, student_digest: str, step: int
) -> dict[str, Any]:
    """Checkpoint metadata of a start network: what :func:`piddm.checkpoint.load_model`
    needs, and the student (path and file digest) whose latents it predicts."""
    return {
        "format_version": 1,
        "kind": "start",
        "step": int(step),
        "ema": True,
        "net": dataclasses.asdict(start_unet_config(cfg, pde)),
        "precond": {"type": "start"},
        "pde": pde.describe(),
        "student": {"path": student, "sha256": student_digest},
        "config": config_to_dict(cfg),
        "piddm_version": __version__,
    }


def observed_input(
    pde: PDE, obs: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, M)`` of physical observations ``obs`` ``(N, C, S, S)`` (anything, even NaN, where
    unobserved) and a bool ``mask`` of the same shape: ``y`` normalised, zero where
    unobserved, and ``M`` as float, both in the dtype ``float32``."""
    zeros = torch.zeros((), dtype=torch.float64, device=obs.device)
    y = torch.where(mask, pde.normalisation.normalise(obs.to(torch.float64)), zeros)
    return y.float(), mask.float()


def trained_tasks(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The tasks a start network (its checkpoint ``metadata``) was trained on: ``start.tasks``
    of its config, :class:`piddm.config.StartConfig`'s default when the config lacks it."""
    return tuple(metadata.get("config", {}).get("start", {}).get("tasks") or StartConfig.tasks)


def check_start_task(metadata: dict[str, Any], task: str, name: str) -> None:
    """:class:`PiddmError` unless the start network ``name`` (its checkpoint ``metadata``) was
    trained on ``task`` (:func:`trained_tasks`)."""
    tasks = trained_tasks(metadata)
    if task not in tasks:
        raise PiddmError(
            f"start network {name} was trained on {', '.join(tasks)} problems, not {task}: "
            f"train one whose start.tasks include {task} (piddm amortise)"
        )


def shipped_starts(pde: PDE, task: str) -> list[str]:
    """The pretrained start networks shipped for ``task`` on ``pde``'s grid
    (docs/pretrained.md), the more accurate first: ``<pde>-<S>-start-<task>`` (trained on that
    task alone), then ``<pde>-<S>-start`` if it was trained on the task. Both predict latents
    of the shipped student ``<pde>-<S>-piddm``."""
    shipped = set(pretrained_names())
    names = (f"{pde.name}-{pde.resolution}-start-{task}", f"{pde.name}-{pde.resolution}-start")
    return [
        name
        for name in names
        if name in shipped and task in trained_tasks(read_metadata(resolve_model(name)))
    ]


def trained_fractions(metadata: dict[str, Any]) -> tuple[float, float]:
    """``(start.obs_fraction_min, start.obs_fraction_max)`` a start network (its checkpoint
    ``metadata``) was trained on (:class:`piddm.config.StartConfig`'s defaults if absent)."""
    start = metadata.get("config", {}).get("start", {})
    return (
        float(start.get("obs_fraction_min", StartConfig.obs_fraction_min)),
        float(start.get("obs_fraction_max", StartConfig.obs_fraction_max)),
    )


def auto_start(model: str, pde: PDE, task: str, fraction: float | None) -> str | None:
    """``piddm solve --start auto``'s choice: the first of :func:`shipped_starts` that was
    trained with the student ``model`` and on an observed-fraction range holding ``fraction``
    (random nodes observed); ``None`` if there is none (other models; other observation
    sources: ``fraction`` ``None``)."""
    if fraction is None:
        return None
    for name in shipped_starts(pde, task):
        metadata = read_metadata(resolve_model(name))
        student = resolve_model(str(metadata.get("student", {}).get("path")))
        low, high = trained_fractions(metadata)
        if resolve_model(model).resolve() == student.resolve() and low <= fraction <= high:
            return name
    return None


def load_start(
    name: str, pde: PDE, device: torch.device | str = "cpu", task: str | None = None
) -> nn.Module:
    """The start network ``name`` (checkpoint, run directory or pretrained name) for ``pde``;
    :class:`PiddmError` if it is another kind of model, was trained for another PDE or
    grid, or (given ``task``) was not trained on that task (``start.tasks``). (A start
    predicts latents of the student it was trained with, recorded in its metadata; the
    student's float16 export shares them.)"""
    model, metadata = load_any(name, device)
    if metadata.get("kind") != "start":
        raise PiddmError(
            f"--start must be a start network (piddm amortise), got a '{metadata.get('kind')}' "
            f"model: {name}"
        )
    check_model_matches(metadata, pde.name, pde.resolution)
    if task is not None:
        check_start_task(metadata, task, name)
    return model


@torch.no_grad()
def start_latents(
    start: nn.Module, pde: PDE, obs: torch.Tensor, mask: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """``eps0 = E(y, M)`` ``(N, C, S, S)`` of physical observations ``obs`` and bool ``mask``
    (both ``(N, C, S, S)``), in chunks of ``batch_size`` rows, on ``obs``'s device."""
    y, m = observed_input(pde, obs, mask)
    param = next(start.parameters())
    out = [
        start(y[i : i + batch_size].to(param), m[i : i + batch_size].to(param))
        for i in range(0, len(y), batch_size)
    ]
    return torch.cat(out).to(obs.device)


class StartObjective:
    """The amortised start's loss (module docstring) through the frozen generator ``G``.

    ``batch`` ``(b, C, S, S)`` holds normalised training fields; the task and the observed
    fraction (log-uniform in ``[fraction_min, fraction_max]``) are drawn once per step from
    the step's generator, the masks for the global batch, so that they do not depend on the
    number of ranks.
    """

    def __init__(
        self,
        pde: PDE,
        generator: nn.Module,
        tasks: tuple[str, ...],
        fraction_min: float,
        fraction_max: float,
        latent_penalty: float,
    ) -> None:
        self.pde = pde
        self.generator = generator
        self.tasks = tuple(tasks)
        self.log_range = (math.log(fraction_min), math.log(fraction_max))
        self.latent_penalty = float(latent_penalty)

    def loss(
        self, model: nn.Module, batch: torch.Tensor, rng: BatchRandom
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        g = rng.generator
        task = self.tasks[int(torch.randint(len(self.tasks), (), generator=g))]
        low, high = self.log_range
        fraction = math.exp(low + (high - low) * float(torch.rand((), generator=g)))
        masks = make_mask(self.pde, task, fraction, g, n=rng.global_batch)[rng.rank_slice]
        mask = masks.to(batch.device)
        eps = model(batch, mask)  # the network sees only the observed values
        fields = (self.generator(eps) - batch).square().flatten(1).mean(dim=1)
        d = eps[0].numel()
        norm = ((eps.flatten(1).square().sum(dim=1) - d) / d).square()
        per_sample = fields + self.latent_penalty * norm
        stats = {"loss_fields": fields.detach().mean(), "latent_norm": norm.detach().mean()}
        return per_sample.mean(), stats
