"""Student objectives for the one training loop (:func:`piddm.training.loop.fit`).

* :class:`PIDDMObjective` (docs/method.md, "PIDDM student"): per pair ``(eps, x0)``,
  ``|G(eps) - x0|^2 + lambda_train Rn(G(eps))`` with ``G(eps) = D_student(smax eps; smax)``,
  the squared error averaged over ``(C, S, S)`` in normalised space and ``Rn`` the PDE's
  physics term of the de-normalised output (``residual_norm``: the paper's normalised mean
  squared residual, or the preconditioned one; with ``residual_grad =
  "solution"``, every channel but the solution enters ``Rn`` detached); plus, per batch,
  ``std_weight * mean_{c,i,j} (std_b G(eps)_{cij} - std_b x0_{cij})^2``, the spread term:
  ``std_b`` is the standard deviation over the (global, all-rank) batch at each node. The
  pair regression alone shrinks the student's samples towards their mean wherever the
  teacher's map is too sharp to fit (two-phase interfaces); the spread term restores the
  teacher's pointwise spread. Its minimiser is still ``G = Phi_teacher``.
* :class:`PIDObjective` (docs/method.md, "PID student"): data-free; with ``z = smax eps``, a
  Karras grid ``t_0 = smax > ... > t_{N-1} = smin``, ``i ~ U{0..N-1}``, ``t = t_i``,
  ``t' = t_{i+1}`` (``t_{i-1}`` at the end),
  ``Delta = (x(z, t) - x(z, t')) / (t - t')`` and
  ``L = |x(z, t) - t Delta - stopgrad[D_teacher(x(z, t); t)]|^2`` (plus, optionally,
  ``lambda_train Rn(x(z, smin))``, with ``residual_grad`` as for PIDDM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import nn

from piddm.diffusion import karras_sigmas
from piddm.diffusion.schedules import RHO, SIGMA_MAX, SIGMA_MIN
from piddm.diffusion.utils import append_dims
from piddm.distill.pairs import PairBank
from piddm.pdes import PDE
from piddm.training.objectives import BatchRandom


def residual_term(
    pde: PDE, x: torch.Tensor, residual_grad: str = "all", residual_norm: str = "plain"
) -> torch.Tensor:
    """``Rn`` of normalised fields ``x`` ``(B, C, S, S)``: ``(B,)``, the PDE's
    :meth:`~piddm.pdes.PDE.physics_term` of kind ``residual_norm``. With ``residual_grad =
    "solution"`` its gradient reaches ``pde.solution_channel`` only (same value)."""
    if residual_grad == "solution":
        x = solution_only(pde, x)
    return pde.physics_term(pde.normalisation.denormalise(x), residual_norm)


def solution_only(pde: PDE, x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, C, S, S)`` with every channel but ``pde.solution_channel`` detached."""
    keep = torch.zeros(x.shape[1], dtype=torch.bool, device=x.device)
    keep[pde.solution_channel] = True
    return torch.where(keep.view(1, -1, 1, 1), x, x.detach())


def batch_std(x: torch.Tensor) -> torch.Tensor:
    """Standard deviation over the batch at each node, ``(b, C, S, S) -> (C, S, S)``
    (denominator ``n - 1``). Under DDP the batch is the global one: the sums go through
    autograd-aware all-reduces, so value and gradient match the one-process batch."""
    distributed = dist.is_available() and dist.is_initialized()

    def total(t: torch.Tensor) -> torch.Tensor:
        return dist_fn.all_reduce(t) if distributed else t

    n = total(torch.tensor(float(len(x)), device=x.device, dtype=x.dtype))
    mean = total(x.sum(dim=0)) / n
    variance = total((x - mean).square().sum(dim=0)) / (n - 1)
    return variance.clamp_min(1e-12).sqrt()  # clamped: sqrt has an infinite slope at 0


def check_residual_grad(residual_grad: str) -> None:
    """Raise ``ValueError`` unless ``residual_grad`` is ``all`` or ``solution``."""
    if residual_grad not in ("all", "solution"):
        raise ValueError(f"residual_grad must be 'all' or 'solution', got {residual_grad!r}")


