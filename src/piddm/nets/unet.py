"""A DDPM++-like U-Net for fields ``(B, C, S, S)`` conditioned on a scalar noise level.

Layout (``L = len(channel_mult)`` levels, level ``l`` has ``base_channels * channel_mult[l]``
channels at resolution ``S / 2^l``)::

    conv_in -> [ResBlock (+ attention at the coarsest level)] x num_res_blocks -> Downsample
            -> ... -> middle: ResBlock, attention, ResBlock
            -> [ResBlock on concat(h, skip) (+ attention)] x (num_res_blocks + 1)
            -> [RefineBlock] x refine_blocks -> Upsample
            -> ... -> GroupNorm, SiLU, conv_out (zero-initialised)

Every encoder output is a skip connection consumed by the mirrored decoder block. The noise
level enters each residual block as a per-channel shift after its first conv; down- and
up-sampling are fixed (average pooling, nearest neighbour). Refinement blocks (none by default)
are identity at initialisation: a network with more of them loads the weights of one with
fewer and computes the same function, which is how a student grows beyond its teacher
(``distill.grow_blocks``, docs/method.md, "PIDDM student").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from piddm.errors import PiddmError
from piddm.nets.embedding import NoiseEmbedding
from piddm.nets.layers import (
    Downsample,
    RefineBlock,
    ResBlock,
    SelfAttention,
    Upsample,
    group_norm,
)


class UNetConfigError(PiddmError, ValueError):
    """A bad U-Net configuration or an input the configured U-Net cannot take."""


@dataclass(frozen=True)
class UNetConfig:
    """Size and shape of a :class:`UNet`. ``None`` fields are resolved on construction.

    ``out_channels`` defaults to ``in_channels`` and ``embedding_dim`` to
    ``4 * base_channels``; ``num_groups`` is clamped per layer to a divisor of its channel
    count; ``refine_blocks`` is the number of :class:`~piddm.nets.layers.RefineBlock` at the
    end of every decoder level. The config round-trips through ``dataclasses.asdict`` and
    JSON (lists are accepted where tuples are expected). These fields, with their defaults,
    are also the ``net`` keys of a run config (:class:`piddm.config.NetConfig`): a new one is
    added here.
    """

    in_channels: int
    out_channels: int | None = None
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 2
    attention: bool = True
    dropout: float = 0.0
    num_groups: int = 8
    embedding_dim: int | None = None
    refine_blocks: int = 0

    def __post_init__(self) -> None:
        mult = tuple(int(m) for m in self.channel_mult)
        object.__setattr__(self, "channel_mult", mult)
        if self.out_channels is None:
            object.__setattr__(self, "out_channels", self.in_channels)
        if self.embedding_dim is None:
            object.__setattr__(self, "embedding_dim", 4 * self.base_channels)
        # Each count with its lowest allowed value.
        counts = {
            "in_channels": (self.in_channels, 1),
            "out_channels": (self.out_channels, 1),
            "base_channels": (self.base_channels, 1),
            "num_res_blocks": (self.num_res_blocks, 1),
            "num_groups": (self.num_groups, 1),
            "embedding_dim": (self.embedding_dim, 1),
            "refine_blocks": (self.refine_blocks, 0),
        }
        for name, (value, low) in counts.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                kind = "positive" if low == 1 else "non-negative"
                raise UNetConfigError(f"UNetConfig.{name} must be a {kind} integer, got {value!r}")
        if not mult or min(mult) < 1:
            raise UNetConfigError(
                f"UNetConfig.channel_mult must be a non-empty tuple of positive integers, "
                f"got {self.channel_mult!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UNetConfigError(f"UNetConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def resolution_divisor(self) -> int:
        """Spatial sizes must be multiples of ``2 ** (len(channel_mult) - 1)``."""
        return 2 ** (len(self.channel_mult) - 1)

    def check_resolution(self, height: int, width: int | None = None) -> None:
        """Raise :class:`UNetConfigError` (a ``ValueError``) if the U-Net cannot take this size."""
        width = height if width is None else width
        k = self.resolution_divisor
        if height % k or width % k or height < 1 or width < 1:
            raise UNetConfigError(
                f"spatial size {height}x{width} is not divisible by {k} = "
                f"2**(len(channel_mult)-1) for channel_mult={self.channel_mult}; use a multiple "
                f"of {k} (e.g. 16, 32, 64, 128) or fewer levels"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Inverse of ``dataclasses.asdict``; unknown keys are an error."""
        return cls(**data)


#: Named sizes: ``tiny`` for tests, ``cpu`` (about 1 M parameters), ``gpu`` (EDM-sized).
UNET_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"base_channels": 8, "channel_mult": (1, 2), "num_res_blocks": 1},
    "cpu": {"base_channels": 32, "channel_mult": (1, 2, 2), "num_res_blocks": 2},
    "gpu": {
        "base_channels": 128,
        "channel_mult": (1, 2, 2, 2),
        "num_res_blocks": 4,
        "dropout": 0.1,
        "num_groups": 32,
    },
}


