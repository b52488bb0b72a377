"""Generation from a checkpoint: seeded latents, batched sampling, samples written as a dataset.

:func:`make_sampler` picks a checkpoint's sampler by its ``kind``: the Heun solver of the
probability-flow ODE for teachers (:func:`teacher_sampler`), one network evaluation for the
one-step students (:func:`student_sampler`, optionally after PIDDM-ref's latent refinement).

Sample ``i`` of a run with seed ``K`` starts from the latent ``eps_i ~ N(0, I)`` drawn from a
generator seeded with :func:`piddm.data.generate.sample_seed` ``(K, i)`` alone, so a sample
does not depend on the batch size or on which other samples are drawn with it (up to float32
round-off of batched convolutions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from piddm.atomic import atomic_output, check_output_path
from piddm.config import DiffusionConfig, DistillConfig
from piddm.data.generate import sample_seed
from piddm.data.io import DatasetWriter, dataset_attrs, pde_from_attrs
from piddm.diffusion import count_nfe, karras_sigmas, sample_heun
from piddm.diffusion.one_step import one_step_generator
from piddm.errors import PiddmError
from piddm.pdes import PDE
from piddm.tasks.latent import REFINE_CONFIG, LatentGenerator, LatentOptConfig, refine_counted

#: ``fn(latents (B, C, S, S)) -> normalised fields (B, C, S, S)``, plus its NFE per sample.
BatchSampler = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SampleRun:
    """Result of :func:`generate_samples`: physical fields ``(N, C, S, S)`` and cost."""

    fields: np.ndarray
    seeds: np.ndarray
    nfe: float
    seconds: float

    @property
    def seconds_per_sample(self) -> float:
        return self.seconds / max(len(self.fields), 1)


def latents(
    seeds: Sequence[int], shape: tuple[int, ...], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard-normal latents ``(N, *shape)`` float32, row ``i`` from its own ``seeds[i]``."""
    rows = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(rows).to(device)


def pde_of(metadata: dict[str, Any]) -> PDE:
    """The PDE a checkpoint was trained for, from its metadata."""
    return pde_from_attrs(metadata.get("pde", {}), "checkpoint")


def teacher_sampler(
    denoiser: nn.Module, metadata: dict[str, Any], steps: int | None = None
) -> tuple[BatchSampler, int]:
    """Deterministic Heun sampling of the probability-flow ODE; returns ``(fn, nfe)``."""
    diffusion = metadata.get("diffusion", {})
    steps = int(steps or diffusion.get("steps", DiffusionConfig.steps))
    if steps < 1:
        raise PiddmError(f"--steps must be >= 1, got {steps}")
    sigmas = karras_sigmas(
        steps,
        float(diffusion.get("sigma_min", DiffusionConfig.sigma_min)),
        float(diffusion.get("sigma_max", DiffusionConfig.sigma_max)),
        float(diffusion.get("rho", DiffusionConfig.rho)),
    )

    def run(eps: torch.Tensor) -> torch.Tensor:
        grid = sigmas.to(device=eps.device, dtype=eps.dtype)
        with torch.no_grad():
            return sample_heun(denoiser, eps * grid[0], grid)

    return run, int(count_nfe(steps))


