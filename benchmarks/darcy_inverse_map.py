"""A classical reference for the Darcy inverse problem: PDE-constrained MAP with the solver.

Usage:
    python benchmarks/darcy_inverse_map.py --data data/darcy-32-train.h5 --n 20 \
        --setting sigma=0.01 --setting sigma=0.001 --out /tmp/map-sweep.json
    python benchmarks/darcy_inverse_map.py --data data/darcy-32-test.h5 --n 100 \
        --setting ... --out benchmarks/results/darcy-32-inverse-map.json

No generative model: the coefficient is parametrised by the white noise ``xi`` of its own
prior, ``g = Phi xi`` (:func:`piddm.pdes.grf.grf2d_modes`), relaxed to
``a = a_low + (a_high - a_low) * sigmoid(g / t)`` with a temperature ``t`` annealed from
``t0`` to ``t1`` (times the prior's pointwise std of ``g``), and

    J(xi) = 1/2 sum_obs ((u(a)_o - y_o) / (sigma * rms(y)))^2 + 1/2 |xi|^2

is minimised by Adam, with ``u(a)`` the package's own Darcy solver (the sparse matrix of
:func:`piddm.pdes.stencil.neg_div_a_grad_matrix`, factorised by SuperLU) and its adjoint
gradient. The estimate is ``a_high`` where ``g >= 0``. ``starts`` optimisations per instance
begin from the best initial fits among ``candidates`` prior draws; the lowest final ``J``
wins (``vote=true``: the majority of the starts' fits). The masks are the bench's (mask seed
``sample_seed(0, 1)``: the inverse task), so on the held-out data these are the bench's
instances; choose the settings on training data (the first form above).

This is a reference, not a baseline of the same kind: it needs the data's prior in closed
form and a solver with an adjoint, where PIDDM learns the prior from samples.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from task_sweep import replace_fields  # benchmarks/, on the path when run as a script

from piddm.data import read_dataset
from piddm.data.generate import sample_seed
from piddm.metrics import error_rate, relative_l2
from piddm.pdes import PDE, get_pde
from piddm.pdes.elliptic import factorise
from piddm.pdes.grf import grf2d_modes
from piddm.pdes.stencil import div_a_grad, neg_div_a_grad_matrix
from piddm.tasks import make_mask


@dataclass(frozen=True)
class MapSettings:
    """The MAP's settings (``--setting name=value,...`` replaces these defaults)."""

    sigma: float = 0.01  # observation scale, relative to the rms of the observed values
    t0: float = 1.0  # initial temperature of the relaxed threshold (x the std of g)
    t1: float = 0.05  # final temperature
    steps: int = 300
    lr: float = 0.05
    starts: int = 4
    candidates: int = 64
    vote: bool = False  # majority vote of the starts' fits instead of the lowest objective's


