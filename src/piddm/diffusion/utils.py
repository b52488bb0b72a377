"""Small tensor helpers shared by the diffusion modules."""

from __future__ import annotations

from collections.abc import Callable

import torch

#: A denoiser ``D(x (B, C, S, S), sigma (B,)) -> (B, C, S, S)``, the interface between the
#: diffusion pieces (and to ``distill``, ``tasks`` and ``baselines``).
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def batch_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Noise levels as a ``(B,)`` tensor in ``x``'s dtype and device, ``B = x.shape[0]``.

    ``sigma`` may be a python float (a new tensor filled with it: the samplers' noise level of
    a step), a 0-d or one-element tensor (broadcast to the batch) or a ``(B,)`` tensor.
    """
    if isinstance(sigma, float | int):
        return torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1)
    if sigma.numel() == 1:
        return sigma.expand(x.shape[0])
    if sigma.shape[0] != x.shape[0]:
        raise ValueError(
            f"sigma must be a scalar or have shape ({x.shape[0]},), got {tuple(sigma.shape)}"
        )
    return sigma


def append_dims(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """View a ``(B,)`` tensor as ``(B, 1, ..., 1)`` with ``ndim`` dimensions, for broadcasting."""
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def randn_like_with(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` (on its device).

    Drawing on the generator's device and moving the result keeps runs reproducible when a
    CPU generator drives a GPU model.
    """
    return randn((*x.shape,), generator, x)


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """``N(0, 1)`` samples of ``shape`` in ``like``'s dtype and device, from ``generator``."""
    device = generator.device if generator is not None else like.device
    out = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return out.to(like.device)
