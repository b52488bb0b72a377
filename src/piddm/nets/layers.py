"""Building blocks of the U-Net: residual and refinement blocks, self-attention, down- and
up-sampling.

All blocks act on feature maps ``(B, C, H, W)``; residual blocks also take the noise
embedding ``(B, E)``. Sums of a residual branch and its skip path are scaled by
``1/sqrt(2)`` (as in DDPM++), which keeps activations of unit scale through deep stacks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_SKIP_SCALE = 1.0 / math.sqrt(2.0)


def group_count(channels: int, max_groups: int) -> int:
    """The largest number of groups ``<= max_groups`` that divides ``channels``."""
    for groups in range(min(max_groups, channels), 0, -1):
        if channels % groups == 0:
            return groups
    return 1


def group_norm(channels: int, max_groups: int) -> nn.GroupNorm:
    """GroupNorm over ``channels`` with the group count clamped to a divisor of ``channels``."""
    return nn.GroupNorm(group_count(channels, max_groups), channels, eps=1e-6)


class ResBlock(nn.Module):
    """Residual block with noise conditioning: ``(B, C_in, H, W), (B, E) -> (B, C_out, H, W)``.

    ``h = conv1(silu(norm1(x))) + Linear(emb)`` (the noise embedding as a per-channel shift,
    as in DDPM++); ``h = conv2(dropout(silu(norm2(h))))``; output ``(h + skip(x)) / sqrt(2)``,
    ``skip`` a 1x1 conv when the channel count changes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        embedding_dim: int,
        *,
        dropout: float = 0.0,
        num_groups: int = 8,
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.affine = nn.Linear(embedding_dim, out_channels)
        self.norm2 = group_norm(out_channels, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip: nn.Module = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.affine(emb).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return (h + self.skip(x)) * _SKIP_SCALE


class RefineBlock(nn.Module):
    """Residual refinement at constant width: ``(B, C, H, W), (B, E) -> (B, C, H, W)``.

    ``out = x + conv2(silu(norm2(conv1(silu(norm1(x))) + Linear(emb))))`` with ``conv2``
    zero-initialised and no ``1/sqrt(2)`` scale, so a new block is the identity: inserting it
    into a trained network leaves that network's function unchanged (a student grown from its
    teacher starts as the teacher; :class:`piddm.nets.UNet`, ``refine_blocks``).
    """

    def __init__(self, channels: int, embedding_dim: int, *, num_groups: int = 8) -> None:
        super().__init__()
        self.norm1 = group_norm(channels, num_groups)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.affine = nn.Linear(embedding_dim, channels)
        self.norm2 = group_norm(channels, num_groups)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.affine(emb).unsqueeze(-1).unsqueeze(-1)
        return x + self.conv2(F.silu(self.norm2(h)))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the ``H*W`` positions: ``(B, C, H, W) -> (B, C, H, W)``.

    ``out = (x + proj(softmax(q k^T / sqrt(d)) v)) / sqrt(2)`` with ``q, k, v`` 1x1 convs of
    ``norm(x)``; heads of ``head_channels`` channels (one head if ``C < head_channels``).
    """

    def __init__(self, channels: int, *, num_groups: int = 8, head_channels: int = 64) -> None:
        super().__init__()
        self.num_heads = max(1, channels // head_channels)
        if channels % self.num_heads:
            self.num_heads = 1
        self.norm = group_norm(channels, num_groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = (t.transpose(-1, -2) for t in qkv.unbind(dim=1))  # (B, heads, HW, d)
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.transpose(-1, -2).reshape(b, c, h, w)
        return (x + self.proj(out)) * _SKIP_SCALE


class Downsample(nn.Module):
    """Halve the resolution by 2x2 average pooling: ``(B, C, H, W) -> (B, C, H/2, W/2)``.

    A fixed ``[1, 1]`` resampling filter, as in DDPM++; the next residual block's convs learn.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2)


class Upsample(nn.Module):
    """Double the resolution by nearest-neighbour copying: ``(B, C, H, W) -> (B, C, 2H, 2W)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