class DarcySolve(torch.autograd.Function):
    """``u = A(a)^-1 f`` with the adjoint gradient (a hand-written Function: scipy's sparse LU
    has no autograd). ``A`` is symmetric, so the adjoint solve reuses the factorisation, and
    ``dJ/da = -d/da [lam^T A(a) u]`` with ``A(a) u = -div(a grad u)`` from the same stencil."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, forcing: float, h: float) -> torch.Tensor:  # type: ignore[override]
        size = a.shape[-1]
        factor = factorise(neg_div_a_grad_matrix(a.detach().numpy(), h))
        u = torch.zeros_like(a)
        interior = factor.solve(np.full((size - 2) ** 2, forcing))
        u[1:-1, 1:-1] = torch.from_numpy(interior.reshape(size - 2, size - 2))
        ctx.factor, ctx.h = factor, h
        ctx.save_for_backward(a, u)
        return u

    @staticmethod
    def backward(ctx, grad_u: torch.Tensor):  # type: ignore[override]
        a, u = ctx.saved_tensors
        size = a.shape[-1]
        lam = ctx.factor.solve(grad_u[1:-1, 1:-1].contiguous().numpy().ravel())
        lam = torch.from_numpy(lam.reshape(size - 2, size - 2))
        with torch.enable_grad():
            a_ = a.detach().requires_grad_(True)
            bilinear = (lam * -div_a_grad(a_, u, ctx.h)).sum()
            (grad_a,) = torch.autograd.grad(bilinear, a_)
        return -grad_a, None, None


def check_adjoint(pde: PDE, rng: np.random.Generator) -> float:
    """Relative gap between the adjoint gradient and a central finite difference."""
    a = torch.from_numpy(3.0 + 9.0 * rng.random((pde.resolution,) * 2)).requires_grad_(True)
    weights = torch.from_numpy(rng.standard_normal(a.shape))
    forcing = pde.params["forcing"]
    (DarcySolve.apply(a, forcing, pde.h) * weights).sum().backward()
    direction = torch.from_numpy(rng.standard_normal(a.shape))
    eps = 1e-6
    with torch.no_grad():
        plus = (DarcySolve.apply(a + eps * direction, forcing, pde.h) * weights).sum()
        minus = (DarcySolve.apply(a - eps * direction, forcing, pde.h) * weights).sum()
    numeric = float((plus - minus) / (2 * eps))
    analytic = float((a.grad * direction).sum())
    return abs(numeric - analytic) / abs(numeric)


def invert(
    pde: PDE,
    basis: torch.Tensor,
    std_g: float,
    y: torch.Tensor,
    observed: torch.Tensor,
    settings: MapSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, float]:
    """The MAP coefficient ``(S, S)`` of one instance and its lowest objective.

    ``basis`` ``(S^2, S^2 modes)`` maps white noise to ``g``; ``y`` ``(K,)`` the observed
    values of ``u`` at the flat node indices ``observed`` ``(K,)``."""
    size, forcing = pde.resolution, pde.params["forcing"]
    low, high = pde.params["a_low"], pde.params["a_high"]
    scale = settings.sigma * float(torch.sqrt((y**2).mean()))

    def coefficient(xi: torch.Tensor, t: float) -> torch.Tensor:
        g = (basis @ xi).reshape(size, size)
        return low + (high - low) * torch.sigmoid(g / (t * std_g))

    def objective(xi: torch.Tensor, t: float) -> torch.Tensor:
        u = DarcySolve.apply(coefficient(xi, t), forcing, pde.h)
        misfit = (u.ravel()[observed] - y) / scale
        return 0.5 * (misfit**2).sum() + 0.5 * (xi**2).sum()

    draws = torch.from_numpy(rng.standard_normal((settings.candidates, basis.shape[1])))
    with torch.no_grad():
        first = torch.stack([objective(xi, settings.t0) for xi in draws])
    fits = []
    for index in torch.argsort(first)[: settings.starts]:
        xi = draws[index].clone().requires_grad_(True)
        optimiser = torch.optim.Adam([xi], lr=settings.lr)
        for step in range(settings.steps):
            t = settings.t0 * (settings.t1 / settings.t0) ** (step / max(1, settings.steps - 1))
            optimiser.zero_grad()
            objective(xi, t).backward()
            optimiser.step()
        with torch.no_grad():
            value = float(objective(xi, settings.t1))
            g = (basis @ xi).reshape(size, size).numpy()
        fits.append((g >= 0.0, value))
    if settings.vote:
        high_phase = np.mean([fit for fit, _ in fits], axis=0) >= 0.5
    else:
        high_phase = min(fits, key=lambda fit: fit[1])[0]
    return np.where(high_phase, high, low), min(value for _, value in fits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--fraction", type=float, default=0.03)
    parser.add_argument("--setting", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings_list = [replace_fields(MapSettings(), text) for text in args.setting]
    torch.set_num_threads(1)
    pde = get_pde("darcy", 32)
    gap = check_adjoint(pde, np.random.default_rng(0))
    if gap > 1e-5:
        raise SystemExit(f"adjoint gradient disagrees with finite differences ({gap:.2e})")
    size = pde.resolution
    truth = np.asarray(read_dataset(args.data, limit=args.n).fields, dtype=np.float64)
    mask_rng = torch.Generator().manual_seed(sample_seed(0, 1))  # bench: task index 1
    mask = make_mask(pde, "inverse", args.fraction, mask_rng, n=len(truth)).numpy()
    basis = torch.from_numpy(grf2d_modes(size, pde.grf_alpha, pde.grf_tau).reshape(-1, size**2).T)
    std_g = float(torch.sqrt((basis**2).sum(dim=1)).mean())
    rows = []
    for settings in settings_list or [MapSettings()]:
        start = time.perf_counter()
        estimates = []
        for i in range(len(truth)):
            observed = torch.from_numpy(np.flatnonzero(mask[i, 1].ravel()))
            y = torch.from_numpy(truth[i, 1].ravel())[observed]
            rng = np.random.default_rng([1, i])
            estimates.append(invert(pde, basis, std_g, y, observed, settings, rng)[0])
        seconds = (time.perf_counter() - start) / len(truth)
        a_hat = np.stack(estimates)
        solved = np.stack([pde.solve(a) for a in a_hat])
        row = {
            "setting": asdict(settings),
            "error_rate": float(error_rate(a_hat, truth[:, 0], pde.threshold).mean()),
            "rel_l2_coefficient": float(relative_l2(a_hat[:, None], truth[:, :1]).mean()),
            "rel_l2_solution": float(relative_l2(solved[:, 1:], truth[:, 1:]).mean()),
            "seconds_per_instance": seconds,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    payload = {
        "data": str(args.data),
        "n": len(truth),
        "obs_fraction": args.fraction,
        "observed_nodes": int(mask[0, 1].sum()),
        "adjoint_check": gap,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
