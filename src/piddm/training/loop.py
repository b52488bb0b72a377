"""The one training loop, generic over an :class:`~piddm.training.objectives.Objective`.

Per step ``t`` (0-based; a checkpoint "at step k" holds the state after ``k`` steps):

1. ``lr = learning_rate(cfg, t)``: linear warm-up, then constant or cosine decay;
2. the global batch: ``batch_size`` indices from per-epoch permutations of the training set,
   each permutation seeded by ``(seed, epoch)``; this rank keeps its contiguous slice;
3. the step's randomness: a generator seeded by ``(seed, step)`` shared by all ranks
   (:class:`BatchRandom`), and torch's global RNG seeded by ``(seed * world_size + rank,
   step)`` for rank-local randomness such as dropout;
4. Adam step on the rank-mean loss (DDP averages gradients: the global batch mean), gradient
   norm clipped to ``grad_clip``; EMA ``ema <- d ema + (1 - d) weights`` with ``d = ema_decay``
   (or ramped up, :func:`ema_decay_at`).

Before each Adam step every rank checks that its loss and the (global) gradient norm are
finite; the ranks agree on the outcome with one small all-reduce, which also carries the
SIGTERM / SIGINT flag (:mod:`piddm.training.signals`). A non-finite step stops the run with
:class:`PiddmError` before it touches the weights, so no checkpoint holds poisoned weights
(checkpoints also refuse non-finite weights). A signal stops the run after the current step
with a checkpoint at that step and :class:`TrainingInterrupted`.

Because every random draw is a function of ``(seed, step)`` and all state is checkpointed
(including the running sums of the stats not yet logged), a killed or interrupted and resumed
run ends with bit-identical weights and stats on CPU, and the loss curve does not depend on
the number of ranks beyond floating-point reduction order.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from piddm.checkpoint import (
    CHECKPOINT_DIR,
    FINAL_NAME,
    load_training_state,
    save_training_state,
    save_weights,
    step_state_name,
    step_weights_name,
    write_latest,
)
from piddm.config import Config
from piddm.errors import PiddmError, TrainingInterrupted
from piddm.training.distributed import DistInfo, all_reduce_max, all_reduce_mean, barrier
from piddm.training.objectives import BatchRandom, Objective
from piddm.training.rundir import RunLog
from piddm.training.signals import StopSignals

# Independent random streams derived from the seed.
STREAM_INIT, STREAM_EPOCH, STREAM_STEP, STREAM_LOCAL, STREAM_SAMPLES = range(5)


def derive_seed(*values: int) -> int:
    """A 63-bit seed that is a fixed function of the integers ``values``."""
    state = np.random.SeedSequence([int(v) for v in values]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


def seeded_generator(*values: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded by :func:`derive_seed` of ``values``."""
    return torch.Generator().manual_seed(derive_seed(*values))


class EpochSampler:
    """Global batch indices for step ``t``: positions ``[tB, (t+1)B)`` of the concatenation of
    per-epoch random permutations of ``range(n)`` (each seeded by ``(seed, epoch)``)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self._cache: dict[int, torch.Tensor] = {}

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.pop(min(self._cache))
            gen = seeded_generator(self.seed, STREAM_EPOCH, epoch)
            self._cache[epoch] = torch.randperm(self.n, generator=gen)
        return self._cache[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """``(batch_size,)`` int64 indices into the training set."""
        parts, position, need = [], step * self.batch_size, self.batch_size
        while need:
            epoch, offset = divmod(position, self.n)
            take = min(self.n - offset, need)
            parts.append(self._permutation(epoch)[offset : offset + take])
            position, need = position + take, need - take
        return torch.cat(parts)


def ema_decay_at(decay: float, rampup: float | None, step: int) -> float:
    """EMA decay of update ``step`` (0-based): ``decay``, or with ``rampup`` the decay of
    half-life ``min(H, rampup * (step + 1))`` steps, ``H = ln(1/2) / ln(decay)`` (EDM)."""
    if rampup is None or decay <= 0.0:
        return decay
    halflife = min(math.log(0.5) / math.log(decay), rampup * (step + 1))
    return 0.5 ** (1.0 / halflife)


class EMA:
    """Exponential moving average of a module's parameters (buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float, rampup: float | None = None) -> None:
        self.decay = float(decay)
        self.rampup = rampup
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int = 0) -> None:
        """``ema <- d ema + (1 - d) weights`` with ``d = ema_decay_at(decay, rampup, step)``."""
        weight = 1.0 - ema_decay_at(self.decay, self.rampup, step)
        for ema_param, param in zip(self.module.parameters(), model.parameters(), strict=True):
            ema_param.lerp_(param.detach(), weight)
        for ema_buf, buf in zip(self.module.buffers(), model.buffers(), strict=True):
            ema_buf.copy_(buf)