def generate_samples(
    sampler: BatchSampler,
    nfe: int,
    shape: tuple[int, int, int],
    n: int,
    seed: int,
    denormalise: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> SampleRun:
    """Draw ``n`` samples in batches; returns physical fields and the measured wall time."""
    if n <= 0:
        raise PiddmError(f"--n must be positive, got {n}")
    if batch_size <= 0:
        raise PiddmError(f"--batch-size must be positive, got {batch_size}")
    out = np.empty((n, *shape), dtype=np.float32)  # first: an impossible n fails at once
    seeds = np.array([sample_seed(seed, i) for i in range(n)], dtype=np.int64)
    start = time.perf_counter()
    with tqdm(total=n, unit="sample", desc="sampling", disable=not progress) as bar:
        for begin in range(0, n, batch_size):
            block = seeds[begin : begin + batch_size]
            x = sampler(latents(block, shape, device))
            out[begin : begin + len(block)] = denormalise(x.detach().float()).cpu().numpy()
            bar.update(len(block))
    return SampleRun(out, seeds, measured_nfe(sampler, nfe), time.perf_counter() - start)


def write_samples(
    path: str | Path,
    run: SampleRun,
    pde: PDE,
    generator: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write samples as a piddm dataset (same format as solver data) atomically."""
    out = check_output_path(path, overwrite)
    with atomic_output(out) as tmp:
        writer = DatasetWriter(tmp, len(run.fields), pde, dataset_attrs(pde, generator))
        try:
            writer.append(run.fields, run.seeds)
        finally:
            writer.close()
    return out


def residual_norm_of(metadata: dict[str, Any]) -> str:
    """The physics term a student checkpoint was trained with (``distill.residual_norm``;
    checkpoints from before the setting existed: its default, the plain residual)."""
    return str((metadata.get("distill") or {}).get("residual_norm", DistillConfig.residual_norm))


class StudentSampler:
    """A student's sampler: ``G(eps)``, or ``G(refine(eps))`` with ``refine > 0`` latent
    refinement steps (PIDDM-ref; docs/method.md, "Refinement").

    ``nfe``: network passes per sample, measured over the calls so far (1 without refinement;
    with it the descent's forward and backward passes, its final evaluation of the objective
    and the output's: L-BFGS's line search makes that count vary). Before the first call it
    is the least the settings cost: ``2 steps + 2`` with Adam, ``4 steps + 2`` with L-BFGS.
    """

    def __init__(self, generator: LatentGenerator, pde: PDE, config: LatentOptConfig) -> None:
        self.generator, self.pde, self.config = generator, pde, config
        self.passes, self.samples = 0.0, 0

    def __call__(self, eps: torch.Tensor) -> torch.Tensor:
        if self.config.steps:
            eps, passes = refine_counted(self.generator, self.pde, eps, self.config)
            self.passes += passes * eps.shape[0]
        self.samples += eps.shape[0]
        with torch.no_grad():
            return self.generator(eps)

    @property
    def nfe(self) -> float:
        if self.samples == 0:
            if self.config.steps == 0:
                return 1.0
            per_step = 4 if self.config.optimizer == "lbfgs" else 2
            return 2.0 + per_step * self.config.steps
        return 1.0 + self.passes / self.samples


def measured_nfe(sampler: BatchSampler, nfe: float) -> float:
    """A sampler's own measured cost per sample if it keeps one (:class:`StudentSampler`),
    else ``nfe`` (a fixed count); an ``int`` when it is a whole number (reports print 1, not
    1.0)."""
    value = float(sampler.nfe if isinstance(sampler, StudentSampler) else nfe)
    return int(value) if value.is_integer() else value


def student_sampler(
    model: nn.Module, metadata: dict[str, Any], pde: PDE, steps: int | None = None, refine: int = 0
) -> tuple[BatchSampler, float]:
    """``(sampler, nfe)`` of a student: a :class:`StudentSampler` (``refine`` latent steps on
    the residual the student was trained with) and its cost before any call (read
    :func:`measured_nfe` after sampling)."""
    if steps not in (None, 1):
        raise PiddmError("--steps applies to diffusion teachers; students sample in one step")
    generator = one_step_generator(model, metadata)
    # PIDDM-ref descends the physics term the student was trained with.
    config = replace(REFINE_CONFIG, steps=refine, residual_norm=residual_norm_of(metadata))
    sampler = StudentSampler(generator, pde, config)
    return sampler, sampler.nfe


#: Samplers of student kinds:
#: ``builder(model, metadata, pde, steps=..., refine=...) -> (BatchSampler, nfe)``.
STUDENT_SAMPLERS: dict[str, Callable[..., tuple[BatchSampler, int]]] = {
    "piddm": student_sampler,
    "pid": student_sampler,
}

TEACHER_KINDS = ("teacher", "pidm")


def make_sampler(
    model: nn.Module,
    metadata: dict[str, Any],
    pde: PDE,
    steps: int | None = None,
    refine: int = 0,
) -> tuple[BatchSampler, int]:
    """The sampler of a checkpoint, by its ``kind``; returns ``(fn, nfe per sample)``."""
    kind = metadata.get("kind", "teacher")
    if refine < 0:
        raise PiddmError(f"--refine must be >= 0, got {refine}")
    if kind in TEACHER_KINDS:
        if refine:
            raise PiddmError("--refine applies to one-step students, not to a diffusion teacher")
        return teacher_sampler(model, metadata, steps)
    if kind not in STUDENT_SAMPLERS:
        raise PiddmError(f"checkpoint kind '{kind}' cannot be sampled")
    return STUDENT_SAMPLERS[kind](model, metadata, pde, steps=steps, refine=refine)


def sample_checkpoint(
    model: nn.Module,
    metadata: dict[str, Any],
    n: int,
    seed: int,
    *,
    steps: int | None = None,
    refine: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> SampleRun:
    """``n`` samples (physical units) of a loaded checkpoint with its own sampler
    (:func:`make_sampler`), drawn as :func:`generate_samples` does."""
    pde = pde_of(metadata)
    sampler, nfe = make_sampler(model, metadata, pde, steps=steps, refine=refine)
    shape = (pde.num_channels, pde.resolution, pde.resolution)
    return generate_samples(
        sampler,
        nfe,
        shape,
        n,
        seed,
        pde.normalisation.denormalise,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
