"""The amortised start network: observations -> a starting latent of a one-step generator.

``E(y, M) -> eps0``: ``y`` ``(B, C, S, S)`` the observations in the PDE's normalised units
(zero where unobserved), ``M`` ``(B, C, S, S)`` the mask (1 where observed); ``eps0``
``(B, C, S, S)`` a latent of the student ``G`` whose field ``G(eps0)`` is near the instance
(docs/method.md, "Amortised start"). A :class:`~piddm.nets.UNet` on the ``2 C`` input
channels at the fixed noise level 0 (its embedding is then a learnt constant).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from piddm.nets.unet import UNet


class StartNet(nn.Module):
    """``forward(y (B, C, S, S), mask (B, C, S, S)) -> eps0 (B, C, S, S)``; ``net`` is a
    :class:`UNet` with ``in_channels = 2 C`` and ``out_channels = C``."""

    def __init__(self, net: UNet) -> None:
        super().__init__()
        assert net.config.out_channels is not None
        if net.config.in_channels != 2 * net.config.out_channels:
            raise ValueError(
                f"a start network takes 2 C input channels for C output channels, got "
                f"{net.config.in_channels} -> {net.config.out_channels}"
            )
        self.net = net

    def forward(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(y.dtype)
        return self.net(torch.cat([y * m, m], dim=1), torch.zeros((), dtype=y.dtype))


def build_start_net(net: nn.Module, spec: dict[str, Any]) -> StartNet:
    """The checkpoint builder of ``precond`` type ``start`` (:mod:`piddm.checkpoint`)."""
    assert isinstance(net, UNet)
    return StartNet(net)