@dataclass
class TrainSpec:
    """What a kind of run hands to :func:`fit`.

    ``data``: the training set ``(N, C, S, S)`` (normalised, on CPU), indexed by the sampler;
    ``metadata(step)``: the checkpoint metadata (:mod:`piddm.checkpoint`); ``sample(model, n,
    generator)``: optional, ``n`` normalised samples of the final EMA model for ``samples/``;
    ``finish(model, samples_normalised, run_dir)``: optional, writes them and returns extra
    result entries (e.g. their PDE residual).
    """

    kind: str
    model: nn.Module
    objective: Objective
    data: torch.Tensor
    metadata: Callable[[int], dict[str, Any]]
    sample: Callable[[nn.Module, int, torch.Generator], torch.Tensor] | None = None
    finish: Callable[[torch.Tensor, Path], dict[str, Any]] | None = None


@dataclass
class TrainResult:
    """What a run produced (the ``--json`` output of ``piddm train``)."""

    run_dir: Path
    checkpoint: Path
    steps: int
    seconds: float
    loss: float | None
    parameters: int
    resumed_from: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "checkpoint": str(self.checkpoint),
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "loss": self.loss,
            "parameters": self.parameters,
            "resumed_from": self.resumed_from,
            **self.extra,
        }


def learning_rate(cfg: Config, step: int) -> float:
    """Rate of update ``step`` (0-based): linear warm-up over ``warmup_steps`` to ``optim.lr``,
    then constant, or cosine decay to ``lr_min_ratio * lr`` at ``train.steps``."""
    o = cfg.optim
    if step < o.warmup_steps:
        return o.lr * (step + 1) / o.warmup_steps
    if o.lr_schedule == "constant":
        return o.lr
    span = max(1, cfg.train.steps - o.warmup_steps)
    progress = min(1.0, (step - o.warmup_steps) / span)
    lr_min = o.lr_min_ratio * o.lr
    return lr_min + (o.lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _tensorboard(run_dir: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoard is optional
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _step_flags(
    loss: torch.Tensor, grad_norm: torch.Tensor, signum: int, info: DistInfo
) -> tuple[bool, int]:
    """``(finite, signum)`` agreed by all ranks: whether every rank's loss and gradient norm
    are finite, and the largest signal number any rank has received (0: none)."""
    finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm.detach())
    flags = torch.stack(
        [(~finite).to(torch.float32), torch.tensor(float(signum), device=finite.device)]
    )
    bad, sig = all_reduce_max(flags, info).tolist()
    return not bad, int(sig)


def _all_finite(module: nn.Module) -> bool:
    """Whether every floating-point weight and buffer of ``module`` is finite."""
    return all(
        bool(torch.isfinite(t).all()) for t in module.state_dict().values() if t.is_floating_point()
    )


def fit(
    cfg: Config,
    spec: TrainSpec,
    run_dir: Path,
    info: DistInfo,
    device: torch.device,
    resume_record: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``spec.model`` with ``spec.objective`` for ``cfg.train.steps`` steps (module doc)."""
    log = RunLog(run_dir, enabled=info.is_main)
    ckpt_dir = run_dir / CHECKPOINT_DIR
    model = spec.model.to(device)
    total = cfg.train.steps
    global_batch = cfg.optim.batch_size
    rank_slice = info.batch_slice(global_batch)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    optimizer = torch.optim.Adam(params, lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps)
    ema = EMA(model, cfg.optim.ema_decay, cfg.optim.ema_rampup)
    start, seconds = 0, 0.0
    sums: dict[str, torch.Tensor] = {}  # running sums of the stats since the last log step
    count = 0
    last_good: Path | None = None  # the newest checkpoint on disk

    if resume_record is not None:
        try:
            state = load_training_state(ckpt_dir / resume_record["state"])
        except PiddmError as exc:
            raise PiddmError(
                f"cannot resume {run_dir}: {exc}; start over with --overwrite"
            ) from None
        try:
            model.load_state_dict(state["model"])
            ema.module.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            if hasattr(spec.objective, "load_state_dict") and "objective" in state:
                spec.objective.load_state_dict(state["objective"])  # type: ignore[attr-defined]
        except (RuntimeError, KeyError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise PiddmError(f"cannot resume from {resume_record['state']}: {first}") from None
        start, seconds = int(state["step"]), float(state["seconds"])
        if start > total:
            raise PiddmError(
                f"cannot resume: the run is already at step {start}, beyond train.steps {total}"
            )
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        if "pending_stats" in state:
            count = int(state["pending_stats"]["count"])
            sums = {k: v.to(device) for k, v in state["pending_stats"]["sums"].items()}
        last_good = ckpt_dir / resume_record["weights"]
        log.truncate_stats(start)
        log.log(f"resumed from step {start} ({resume_record['state']})")
    else:
        log.log(f"start: {spec.kind}, {n_params:,} parameters, {len(spec.data)} training samples")
    log.log(
        f"device {device}, world size {info.world_size}, global batch {global_batch}, "
        f"steps {start} -> {total}"
    )

    ddp_model: nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def diverged(step: int, what: str) -> PiddmError:
        if last_good is None:
            saved = "no checkpoint was written"
        else:
            saved = f"the last good checkpoint is {last_good}"
        return PiddmError(
            f"training diverged at step {step}: {what} is not finite (NaN or Inf); {saved}; "
            f"lower optim.lr or set optim.grad_clip"
        )

    def checkpoint(step: int, seconds_so_far: float) -> None:
        nonlocal last_good
        if not (_all_finite(model) and _all_finite(ema.module)):  # same on every rank
            raise diverged(step, "a weight")
        keys = sorted(sums)  # the same on every rank
        pending = {}
        if keys:  # the rank mean, so that every rank can resume from it
            means = all_reduce_mean(torch.stack([sums[k] for k in keys]), info)
            pending = dict(zip(keys, means.cpu(), strict=True))
        barrier(info)
        weights_name, state_name = step_weights_name(step), step_state_name(step)
        if info.is_main:
            save_weights(ckpt_dir / weights_name, ema.module, spec.metadata(step))
            state = {
                "step": step,
                "seconds": seconds_so_far,
                "model": model.state_dict(),
                "ema": ema.module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": _rng_state(device),
                "world_size": info.world_size,
                "pending_stats": {"count": count, "sums": pending},
            }
            if hasattr(spec.objective, "state_dict"):
                state["objective"] = spec.objective.state_dict()  # type: ignore[attr-defined]
            save_training_state(ckpt_dir / state_name, state)
            write_latest(ckpt_dir, step, weights_name, state_name)
            for old in ckpt_dir.glob("state-*.pt"):  # keep only the newest training state
                if old.name != state_name:
                    old.unlink(missing_ok=True)
            log.log(f"checkpoint {weights_name} (step {step})")
        last_good = ckpt_dir / weights_name
        barrier(info)

    sampler = EpochSampler(len(spec.data), global_batch, cfg.train.seed)
    writer = _tensorboard(run_dir, info.is_main)
    bar = tqdm(
        total=total,
        initial=start,
        desc=f"train {run_dir.name}",
        unit="step",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 30.0,  # sparse updates in log files
        disable=not (progress and info.is_main),
    )
    last_loss, interval, timed = None, 0.0, 0
    timer = time.perf_counter()
    model.train()
    stop = StopSignals().install()
    try:
        for step in range(start, total):
            lr = learning_rate(cfg, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            indices = sampler.indices(step)[rank_slice]
            batch = spec.data[indices].to(device, non_blocking=True)
            rng = BatchRandom(
                seeded_generator(cfg.train.seed, STREAM_STEP, step), global_batch, rank_slice
            )
            local_seed = cfg.train.seed * info.world_size + info.rank
            torch.manual_seed(derive_seed(local_seed, STREAM_LOCAL, step))

            optimizer.zero_grad(set_to_none=True)
            loss, stats = spec.objective.loss(ddp_model, batch, rng)
            loss.backward()
            clip = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
            finite, signum = _step_flags(loss, grad_norm, stop.signum, info)
            if not finite:
                raise diverged(step + 1, "the loss or its gradient")
            optimizer.step()
            ema.update(model, step)

            for key, value in {"loss": loss.detach(), "grad_norm": grad_norm, **stats}.items():
                sums[key] = sums.get(key, 0.0) + value.detach().double()
            count, timed = count + 1, timed + 1
            bar.update(1)
            done = step + 1

            if done % cfg.train.log_every == 0 or done == total:
                keys = sorted(sums)
                means = all_reduce_mean(torch.stack([sums[k] for k in keys]) / count, info)
                now = time.perf_counter()
                interval += now - timer
                seconds, timer = seconds + interval, now
                record = {k: float(v) for k, v in zip(keys, means.tolist(), strict=True)}
                record.update(
                    step=done,
                    lr=lr,
                    samples_per_s=global_batch * timed / max(interval, 1e-9),
                    seconds=round(seconds, 3),
                )
                last_loss = record["loss"]
                log.stats(record)
                log.log(
                    f"step {done}/{total} loss {last_loss:.5g} lr {lr:.3g} "
                    f"{record['samples_per_s']:.1f} samples/s"
                )
                bar.set_postfix(loss=f"{last_loss:.4g}", samples_s=f"{record['samples_per_s']:.0f}")
                if writer is not None:
                    for key, value in record.items():
                        if key != "step":
                            writer.add_scalar(key, value, done)
                sums, count, timed, interval = {}, 0, 0, 0.0

            if done % cfg.train.checkpoint_every == 0 or done == total or signum:
                interval += time.perf_counter() - timer
                checkpoint(done, seconds + interval)
                timer = time.perf_counter()
            if signum:
                interrupted = TrainingInterrupted(signum, done)
                log.log(str(interrupted))
                raise interrupted
    finally:
        stop.restore()
        bar.close()
        if writer is not None:
            writer.close()

    final = ckpt_dir / FINAL_NAME
    extra: dict[str, Any] = {}
    if info.is_main:
        save_weights(final, ema.module, spec.metadata(total))
        log.log(f"final weights {final} (step {total}, {seconds:.1f} s of training)")
        if spec.sample is not None and cfg.train.num_samples > 0:
            generator = seeded_generator(cfg.train.seed, STREAM_SAMPLES)
            with torch.no_grad():
                samples = spec.sample(ema.module, cfg.train.num_samples, generator)
            if spec.finish is not None:
                extra = spec.finish(samples, run_dir)
                log.log(f"samples: {extra}")
    barrier(info)
    return TrainResult(
        run_dir=run_dir,
        checkpoint=final,
        steps=total,
        seconds=seconds,
        loss=last_loss if last_loss is not None else log.last_loss(),  # resumed finished run
        parameters=n_params,
        resumed_from=start,
        extra=extra,
    )


__all__ = [
    "EMA",
    "EpochSampler",
    "TrainResult",
    "TrainSpec",
    "derive_seed",
    "ema_decay_at",
    "fit",
    "learning_rate",
    "seeded_generator",
]
