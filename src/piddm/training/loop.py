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
from torch.nn.parallel import DistributedDataParallel
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
    ``finish(samples_normalised, run_dir)``: optional, writes them and returns extra result
    entries (e.g. their PDE residual).
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
    try:  # here, not at the top: TensorBoard is an optional dependency
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
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


class TrainingRun:
    """One call of :func:`fit`, split into the steps it performs.

    :meth:`begin` (a fresh start or :meth:`resume` from a checkpoint, DDP wrapping),
    :meth:`train_step` (one optimisation step, module doc 1-4), :meth:`log_stats` (the rank
    means of the stats since the last log step), :meth:`checkpoint`, :meth:`finish` (final EMA
    weights and :meth:`write_samples`); :meth:`run` drives them for ``cfg.train.steps``
    steps. Wall-clock ``seconds`` count the training steps only: ``timer`` is where the
    current interval began, ``interval`` the time since the last log step, ``timed`` the
    steps in it.
    """

    def __init__(
        self,
        cfg: Config,
        spec: TrainSpec,
        run_dir: Path,
        info: DistInfo,
        device: torch.device,
        progress: bool = True,
    ) -> None:
        self.cfg, self.spec, self.run_dir, self.info, self.device = cfg, spec, run_dir, info, device
        self.progress = progress
        self.log = RunLog(run_dir, enabled=info.is_main)
        self.ckpt_dir = run_dir / CHECKPOINT_DIR
        self.model = spec.model.to(device)
        self.total = cfg.train.steps
        self.global_batch = cfg.optim.batch_size
        self.rank_slice = info.batch_slice(self.global_batch)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.params)
        o = cfg.optim
        self.optimizer = torch.optim.Adam(self.params, lr=o.lr, betas=o.betas, eps=o.eps)
        self.ema = EMA(self.model, o.ema_decay, o.ema_rampup)
        self.ddp_model: nn.Module = self.model
        self.sampler = EpochSampler(len(spec.data), self.global_batch, cfg.train.seed)
        self.start, self.seconds = 0, 0.0
        self.sums: dict[str, torch.Tensor] = {}  # running sums of the stats since the last log
        self.count = 0
        self.last_good: Path | None = None  # the newest checkpoint on disk
        self.last_loss: float | None = None
        self.timer, self.interval, self.timed = 0.0, 0.0, 0
        self.bar: Any = None  # run(): the tqdm progress bar
        self.writer: Any = None  # run(): TensorBoard's SummaryWriter, if installed

    # ------------------------------------------------------------------------- set-up
    def begin(self, resume_record: dict[str, Any] | None) -> None:
        """Start afresh or :meth:`resume`, log the set-up, wrap the model for DDP."""
        if resume_record is not None:
            self.resume(resume_record)
        else:
            self.log.log(
                f"start: {self.spec.kind}, {self.n_params:,} parameters, "
                f"{len(self.spec.data)} training samples"
            )
        self.log.log(
            f"device {self.device}, world size {self.info.world_size}, global batch "
            f"{self.global_batch}, steps {self.start} -> {self.total}"
        )
        if self.info.enabled:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=device_ids)

    def resume(self, record: dict[str, Any]) -> None:
        """Restore the state of the checkpoint named by ``record`` (``latest.json``): weights,
        EMA, optimizer, objective, step, seconds, RNG and the stats not yet logged."""
        try:
            state = load_training_state(self.ckpt_dir / record["state"])
        except PiddmError as exc:
            raise PiddmError(
                f"cannot resume {self.run_dir}: {exc}; start over with --overwrite"
            ) from None
        objective = self.spec.objective
        try:
            self.model.load_state_dict(state["model"])
            self.ema.module.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
            if hasattr(objective, "load_state_dict") and "objective" in state:
                objective.load_state_dict(state["objective"])  # type: ignore[attr-defined]
        except (RuntimeError, KeyError, ValueError) as exc:
            first = str(exc).splitlines()[0]
            raise PiddmError(f"cannot resume from {record['state']}: {first}") from None
        self.start, self.seconds = int(state["step"]), float(state["seconds"])
        if self.start > self.total:
            raise PiddmError(
                f"cannot resume: the run is already at step {self.start}, beyond train.steps "
                f"{self.total}"
            )
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        if "pending_stats" in state:
            self.count = int(state["pending_stats"]["count"])
            pending = state["pending_stats"]["sums"]
            self.sums = {k: v.to(self.device) for k, v in pending.items()}
        self.last_good = self.ckpt_dir / record["weights"]
        self.log.truncate_stats(self.start)
        self.log.log(f"resumed from step {self.start} ({record['state']})")

    # ------------------------------------------------------------------------- one step
    def train_step(self, step: int, stop: StopSignals) -> tuple[float, int]:
        """Update ``step`` (0-based; module doc 1-4) and add its stats to the running sums.

        Returns ``(lr, signum)``: the step's learning rate and the largest signal number any
        rank has received (0: none). Raises :class:`PiddmError` before the Adam step if any
        rank's loss or gradient norm is not finite.
        """
        cfg, info = self.cfg, self.info
        lr = learning_rate(cfg, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        indices = self.sampler.indices(step)[self.rank_slice]
        batch = self.spec.data[indices].to(self.device, non_blocking=True)
        step_gen = seeded_generator(cfg.train.seed, STREAM_STEP, step)
        rng = BatchRandom(step_gen, self.global_batch, self.rank_slice)
        local_seed = cfg.train.seed * info.world_size + info.rank
        torch.manual_seed(derive_seed(local_seed, STREAM_LOCAL, step))

        self.optimizer.zero_grad(set_to_none=True)
        loss, stats = self.spec.objective.loss(self.ddp_model, batch, rng)
        loss.backward()
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        finite, signum = _step_flags(loss, grad_norm, stop.signum, info)
        if not finite:
            raise self.diverged(step + 1, "the loss or its gradient")
        self.optimizer.step()
        self.ema.update(self.model, step)

        for key, value in {"loss": loss.detach(), "grad_norm": grad_norm, **stats}.items():
            self.sums[key] = self.sums.get(key, 0.0) + value.detach().double()
        self.count, self.timed = self.count + 1, self.timed + 1
        return lr, signum

    def diverged(self, step: int, what: str) -> PiddmError:
        """The error that stops a run whose ``what`` turned non-finite at ``step``."""
        if self.last_good is None:
            saved = "no checkpoint was written"
        else:
            saved = f"the last good checkpoint is {self.last_good}"
        return PiddmError(
            f"training diverged at step {step}: {what} is not finite (NaN or Inf); {saved}; "
            f"lower optim.lr or set optim.grad_clip"
        )

    # ------------------------------------------------------------------------- logging
    def log_stats(self, done: int, lr: float) -> None:
        """Log the rank means of the stats of the steps since the last log step (``stats.jsonl``,
        ``log.txt``, progress bar, TensorBoard) and start a new interval."""
        keys = sorted(self.sums)
        sums = torch.stack([self.sums[k] for k in keys])
        means = all_reduce_mean(sums / self.count, self.info)
        now = time.perf_counter()
        self.interval += now - self.timer
        self.seconds, self.timer = self.seconds + self.interval, now
        record = {k: float(v) for k, v in zip(keys, means.tolist(), strict=True)}
        record.update(
            step=done,
            lr=lr,
            samples_per_s=self.global_batch * self.timed / max(self.interval, 1e-9),
            seconds=round(self.seconds, 3),
        )
        self.last_loss = record["loss"]
        self.log.stats(record)
        self.log.log(
            f"step {done}/{self.total} loss {self.last_loss:.5g} lr {lr:.3g} "
            f"{record['samples_per_s']:.1f} samples/s"
        )
        self.bar.set_postfix(
            loss=f"{self.last_loss:.4g}", samples_s=f"{record['samples_per_s']:.0f}"
        )
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(key, value, done)
        self.sums, self.count, self.timed, self.interval = {}, 0, 0, 0.0

    # ------------------------------------------------------------------------- checkpoints
    def checkpoint(self, step: int, seconds: float) -> None:
        """Save the EMA weights and the training state after ``step`` steps (``seconds`` of
        training so far), with the rank means of the stats not yet logged; keep only the
        newest training state. Refuses non-finite weights (:meth:`diverged`)."""
        info, ckpt_dir = self.info, self.ckpt_dir
        if not (_all_finite(self.model) and _all_finite(self.ema.module)):  # same on every rank
            raise self.diverged(step, "a weight")
        keys = sorted(self.sums)  # the same on every rank
        pending = {}
        if keys:  # the rank mean, so that every rank can resume from it
            means = all_reduce_mean(torch.stack([self.sums[k] for k in keys]), info)
            pending = dict(zip(keys, means.cpu(), strict=True))
        barrier(info)
        weights_name, state_name = step_weights_name(step), step_state_name(step)
        if info.is_main:
            save_weights(ckpt_dir / weights_name, self.ema.module, self.spec.metadata(step))
            state = {
                "step": step,
                "seconds": seconds,
                "model": self.model.state_dict(),
                "ema": self.ema.module.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng": _rng_state(self.device),
                "world_size": info.world_size,
                "pending_stats": {"count": self.count, "sums": pending},
            }
            if hasattr(self.spec.objective, "state_dict"):
                state["objective"] = self.spec.objective.state_dict()  # type: ignore[attr-defined]
            save_training_state(ckpt_dir / state_name, state)
            write_latest(ckpt_dir, step, weights_name, state_name)
            for old in ckpt_dir.glob("state-*.pt"):  # keep only the newest training state
                if old.name != state_name:
                    old.unlink(missing_ok=True)
            self.log.log(f"checkpoint {weights_name} (step {step})")
        self.last_good = ckpt_dir / weights_name
        barrier(info)

    # ------------------------------------------------------------------------- the run
    def run(self, resume_record: dict[str, Any] | None = None) -> TrainResult:
        """:meth:`begin`, the steps from ``start`` to ``train.steps`` with their logs and
        checkpoints, then :meth:`finish`. A signal stops the run after the current step with
        a checkpoint and :class:`TrainingInterrupted`."""
        cfg, total = self.cfg, self.total
        self.begin(resume_record)
        self.writer = _tensorboard(self.run_dir, self.info.is_main)
        self.bar = tqdm(
            total=total,
            initial=self.start,
            desc=f"train {self.run_dir.name}",
            unit="step",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,  # sparse updates in log files
            disable=not (self.progress and self.info.is_main),
        )
        self.timer = time.perf_counter()
        self.model.train()
        stop = StopSignals().install()
        try:
            for step in range(self.start, total):
                lr, signum = self.train_step(step, stop)
                self.bar.update(1)
                done = step + 1
                if done % cfg.train.log_every == 0 or done == total:
                    self.log_stats(done, lr)
                if done % cfg.train.checkpoint_every == 0 or done == total or signum:
                    self.interval += time.perf_counter() - self.timer
                    self.checkpoint(done, self.seconds + self.interval)
                    self.timer = time.perf_counter()
                if signum:
                    interrupted = TrainingInterrupted(signum, done)
                    self.log.log(str(interrupted))
                    raise interrupted
        finally:
            stop.restore()
            self.bar.close()
            if self.writer is not None:
                self.writer.close()
        return self.finish()

    # ------------------------------------------------------------------------- finish
    def finish(self) -> TrainResult:
        """Save the final EMA weights and :meth:`write_samples` (rank 0); the run's result."""
        final = self.ckpt_dir / FINAL_NAME
        extra: dict[str, Any] = {}
        if self.info.is_main:
            save_weights(final, self.ema.module, self.spec.metadata(self.total))
            self.log.log(
                f"final weights {final} (step {self.total}, {self.seconds:.1f} s of training)"
            )
            extra = self.write_samples()
        barrier(self.info)
        return TrainResult(
            run_dir=self.run_dir,
            checkpoint=final,
            steps=self.total,
            seconds=self.seconds,
            # A resumed run that was already finished logs no stats: its last logged loss.
            loss=self.last_loss if self.last_loss is not None else self.log.last_loss(),
            parameters=self.n_params,
            resumed_from=self.start,
            extra=extra,
        )

    def write_samples(self) -> dict[str, Any]:
        """``train.num_samples`` samples of the final EMA model (seeded by ``(seed,
        STREAM_SAMPLES)``) handed to ``spec.finish``; its result entries (``{}`` if none)."""
        spec, n = self.spec, self.cfg.train.num_samples
        if spec.sample is None or n <= 0:
            return {}
        generator = seeded_generator(self.cfg.train.seed, STREAM_SAMPLES)
        with torch.no_grad():
            samples = spec.sample(self.ema.module, n, generator)
        if spec.finish is None:
            return {}
        extra = spec.finish(samples, self.run_dir)
        self.log.log(f"samples: {extra}")
        return extra


def fit(
    cfg: Config,
    spec: TrainSpec,
    run_dir: Path,
    info: DistInfo,
    device: torch.device,
    resume_record: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``spec.model`` with ``spec.objective`` for ``cfg.train.steps`` steps (module doc);
    ``resume_record`` (``latest.json`` of ``run_dir``) continues a run from its checkpoint."""
    return TrainingRun(cfg, spec, run_dir, info, device, progress).run(resume_record)


__all__ = [
    "EMA",
    "EpochSampler",
    "TrainResult",
    "TrainSpec",
    "TrainingRun",
    "derive_seed",
    "ema_decay_at",
    "fit",
    "learning_rate",
    "seeded_generator",
]