def unet_preset(name: str, in_channels: int, **overrides: Any) -> UNetConfig:
    """The :data:`UNET_PRESETS` entry ``name`` for ``in_channels`` channels, with overrides."""
    if name not in UNET_PRESETS:
        raise UNetConfigError(f"unknown U-Net preset '{name}'; available: {sorted(UNET_PRESETS)}")
    return UNetConfig(in_channels=in_channels, **{**UNET_PRESETS[name], **overrides})


class _Stage(nn.Module):
    """A residual block optionally followed by self-attention."""

    def __init__(self, in_ch: int, out_ch: int, config: UNetConfig, *, attention: bool) -> None:
        super().__init__()
        assert config.embedding_dim is not None
        self.block = ResBlock(
            in_ch,
            out_ch,
            config.embedding_dim,
            dropout=config.dropout,
            num_groups=config.num_groups,
        )
        self.attn = SelfAttention(out_ch, num_groups=config.num_groups) if attention else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        x = self.block(x, emb)
        return x if self.attn is None else self.attn(x)


class UNet(nn.Module):
    """``F(x, c_noise)``: ``(B, C_in, S, S)`` and noise levels ``(B,)`` -> ``(B, C_out, S, S)``.

    See the module docstring for the layout. The output conv is zero-initialised, so a fresh
    network returns zeros and an :class:`~piddm.diffusion.EDMPrecond` around it starts as
    ``D(x; s) = c_skip(s) x``.
    """

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        assert config.embedding_dim is not None and config.out_channels is not None
        base, mult = config.base_channels, config.channel_mult
        coarsest = len(mult) - 1
        attend = config.attention

        self.embedding = NoiseEmbedding(base, config.embedding_dim)
        ch = base * mult[0]
        self.conv_in = nn.Conv2d(config.in_channels, ch, 3, padding=1)

        self.encoder = nn.ModuleList()
        skip_channels = [ch]
        for level, m in enumerate(mult):
            attn = attend and level == coarsest
            for _ in range(config.num_res_blocks):
                self.encoder.append(_Stage(ch, base * m, config, attention=attn))
                ch = base * m
                skip_channels.append(ch)
            if level != coarsest:
                self.encoder.append(Downsample())
                skip_channels.append(ch)

        self.middle = nn.ModuleList(
            [_Stage(ch, ch, config, attention=attend), _Stage(ch, ch, config, attention=False)]
        )

        self.decoder = nn.ModuleList()
        # Refinement blocks per decoder level, coarsest first (empty lists hold no weights,
        # so networks without them keep their parameter names).
        self.refine = nn.ModuleList()
        for level in reversed(range(len(mult))):
            attn = attend and level == coarsest
            out = base * mult[level]
            for _ in range(config.num_res_blocks + 1):
                self.decoder.append(_Stage(ch + skip_channels.pop(), out, config, attention=attn))
                ch = out
            self.refine.append(
                nn.ModuleList(
                    RefineBlock(ch, config.embedding_dim, num_groups=config.num_groups)
                    for _ in range(config.refine_blocks)
                )
            )
            if level != 0:
                self.decoder.append(Upsample())
        assert not skip_channels

        self.norm_out = group_norm(ch, config.num_groups)
        self.conv_out = nn.Conv2d(ch, config.out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C_in, S, S)``, ``c_noise`` ``(B,)`` or scalar -> ``(B, C_out, S, S)``."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise UNetConfigError(
                f"UNet expects input of shape (B, {self.config.in_channels}, S, S), "
                f"got {tuple(x.shape)}"
            )
        self.config.check_resolution(x.shape[-2], x.shape[-1])
        c_noise = torch.as_tensor(c_noise, dtype=x.dtype, device=x.device).reshape(-1)
        if c_noise.numel() == 1:
            c_noise = c_noise.expand(x.shape[0])
        if c_noise.shape[0] != x.shape[0]:
            raise UNetConfigError(
                f"c_noise must have shape ({x.shape[0]},) or be a scalar, "
                f"got {tuple(c_noise.shape)}"
            )
        emb = self.embedding(c_noise)

        h = self.conv_in(x)
        skips = [h]
        for module in self.encoder:
            h = module(h, emb) if isinstance(module, _Stage) else module(h)
            skips.append(h)
        for stage in self.middle:
            h = stage(h, emb)
        levels = iter(self.refine)
        for module in self.decoder:
            if isinstance(module, _Stage):
                h = module(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = self._refined(h, emb, next(levels))
                h = module(h)
        h = self._refined(h, emb, next(levels))
        return self.conv_out(F.silu(self.norm_out(h)))

    @staticmethod
    def _refined(h: torch.Tensor, emb: torch.Tensor, blocks: nn.ModuleList) -> torch.Tensor:
        for block in blocks:
            h = block(h, emb)
        return h


def build_unet(config: UNetConfig) -> UNet:
    """Construct the U-Net described by ``config``."""
    return UNet(config)


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