@dataclass(frozen=True)
class PhysicsTerm:
    """The students' physics term: ``Rn(x)`` of :func:`residual_term` (kind ``residual_norm``,
    gradient reaching the channels ``residual_grad`` selects), weighted by ``lambda_train``
    in the loss (``0``: off)."""

    pde: PDE
    lambda_train: float
    residual_grad: str = "all"
    residual_norm: str = "plain"

    def __post_init__(self) -> None:
        check_residual_grad(self.residual_grad)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``Rn(x)`` ``(B,)`` of normalised fields ``x`` ``(B, C, S, S)`` (unweighted)."""
        return residual_term(self.pde, x, self.residual_grad, self.residual_norm)


class PIDDMObjective:
    """Pair regression plus the physics term; the batch holds ``[eps, x0]`` ``(b, 2C, S, S)``."""

    def __init__(
        self,
        pde: PDE,
        bank: PairBank,
        lambda_train: float,
        sigma_max: float,
        residual_grad: str = "all",
        std_weight: float = 0.0,
        residual_norm: str = "plain",
    ) -> None:
        self.physics = PhysicsTerm(pde, float(lambda_train), residual_grad, residual_norm)
        self.pde, self.bank = pde, bank
        self.sigma_max = float(sigma_max)
        self.std_weight = float(std_weight)
        self.calls = 0

    def loss(
        self, model: nn.Module, batch: torch.Tensor, rng: BatchRandom
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.bank.sync_to_step(self.calls)  # periodic refresh of a fraction of the pairs
        self.calls += 1
        channels = self.pde.num_channels
        eps, x0 = batch[:, :channels], batch[:, channels:]
        out = model(
            self.sigma_max * eps, torch.full((len(eps),), self.sigma_max, device=eps.device)
        )
        mse = (out - x0).square().flatten(1).mean(dim=1)
        residual = self.physics(out)
        weight = self.physics.lambda_train
        per_sample = mse + weight * residual if weight > 0 else mse
        stats = {"loss_pairs": mse.detach().mean(), "residual": residual.detach().mean()}
        loss = per_sample.mean()
        if self.std_weight > 0:
            spread = (batch_std(out) - batch_std(x0)).square().mean()
            loss = loss + self.std_weight * spread
            stats["spread"] = spread.detach()
        return loss, stats

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = int(state["calls"])
        # The batch of the next step is drawn before loss() runs: restore the bank it saw.
        self.bank.sync_to_step(max(self.calls - 1, 0))


class PIDObjective:
    """PID trajectory loss (data-free); the batch only fixes the batch size and device."""

    def __init__(
        self,
        pde: PDE,
        teacher: nn.Module,
        lambda_train: float,
        grid_points: int = 250,
        sigma_min: float = SIGMA_MIN,
        sigma_max: float = SIGMA_MAX,
        rho: float = RHO,
        residual_grad: str = "all",
        residual_norm: str = "plain",
    ) -> None:
        self.physics = PhysicsTerm(pde, float(lambda_train), residual_grad, residual_norm)
        self.teacher = teacher
        self.grid = karras_sigmas(grid_points - 1, sigma_min, sigma_max, rho)[:-1].float()
        self.shape = (pde.num_channels, pde.resolution, pde.resolution)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def loss(
        self, model: nn.Module, batch: torch.Tensor, rng: BatchRandom
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        like = torch.empty((), dtype=torch.float32, device=batch.device)
        z = self.sigma_max * rng.randn(self.shape, like)
        n = len(self.grid)
        i = (rng.rand((), like) * n).long().clamp_(max=n - 1).cpu()
        grid = self.grid
        t = grid[i]
        t_next = torch.where(i < n - 1, grid[(i + 1).clamp(max=n - 1)], grid[(i - 1).clamp(min=0)])
        t, t_next = t.to(batch.device), t_next.to(batch.device)
        # One forward pass for x(z, t), x(z, t') (and x(z, smin)): DDP sees a single call.
        zs = [z, z]
        ts = [t, t_next]
        weight = self.physics.lambda_train
        if weight > 0:
            zs.append(z)
            ts.append(torch.full_like(t, self.sigma_min))
        out = model(torch.cat(zs), torch.cat(ts)).chunk(len(zs))
        x_t, x_next = out[0], out[1]
        delta = (x_t - x_next) / append_dims(t - t_next, z.ndim)
        with torch.no_grad():
            target = self.teacher(x_t.detach(), t)
        trajectory = (x_t - append_dims(t, z.ndim) * delta - target).square().flatten(1).mean(1)
        stats = {"loss_trajectory": trajectory.detach().mean()}
        per_sample = trajectory
        if weight > 0:
            residual = self.physics(out[2])
            per_sample = trajectory + weight * residual
            stats["residual"] = residual.detach().mean()
        return per_sample.mean(), stats
