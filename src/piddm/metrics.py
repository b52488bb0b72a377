"""Metrics (docs/concepts.md, "Metrics" and "Physics measures"): residual, relative residual,
MMSE/SMSE with noise floors, SFD, relative L2, Darcy error rate, and solver consistency, with
95 % intervals for the means and medians over samples.

Conventions: sets of fields are arrays ``(N, C, S, S)`` in **physical** units. Residuals are
in physical units (mean squared residual per sample). Distribution statistics (MMSE, SMSE,
SFD) are computed in the PDE's *normalised* units so that channels of different physical
scale weigh alike; each comes with its floor, the same statistic between two disjoint halves
of the reference set, each the size of the generated set (or half the reference if smaller),
averaged over :data:`FLOOR_SPLITS` random splits (one split is a noisy estimate: on 32^2
Poisson data the SMSE floor of single splits varied by 2x).

Intervals (``*_ci`` keys, ``[lo, hi]``, or ``None`` with fewer than 2 values): a mean over
samples or instances gets the normal-approximation interval ``mean +- 1.96 s / sqrt(n)``
(:func:`mean_interval`), a median the bootstrap percentile interval of
:func:`median_interval`. MMSE, SMSE and SFD get none: they are statistics of the whole set,
biased upward by the set's finite size, and a bootstrap resample (which repeats samples)
biases them further, by about half the noise floor that already states their sampling noise
(for MMSE: a resample's mean carries a second ``sigma**2 / n``, the floor is ``2 sigma**2 / n``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.linalg
import torch
from scipy import fft

from piddm.errors import PiddmError
from piddm.pdes import PDE

SFD_MODES = 8  # K: features are the lowest K x K DCT coefficients per channel
FLOOR_SPLITS = 16  # random disjoint half-pairs of the reference averaged for each floor
#: Two-sided 95 % quantile of the standard normal, ``Phi^-1(0.975)``.
Z_95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000  # resamples of the median's bootstrap interval
BOOTSTRAP_SEED = 0  # fixed: the same values always get the same interval
_BOOTSTRAP_CHUNK = 250  # resamples drawn at once (bounds the memory to 250 x N indices)

#: A 95 % interval ``[lo, hi]``, or ``None`` when it is undefined (fewer than 2 values).
Interval = list[float] | None


class Report:
    """Base of the report dataclasses of the commands (``piddm eval``, ``piddm data import``):
    their fields, in order, are the ``--json`` keys."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict, in field order."""
        return asdict(self)  # every subclass is a dataclass


