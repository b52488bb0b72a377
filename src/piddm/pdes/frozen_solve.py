"""The preconditioned residual ``P^-1 R(x)``: one linear solve with the PDE's own operator.

For fields ``x`` with residual map ``R(x)`` ``(B, S, S)``, ``P = dR/du`` is the Jacobian of the
residual with respect to the solution (the discrete operator of the PDE for the field's own
coefficient or initial condition). ``e = P^-1 R(x)`` is the Newton correction of ``u``:

* for the linear PDEs (Darcy, Poisson, Helmholtz) ``e = u - u*`` **exactly**, where ``u*`` is
  the solver's solution for the field's own input, so ``mean(e**2)`` is the squared solution
  error and ``|e| / |u - e|`` the solver consistency;
* for Burgers, ``e = u - u* + O(|u - u*|**2)``.

Its minimum is the solver's solution, and unlike the plain residual it does not weight the
error's high frequencies by ``k**4`` (see docs/concepts.md, "Physics measures").

Under autograd ``P`` is held fixed (it is evaluated at the detached field), so the gradient
of ``|e|**2 / 2`` with respect to ``u`` is ``P^T P^-T e = e`` itself: the Newton direction.
The backward pass is one transpose solve, ``P^-T g``, through :class:`FrozenSolve`.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class LinearSolver(Protocol):
    """``P^-1`` and ``P^-T`` of one batch's frozen operator on ``(B, S, S)`` maps."""

    def solve(self, r: torch.Tensor) -> torch.Tensor: ...

    def solve_transpose(self, g: torch.Tensor) -> torch.Tensor: ...


class FrozenSolve(torch.autograd.Function):
    """``e = P^-1 r`` with ``P`` constant: forward ``P^-1 r``, backward ``P^-T g``."""

    @staticmethod
    def forward(ctx, r: torch.Tensor, solver: LinearSolver) -> torch.Tensor:  # type: ignore[override]
        ctx.solver = solver
        return solver.solve(r.detach())

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.solver.solve_transpose(g.contiguous()), None


def frozen_solve(r: torch.Tensor, solver: LinearSolver) -> torch.Tensor:
    """``P^-1 r`` ``(B, S, S)``, differentiable in ``r`` with ``P`` held fixed."""
    return FrozenSolve.apply(r, solver)


def dst1(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Unnormalised type-I discrete sine transform along ``dim`` (length ``n``):
    ``X_k = sum_{j=1..n} x_j sin(pi j k / (n + 1))``, ``k = 1..n``; ``dst1(dst1(x)) = (n+1)/2 x``.

    Written with torch's FFT (torch has no sine transform) so it runs on any device and is
    differentiable: the odd extension ``[0, x, 0, -reversed(x)]`` of length ``2(n+1)`` has the
    DFT ``-2i X_k``.
    """
    x = x.movedim(dim, -1)
    zero = torch.zeros_like(x[..., :1])
    extended = torch.cat([zero, x, zero, -x.flip(-1)], dim=-1)
    n = x.shape[-1]
    out = -0.5 * torch.fft.fft(extended, dim=-1).imag[..., 1 : n + 1]
    return out.movedim(-1, dim)


def dirichlet_laplacian_eigenvalues(
    n: int, h: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Eigenvalues ``(n, n)`` of the 5-point ``lap`` on ``n x n`` interior nodes (zero
    Dirichlet values), in the sine basis of :func:`dst1`:
    ``-(4 / h**2) (sin**2(pi j / (2(n+1))) + sin**2(pi k / (2(n+1))))``."""
    k = torch.arange(1, n + 1, dtype=dtype, device=device)
    s = torch.sin(math.pi * k / (2 * (n + 1))).square()
    return -(4.0 / h**2) * (s[:, None] + s[None, :])


def solve_shifted_laplacian(rhs: torch.Tensor, h: float, shift: float) -> torch.Tensor:
    """``(lap + shift) e = rhs`` on the interior ``(..., n, n)``, zero Dirichlet values:
    exact, by the sine transform (the operator is diagonal in the sine basis)."""
    n = rhs.shape[-1]
    eig = dirichlet_laplacian_eigenvalues(n, h, rhs.dtype, rhs.device) + shift
    coeffs = dst1(dst1(rhs, -1), -2) / eig
    return dst1(dst1(coeffs, -1), -2) * (2.0 / (n + 1)) ** 2
