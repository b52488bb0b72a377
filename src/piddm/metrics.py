"""Metrics of SPEC section 6: residual, MMSE/SMSE with noise floors, SFD, relative L2,
Darcy error rate, and solver consistency.

Conventions: sets of fields are arrays ``(N, C, S, S)`` in **physical** units. Residuals are
in physical units (mean squared residual per sample). Distribution statistics (MMSE, SMSE,
SFD) are computed in the PDE's *normalised* units so that channels of different physical
scale weigh alike; each comes with its floor, the same statistic between two disjoint halves
of the reference set, each the size of the generated set (or half the reference if smaller),
averaged over :data:`FLOOR_SPLITS` random splits (one split is a noisy estimate: on 32^2
Poisson data the SMSE floor of single splits varied by 2x).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import scipy.linalg
import torch
from scipy import fft

from piddm.errors import PiddmError
from piddm.pdes import PDE

SFD_MODES = 8  # K: features are the lowest K x K DCT coefficients per channel
FLOOR_SPLITS = 16  # random disjoint half-pairs of the reference averaged for each floor


def per_sample_residual(pde: PDE, fields: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean squared residual of each sample, float64: ``(N, C, S, S) -> (N,)``."""
    out = []
    for start in range(0, len(fields), batch_size):
        block = torch.from_numpy(np.asarray(fields[start : start + batch_size], dtype=np.float64))
        out.append(pde.mean_squared_residual(block).numpy())
    return np.concatenate(out)


def _normalised(pde: PDE, fields: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(fields, dtype=np.float64))
    return pde.normalisation.normalise(x).numpy()


def moment_errors(generated: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """``(MMSE, SMSE)``: MSE between the pointwise means and between the pointwise stds."""
    mmse = float(np.mean((generated.mean(axis=0) - reference.mean(axis=0)) ** 2))
    smse = float(np.mean((generated.std(axis=0) - reference.std(axis=0)) ** 2))
    return mmse, smse


def spectral_features(fields: np.ndarray, modes: int = SFD_MODES) -> np.ndarray:
    """Lowest ``modes x modes`` orthonormal DCT-II coefficients per channel: ``(N, C*K*K)``."""
    coeffs = fft.dctn(fields, type=2, norm="ortho", axes=(-2, -1))[..., :modes, :modes]
    return coeffs.reshape(len(fields), -1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussian fits of feature sets ``(N, d)`` and ``(M, d)``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr (S_a S_b)^(1/2) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))): symmetric eigen-solves are
    # exact for PSD matrices and far faster than a general sqrtm on rank-deficient ones.
    values, vectors = scipy.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    inner = scipy.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sum(np.sqrt(np.clip(inner, 0.0, None))))
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)
    return max(value, 0.0)