def per_sample(
    measure: Callable[[torch.Tensor], torch.Tensor], fields: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """``measure`` ``(B, C, S, S) -> (B,)`` of each sample, in float64 batches of ``batch_size``:
    ``(N, C, S, S) -> (N,)``."""
    out = []
    for start in range(0, len(fields), batch_size):
        block = torch.from_numpy(np.asarray(fields[start : start + batch_size], dtype=np.float64))
        out.append(measure(block).numpy())
    return np.concatenate(out)


def per_sample_residual(pde: PDE, fields: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean squared residual of each sample, float64: ``(N, C, S, S) -> (N,)``."""
    return per_sample(pde.mean_squared_residual, fields, batch_size)


def per_sample_relative_residual(pde: PDE, fields: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Relative residual ``|R(x)| / |R(x0)|`` of each sample (:meth:`PDE.relative_residual`,
    ``x0`` the sample with its solution zeroed), float64: ``(N, C, S, S) -> (N,)``. 1 for the
    zero field, round-off for solver data (docs/concepts.md, "Physics measures")."""
    return per_sample(pde.relative_residual, fields, batch_size)


def mean_interval(values: np.ndarray) -> Interval:
    """95 % interval of the mean of ``values`` ``(n,)``: ``mean +- 1.96 s / sqrt(n)`` with the
    sample standard deviation ``s`` (``ddof=1``), the normal approximation of the mean's
    sampling distribution (good for n of a few dozen and more, unless the values are very
    skewed); ``None`` for ``n < 2``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) < 2:
        return None
    mean = float(values.mean())
    half = Z_95 * float(values.std(ddof=1)) / np.sqrt(len(values))
    return [mean - half, mean + half]


def median_interval(
    values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """95 % bootstrap percentile interval of the median of ``values`` ``(n,)``: the 2.5 % and
    97.5 % quantiles of the medians of ``resamples`` resamples of size ``n`` drawn with
    replacement (``numpy.random.default_rng(seed)``, so deterministic). About half of the
    resampled medians lie on each side of the sample median, so the interval contains it;
    ``None`` for ``n < 2``."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    medians = []
    for start in range(0, resamples, _BOOTSTRAP_CHUNK):
        rows = min(_BOOTSTRAP_CHUNK, resamples - start)
        medians.append(np.median(values[rng.integers(0, len(values), (rows, len(values)))], 1))
    low, high = np.quantile(np.concatenate(medians), [0.025, 0.975])
    return [float(low), float(high)]


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


def physics_summary(pde: PDE, fields: np.ndarray, consistency: bool = True) -> dict[str, Any]:
    """The physics measures of a set of fields ``(N, C, S, S)`` (docs/concepts.md, "Physics
    measures"), each a float or a 95 % interval ``[lo, hi]`` (``None`` if ``N < 2``):

    ``residual_mean`` / ``_median`` / ``residual_mean_ci`` (the raw mean squared residual, a
    diagnostic in physical units); ``relative_residual_mean`` / ``_median`` and their
    ``_ci``; ``solver_consistency`` (the mean) / ``solver_consistency_median`` and their
    ``_ci``, all ``None`` unless ``consistency``.
    """
    residual = per_sample_residual(pde, fields)
    relative = per_sample_relative_residual(pde, fields)
    out: dict[str, Any] = {
        "residual_mean": float(residual.mean()),
        "residual_median": float(np.median(residual)),
        "residual_mean_ci": mean_interval(residual),
        "relative_residual_mean": float(relative.mean()),
        "relative_residual_median": float(np.median(relative)),
        "relative_residual_mean_ci": mean_interval(relative),
        "relative_residual_median_ci": median_interval(relative),
    }
    consistent = solver_consistency(pde, fields) if consistency else None
    out.update(
        solver_consistency=None if consistent is None else float(consistent.mean()),
        solver_consistency_median=None if consistent is None else float(np.median(consistent)),
        solver_consistency_ci=None if consistent is None else mean_interval(consistent),
        solver_consistency_median_ci=None if consistent is None else median_interval(consistent),
    )
    return out


@dataclass
class EvalReport(Report):
    """The ``piddm eval --json`` keys (docs/cli.md), in this order; the first eleven are the
    original ones. ``solver_consistency`` is the mean (kept for compatibility) and every
    consistency key is ``None`` with ``--no-consistency``; ``*_ci`` are 95 % intervals
    ``[lo, hi]`` (module doc), ``None`` for fewer than 2 samples."""

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
    solver_consistency_median: float | None
    solver_consistency_ci: Interval
    solver_consistency_median_ci: Interval
    relative_residual_mean: float
    relative_residual_median: float
    relative_residual_mean_ci: Interval
    relative_residual_median_ci: Interval
    residual_mean_ci: Interval


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
    gen_n, ref_n = _normalised(pde, generated), _normalised(pde, reference)
    mmse, smse = moment_errors(gen_n, ref_n)
    sfd = frechet_distance(spectral_features(gen_n), spectral_features(ref_n))
    mmse_floor, smse_floor, sfd_floor = noise_floors(ref_n, len(generated), seed)
    return EvalReport(
        n=len(generated),
        reference_residual_mean=float(per_sample_residual(pde, reference).mean()),
        mmse=mmse,
        smse=smse,
        mmse_floor=mmse_floor,
        smse_floor=smse_floor,
        sfd=sfd,
        sfd_floor=sfd_floor,
        **physics_summary(pde, generated, consistency),
    )


def task_metrics_per_instance(
    pde: PDE, estimate: np.ndarray, truth: np.ndarray
) -> dict[str, np.ndarray | None]:
    """The task metrics of :func:`task_metrics` per instance, each ``(N,)`` (``error_rate``
    ``None`` unless the PDE has a threshold); ``residual`` is the mean squared residual."""
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    c, s = pde.coefficient_channel, pde.solution_channel
    if c == s:  # space-time field: the input is its first row
        coef_est, coef_true = estimate[:, c : c + 1, :1], truth[:, c : c + 1, :1]
    else:
        coef_est, coef_true = estimate[:, c : c + 1], truth[:, c : c + 1]
    threshold = pde.threshold
    return {
        "rel_l2_coefficient": relative_l2(coef_est, coef_true)[:, 0],
        "rel_l2_solution": relative_l2(estimate[:, s : s + 1], truth[:, s : s + 1])[:, 0],
        "error_rate": None
        if threshold is None
        else error_rate(estimate[:, c], truth[:, c], threshold),
        "residual": per_sample_residual(pde, estimate),
    }


def task_metrics(pde: PDE, estimate: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    """The ``piddm solve`` metrics of estimates ``(N, C, S, S)`` against the truth.

    ``rel_l2_coefficient`` / ``rel_l2_solution``: mean relative L2 of the coefficient and
    solution channels (Burgers: the initial row and the whole space-time field);
    ``error_rate``: the misclassified-node fraction of a two-valued coefficient (a PDE with a
    :attr:`~piddm.pdes.PDE.threshold`: Darcy), else ``None``;
    ``residual_mean``: mean squared residual of the estimates.
    """
    per_instance = task_metrics_per_instance(pde, estimate, truth)
    means = {k: None if v is None else float(v.mean()) for k, v in per_instance.items()}
    means["residual_mean"] = means.pop("residual")
    return means
