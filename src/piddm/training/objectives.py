"""Training objectives: what one step minimises, behind one small protocol.

The training loop (:func:`piddm.training.loop.fit`) is generic over an :class:`Objective`::

    loss, stats = objective.loss(model, batch, rng)

``batch`` is this rank's slice ``(b, C, S, S)`` of the step's global batch and ``rng`` a
:class:`BatchRandom`: every random draw is made for the *global* batch from a generator
seeded by ``(seed, step)`` and then sliced, so a step's randomness depends neither on the
number of ranks nor on whether the run was interrupted and resumed.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

from piddm.diffusion import EDMLoss
from piddm.diffusion.utils import append_dims, randn
from piddm.pdes import PDE


class BatchRandom:
    """The randomness of one training step, drawn for the global batch and sliced per rank.

    ``generator`` is a CPU ``torch.Generator`` seeded by ``(seed, step)``, identical on every
    rank; draws are cast/moved to ``like``'s dtype and device.
    """

    def __init__(self, generator: torch.Generator, global_batch: int, rank_slice: slice) -> None:
        self.generator = generator
        self.global_batch = int(global_batch)
        self.rank_slice = rank_slice

    def randn(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """``N(0, 1)`` of shape ``(global_batch, *shape)``, this rank's rows: ``(b, *shape)``."""
        return randn((self.global_batch, *shape), self.generator, like)[self.rank_slice]

    def rand(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """``U[0, 1)`` of shape ``(global_batch, *shape)``, this rank's rows: ``(b, *shape)``."""
        out = torch.rand((self.global_batch, *shape), generator=self.generator, dtype=like.dtype)
        return out[self.rank_slice].to(like.device)


@runtime_checkable
class Objective(Protocol):
    """One training objective. ``stats`` holds detached 0-d tensors (batch means) to log.

    The returned loss is this rank's batch mean; with equal slices, DDP's gradient average
    equals the gradient of the global batch mean. Objectives with state that must survive a
    resume (e.g. a pair buffer) may add ``state_dict()`` / ``load_state_dict(state)``.
    """

    def loss(
        self, model: nn.Module, batch: torch.Tensor, rng: BatchRandom
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


class TeacherObjective:
    """EDM denoising loss (docs/method.md, "EDM teacher"), plus the optional PIDM residual term.

    Per sample: ``lambda(s) mean (D(y + s n; s) - y)^2 + w Rn(denorm(D(y + s n; s)))`` with
    ``ln s ~ N(P_mean, P_std^2)``, ``Rn`` the PDE's normalised mean squared residual of the
    de-normalised denoised field and ``w = residual_weight`` (0: plain EDM teacher).
    Draw order: ``ln s`` then ``n``, as in :meth:`piddm.diffusion.EDMLoss.denoise_noisy`
    (identical to ``EDMLoss`` on a single rank).
    """

    def __init__(self, edm: EDMLoss, pde: PDE | None = None, residual_weight: float = 0.0) -> None:
        if residual_weight > 0 and pde is None:
            raise ValueError("a residual term needs the PDE")
        self.edm = edm
        self.pde = pde
        self.residual_weight = float(residual_weight)

    def loss(
        self, model: nn.Module, batch: torch.Tensor, rng: BatchRandom
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = rng.randn((), batch)
        sigma = (self.edm.p_mean + self.edm.p_std * z).exp()
        noise = rng.randn(tuple(batch.shape[1:]), batch)
        denoised = model(batch + append_dims(sigma, batch.ndim) * noise, sigma)
        edm = self.edm.weight(sigma) * (denoised - batch).square().flatten(1).mean(dim=1)
        stats = {"loss_edm": edm.detach().mean()}
        per_sample = edm
        if self.residual_weight > 0:
            assert self.pde is not None
            residual = self.pde.normalised_residual(self.pde.normalisation.denormalise(denoised))
            per_sample = edm + self.residual_weight * residual
            stats["loss_residual"] = residual.detach().mean()
        return per_sample.mean(), stats