def relative_l2(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``|xhat - x| / |x|`` per sample and channel: ``(N, C, S, S) -> (N, C)``."""
    err = np.sqrt(((estimate - truth) ** 2).sum(axis=(-2, -1)))
    norm = np.sqrt((truth**2).sum(axis=(-2, -1)))
    return err / np.maximum(norm, np.finfo(np.float64).tiny)


def error_rate(estimate_a: np.ndarray, truth_a: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of misclassified nodes after thresholding a binary coefficient: ``(N,)``."""
    wrong = (estimate_a > threshold) != (truth_a > threshold)
    return wrong.reshape(len(wrong), -1).mean(axis=1)


def solver_consistency(pde: PDE, fields: np.ndarray) -> np.ndarray:
    """Relative L2 between each sample's solution and the solver's, given its input: ``(N,)``.

    The solver gets the sample's own coefficient (or initial condition), made admissible by
    :meth:`PDE.admissible_inputs`; unlike the residual, a small but wrong field cannot pass.
    """
    out = np.empty(len(fields))
    for i, field in enumerate(np.asarray(fields, dtype=np.float64)):
        solved = pde.solve_own_input(field)
        truth, generated = pde.solution_of(solved), pde.solution_of(field)
        out[i] = np.linalg.norm(generated - truth) / max(np.linalg.norm(truth), 1e-300)
    return out


@dataclass
class EvalReport:
    """The ``piddm eval`` keys of SPEC section 8."""

    n: int
    residual_mean: float
    residual_median: float
    reference_residual_mean: float
    mmse: float
    smse: float
    mmse_floor: float
    smse_floor: float
    sfd: float
    sfd_floor: float
    solver_consistency: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def reference_halves(n: int, n_reference: int) -> int:
    """Size of each disjoint reference half used for the noise floors."""
    size = min(n, n_reference // 2)
    if size < 2:
        raise PiddmError(
            f"the reference set needs at least 4 samples for noise floors, has {n_reference}"
        )
    return size


def noise_floors(
    reference: np.ndarray, n: int, seed: int = 0, splits: int = FLOOR_SPLITS
) -> tuple[float, float, float]:
    """``(MMSE, SMSE, SFD)`` floors of ``n`` generated samples against ``reference``
    ``(M, C, S, S)`` (normalised): each statistic between two disjoint random halves of the
    reference of size ``min(n, M // 2)``, averaged over ``splits`` random splits."""
    half = reference_halves(n, len(reference))
    rng = np.random.default_rng(seed)
    features = spectral_features(reference)
    totals = np.zeros(3)
    for _ in range(splits):
        order = rng.permutation(len(reference))
        first, second = order[:half], order[half : 2 * half]
        mmse, smse = moment_errors(reference[first], reference[second])
        sfd = frechet_distance(features[first], features[second])
        totals += (mmse, smse, sfd)
    mmse_floor, smse_floor, sfd_floor = (float(v) for v in totals / splits)
    return mmse_floor, smse_floor, sfd_floor


def evaluate(
    pde: PDE,
    generated: np.ndarray,
    reference: np.ndarray,
    consistency: bool = True,
    seed: int = 0,
) -> EvalReport:
    """All generation metrics of ``generated`` against held-out solver ``reference`` data."""
    if generated.shape[1:] != reference.shape[1:]:
        raise PiddmError(
            f"samples have shape {generated.shape[1:]} but the reference {reference.shape[1:]}"
        )
    if len(generated) < 2:
        raise PiddmError("need at least 2 generated samples for distribution metrics")
    residual = per_sample_residual(pde, generated)
    gen_n, ref_n = _normalised(pde, generated), _normalised(pde, reference)
    mmse, smse = moment_errors(gen_n, ref_n)
    sfd = frechet_distance(spectral_features(gen_n), spectral_features(ref_n))
    mmse_floor, smse_floor, sfd_floor = noise_floors(ref_n, len(generated), seed)
    return EvalReport(
        n=len(generated),
        residual_mean=float(residual.mean()),
        residual_median=float(np.median(residual)),
        reference_residual_mean=float(per_sample_residual(pde, reference).mean()),
        mmse=mmse,
        smse=smse,
        mmse_floor=mmse_floor,
        smse_floor=smse_floor,
        sfd=sfd,
        sfd_floor=sfd_floor,
        solver_consistency=float(solver_consistency(pde, generated).mean())
        if consistency
        else None,
    )


def task_metrics(pde: PDE, estimate: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """The ``piddm solve`` metrics of estimates ``(N, C, S, S)`` against the truth.

    ``rel_l2_coefficient`` / ``rel_l2_solution``: mean relative L2 of the coefficient and
    solution channels (Burgers: the initial row and the whole space-time field);
    ``error_rate``: Darcy's misclassified-node fraction of the coefficient, else ``None``;
    ``residual_mean``: mean squared residual of the estimates.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    c, s = pde.coefficient_channel, pde.solution_channel
    if c == s:  # space-time field: the input is its first row
        coef_est, coef_true = estimate[:, c : c + 1, :1], truth[:, c : c + 1, :1]
    else:
        coef_est, coef_true = estimate[:, c : c + 1], truth[:, c : c + 1]
    threshold = getattr(pde, "threshold", None)
    return {
        "rel_l2_coefficient": float(relative_l2(coef_est, coef_true).mean()),
        "rel_l2_solution": float(relative_l2(estimate[:, s : s + 1], truth[:, s : s + 1]).mean()),
        "error_rate": None
        if threshold is None
        else float(error_rate(estimate[:, c], truth[:, c], threshold).mean()),
        "residual_mean": float(per_sample_residual(pde, estimate).mean()),
    }
