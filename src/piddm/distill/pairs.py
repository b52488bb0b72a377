"""Teacher pairs ``(eps, x0 = Phi_teacher(eps))`` for PIDDM (docs/method.md, "Teacher pairs").

``x0`` integrates the teacher's probability-flow ODE from ``x_T = smax eps`` with ``N_s``
deterministic Heun steps. Pair ``j`` of refresh round ``r`` has its latent drawn from a
generator seeded by ``(seed, r, j)`` alone, so a pair bank does not depend on the number of
ranks that computed it. Ranks compute disjoint slices and exchange them (``all_gather``).

The bank is cached as ``round-RRRRR.safetensors`` files (round 0 is the initial bank; round
``r`` the bank after the ``r``-th refresh; round 0 and the two newest rounds are kept) in the
run directory's ``pairs/`` or in a shared directory (``distill.pairs_cache``), next to
``key.json``, which identifies the teacher (hash of its weights file), the settings and the
seed. A resumed run, or another student of the same teacher (e.g. the ``lambda_train = 0``
ablation), reloads exactly the bank it needs; a cache made for another key is cleared, never
reused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from piddm.atomic import atomic_output
from piddm.config import DiffusionConfig
from piddm.diffusion import karras_sigmas, sample_heun
from piddm.errors import PiddmError
from piddm.training.distributed import DistInfo, barrier
from piddm.training.loop import derive_seed

STREAM_PAIRS = 11
STREAM_REFRESH_PICK = 12

#: A map applied to the teacher's endpoints ``(B, C, S, S)`` (normalised) before they become
#: pairs, e.g. replacing their solution by the solver's (``distill.pair_targets: solved``).
TargetMap = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PairSettings:
    """``size`` pairs (P), ``steps`` Heun steps (N_s); every ``refresh_every`` student steps
    (K; 0 = never) a ``refresh_fraction`` of the pairs is replaced by fresh ones."""

    size: int
    steps: int
    refresh_every: int
    refresh_fraction: float
    sigma_min: float = DiffusionConfig.sigma_min
    sigma_max: float = DiffusionConfig.sigma_max
    rho: float = DiffusionConfig.rho
    batch_size: int = 128


def pair_latents(
    seed: int, round_index: int, indices: list[int], shape: tuple[int, ...]
) -> torch.Tensor:
    """Latents ``(len(indices), *shape)`` float32; entry ``j`` depends on ``(seed, round, j)``."""
    rows = []
    for j in indices:
        gen = torch.Generator().manual_seed(derive_seed(seed, STREAM_PAIRS, round_index, j))
        rows.append(torch.randn(shape, generator=gen))
    return torch.stack(rows) if rows else torch.empty((0, *shape))


@torch.no_grad()
def teacher_endpoints(
    teacher: torch.nn.Module, eps: torch.Tensor, settings: PairSettings, progress: bool = False
) -> torch.Tensor:
    """``Phi_teacher(eps)``: Heun from ``smax eps`` to 0 in ``N_s`` steps, ``(B, C, S, S)``."""
    device = next(teacher.parameters()).device
    sigmas = karras_sigmas(
        settings.steps,
        settings.sigma_min,
        settings.sigma_max,
        settings.rho,
        device=device,
        dtype=torch.float32,
    )
    out = []
    for start in tqdm(
        range(0, len(eps), settings.batch_size),
        desc="teacher pairs",
        unit="batch",
        disable=not progress,
    ):
        block = eps[start : start + settings.batch_size].to(device)
        out.append(sample_heun(teacher, block * sigmas[0], sigmas).float().cpu())
    return torch.cat(out) if out else torch.empty_like(eps)


def compute_pairs(
    teacher: torch.nn.Module,
    settings: PairSettings,
    seed: int,
    round_index: int,
    indices: list[int],
    shape: tuple[int, ...],
    info: DistInfo,
    progress: bool = False,
    targets: TargetMap | None = None,
) -> torch.Tensor:
    """Pairs for ``indices``, ``(len, 2C, S, S)`` = ``[eps, x0]``, computed sharded over ranks;
    ``x0 = targets(Phi_teacher(eps))`` when a target map is given."""
    mine = indices[info.rank :: info.world_size]
    eps = pair_latents(seed, round_index, mine, shape)
    endpoints = teacher_endpoints(teacher, eps, settings, progress)
    if targets is not None and len(endpoints):
        endpoints = targets(endpoints)
    local = torch.cat([eps, endpoints], dim=1)
    if not info.enabled:
        return local
    gathered: list[torch.Tensor | None] = [None] * info.world_size
    dist.all_gather_object(gathered, local)
    out = torch.empty((len(indices), 2 * shape[0], *shape[1:]))
    for rank, part in enumerate(gathered):
        assert part is not None
        out[rank :: info.world_size] = part
    return out


class PairBank:
    """The pair buffer ``(P, 2C, S, S)`` and its refresh schedule, cached in ``directory``.

    ``targets`` maps the teacher's endpoints before they are stored (see :data:`TargetMap`);
    ``key`` must tell banks with different target maps apart."""

    def __init__(
        self,
        teacher: torch.nn.Module,
        settings: PairSettings,
        shape: tuple[int, ...],
        seed: int,
        directory: Path,
        info: DistInfo,
        key: dict | None = None,
        progress: bool = False,
        targets: TargetMap | None = None,
    ) -> None:
        self.teacher, self.settings, self.shape = teacher, settings, shape
        self.seed, self.directory, self.info, self.progress = seed, directory, info, progress
        self.targets = targets
        self.round = 0
        if info.is_main:
            claim_cache(
                directory,
                {**(key or {}), "settings": repr(settings), "seed": seed, "shape": list(shape)},
            )
        barrier(info)
        self.buffer = self._load_or_compute(0, None)

    def path(self, round_index: int) -> Path:
        return self.directory / f"round-{round_index:05d}.safetensors"

    def round_at(self, step: int) -> int:
        """Refresh rounds completed before student step ``step`` runs."""
        every = self.settings.refresh_every
        return 0 if every <= 0 else step // every

    def sync_to_step(self, step: int) -> None:
        """Bring the buffer to the state it has at ``step`` (refreshing or reloading rounds)."""
        target = self.round_at(step)
        while self.round < target:
            self.buffer.copy_(self._load_or_compute(self.round + 1, self.buffer))
            self.round += 1

    def _load_or_compute(self, round_index: int, previous: torch.Tensor | None) -> torch.Tensor:
        path = self.path(round_index)
        if path.is_file():
            try:
                data = load_file(str(path))["pairs"]
            except Exception as exc:  # a damaged cache is recomputed, never half-used
                data = None
                if self.info.is_main:
                    path.unlink(missing_ok=True)
                print(f"pair cache {path} unreadable ({type(exc).__name__}); recomputing")
            if data is not None and data.shape == (
                self.settings.size,
                2 * self.shape[0],
                *self.shape[1:],
            ):
                return data
        if previous is None:
            bank = compute_pairs(
                self.teacher,
                self.settings,
                self.seed,
                0,
                list(range(self.settings.size)),
                self.shape,
                self.info,
                self.progress,
                self.targets,
            )
        else:
            bank = previous.clone()
            picks = self.refresh_indices(round_index)
            bank[picks] = compute_pairs(
                self.teacher,
                self.settings,
                self.seed,
                round_index,
                picks,
                self.shape,
                self.info,
                False,
                self.targets,
            )
        if self.info.is_main:
            self.directory.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as tmp:
                save_file({"pairs": bank.contiguous()}, str(tmp))
            # Keep the initial bank (the costly one, shared by every student of the teacher)
            # and the two newest rounds (what a resumed run needs).
            for old in self.directory.glob("round-*.safetensors"):
                if 0 < int(old.stem.split("-")[1]) < round_index - 1:
                    old.unlink(missing_ok=True)
        barrier(self.info)
        return bank

    def refresh_indices(self, round_index: int) -> list[int]:
        """The ``round(fraction * P)`` pair indices replaced in refresh ``round_index``."""
        count = max(1, int(round(self.settings.refresh_fraction * self.settings.size)))
        rng = np.random.default_rng(derive_seed(self.seed, STREAM_REFRESH_PICK, round_index))
        return sorted(rng.choice(self.settings.size, size=count, replace=False).tolist())


def file_digest(path: Path) -> str:
    """SHA-256 of a file (identifies a teacher checkpoint)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def claim_cache(directory: Path, key: dict) -> None:
    """Make ``directory`` a pair cache for ``key``: clear it if it was made for another key."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "key.json"
    text = json.dumps(key, sort_keys=True)
    if key_file.is_file() and key_file.read_text() == text:
        return
    for old in directory.glob("round-*.safetensors"):
        old.unlink(missing_ok=True)
    with atomic_output(key_file) as tmp:
        tmp.write_text(text)


def check_pair_settings(settings: PairSettings) -> None:
    """Raise :class:`PiddmError` for unusable pair settings."""
    if settings.size < 1:
        raise PiddmError(f"config distill.pairs: must be >= 1, got {settings.size}")
    if settings.steps < 1:
        raise PiddmError(f"config distill.pair_steps: must be >= 1, got {settings.steps}")
    if not 0.0 < settings.refresh_fraction <= 1.0:
        raise PiddmError(
            f"config distill.refresh_fraction: must be in (0, 1], got {settings.refresh_fraction}"
        )
