"""DiffusionPDE's data conventions: key names, channel encodings and decodings.

DiffusionPDE (Huang et al., NeurIPS 2024) released its 128^2 data as MATLAB files, one pair
of arrays ``(N, X, Y)`` per PDE; its training copy and the copies that FunDPS and DDIS train
on hold the same fields in encoded (scaled or normalised) units. This module only states
those conventions as data and applies them to arrays; reading and writing files is
:mod:`piddm.data.diffusionpde_io`. Every constant is cited, with the file it comes from, in
``docs/diffusionpde.md``.

Encodings are per-channel affine maps ``encoded = f(physical)`` on ``(..., S, S)`` arrays; a
:class:`ChannelCode` holds one and its inverse, written with the same floating-point
operations as the code that wrote (or reads) the encoded files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from piddm.errors import PiddmError

#: The PDEs whose DiffusionPDE data piddm imports (their discretisation matches piddm's).
PDES: tuple[str, ...] = ("darcy", "poisson", "helmholtz")

#: ``pde -> (coefficient key, solution key)`` of the released MATLAB files.
MAT_KEYS: dict[str, tuple[str, str]] = {
    "darcy": ("thresh_a_data", "thresh_p_data"),
    "poisson": ("f_data", "phi_data"),
    "helmholtz": ("f_data", "psi_data"),
}
#: Extra keys the Darcy generator saves next to the thresholded pair (log-normal variant).
DARCY_EXTRA_KEYS: tuple[str, ...] = ("lognorm_a_data", "lognorm_p_data")
#: Key sets of DiffusionPDE's other PDEs, which piddm does not import, and why.
UNSUPPORTED_KEYS: dict[tuple[str, ...], str] = {
    ("input", "output"): "Burgers' equation (another domain, initial condition and time grid "
    "than piddm's burgers)",
    ("a", "u"): "the non-bounded Navier-Stokes equation (no piddm PDE)",
}

#: Darcy's two coefficient values and DiffusionPDE's decoding threshold between them.
DARCY_LOW, DARCY_HIGH, DARCY_THRESHOLD = 3.0, 12.0, 7.5
#: The PDE parameters DiffusionPDE's data was generated with (piddm's defaults).
PARAMS: dict[str, dict[str, float]] = {
    "darcy": {"a_low": DARCY_LOW, "a_high": DARCY_HIGH, "forcing": 1.0},
    "poisson": {},
    "helmholtz": {"k": 1.0},
}


@dataclass(frozen=True)
class ChannelCode:
    """``encoded = physical * mul + add`` for one channel; :meth:`decode` inverts it.

    The decoding is ``(x - add) / mul`` (DiffusionPDE's ``(x + 1.5) / 0.2`` form), or
    ``x * inv`` when the source publishes the reciprocal constant ``inv`` (its ``x * 2.15``
    form), so that decoding repeats the source's floating-point operations.
    """

    mul: float
    add: float = 0.0
    inv: float | None = None  # decode as ``x * inv`` (a published constant) instead

    def encode(self, physical: np.ndarray) -> np.ndarray:
        """Physical ``(..., S, S)`` -> encoded, float64."""
        return np.asarray(physical, dtype=np.float64) * self.mul + self.add

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded ``(..., S, S)`` -> physical, float64."""
        x = np.asarray(encoded, dtype=np.float64)
        if self.inv is not None:
            return x * self.inv
        return (x - self.add) / self.mul


@dataclass(frozen=True)
class StatsCode:
    """FunDPS / DDIS normalisation of one channel: ``encoded = (x - mean) * (0.5 / std)``,
    decoded as ``encoded / (0.5 / std) + mean`` (their ``DatasetNormalizer``)."""

    mean: float
    std: float

    def encode(self, physical: np.ndarray) -> np.ndarray:
        return (np.asarray(physical, dtype=np.float64) - self.mean) * (0.5 / self.std)

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(encoded, dtype=np.float64) / (0.5 / self.std) + self.mean


#: DiffusionPDE's own training encoding (``merge_data.py`` for Darcy; the inverses of the
#: decodings in ``scripts/generate_poisson.py`` / ``generate_helmholtz.py`` for the others).
DIFFUSIONPDE_CODES: dict[str, tuple[ChannelCode, ChannelCode]] = {
    "darcy": (ChannelCode(0.2, -1.5), ChannelCode(115.0, -0.9)),
    "poisson": (ChannelCode(1 / 2.15, inv=2.15), ChannelCode(36.5)),
    "helmholtz": (ChannelCode(1 / 2.15, inv=2.15), ChannelCode(1 / 0.028, inv=0.028)),
}

#: FunDPS's ``STATS`` (``utils/dataset_prop.py``, version 2.0), also DDIS's.
FUNDPS_CODES: dict[str, tuple[StatsCode, StatsCode]] = {
    "darcy": (StatsCode(7.5, 4.5), StatsCode(5.69201936e-03, 3.79030361e-03)),
    "poisson": (StatsCode(0.0, 0.2919494), StatsCode(9.67226952e-06, 0.00417478)),
    "helmholtz": (StatsCode(0.0, 0.2844538), StatsCode(1.05050595e-05, 0.00428004)),
}

#: ``layout -> (pde -> (coefficient code, solution code))`` of the encoded layouts.
ENCODINGS: dict[str, dict[str, tuple[ChannelCode, ChannelCode] | tuple[StatsCode, StatsCode]]]
ENCODINGS = {"diffusionpde-npy": DIFFUSIONPDE_CODES, "fundps-npy": FUNDPS_CODES}
#: One-line description of each layout's encoding (recorded with imported datasets).
ENCODING_NOTES: dict[str, str] = {
    "diffusionpde-mat": "physical units",
    "diffusionpde-npy": "DiffusionPDE's training scaling (merge_data.py; generate_*.py)",
    "fundps-npy": "FunDPS/DDIS normalisation (x - mean) * 0.5 / std (dataset_prop.py STATS)",
}
#: Largest distance of a decoded Darcy coefficient from 3 or 12 that counts as binary.
DARCY_DECODE_TOLERANCE = 1e-3


def mat_pde(keys: set[str] | list[str], path: str) -> str:
    """The PDE whose key pair a MATLAB file ``path`` with variables ``keys`` holds.

    Raises :class:`PiddmError` for DiffusionPDE's unsupported PDEs, for an ambiguous file
    (both Poisson's and Helmholtz's solution keys) and for a file with no known pair.
    """
    names = set(keys)
    found = [pde for pde, pair in MAT_KEYS.items() if set(pair) <= names]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise PiddmError(
            f"{path} holds the keys of {' and '.join(found)}; pass --pde to choose one"
        )
    for pair, what in UNSUPPORTED_KEYS.items():
        if set(pair) <= names:
            raise PiddmError(
                f"{path} holds DiffusionPDE's data of {what} (keys {', '.join(pair)}); "
                f"piddm imports {', '.join(PDES)} only (docs/diffusionpde.md)"
            )
    expected = "; ".join(f"{'/'.join(pair)} ({pde})" for pde, pair in MAT_KEYS.items())
    shown = ", ".join(sorted(names)) or "none"
    raise PiddmError(f"{path} holds no DiffusionPDE key pair (keys: {shown}); expected {expected}")


def decode(layout: str, pde: str, coefficient: np.ndarray, solution: np.ndarray) -> np.ndarray:
    """Physical fields ``(N, 2, S, S)`` float64 from the two channels ``(N, S, S)`` of a
    ``layout`` (physical for ``diffusionpde-mat``, else decoded with :data:`ENCODINGS`)."""
    a = np.asarray(coefficient, dtype=np.float64)
    u = np.asarray(solution, dtype=np.float64)
    if layout in ENCODINGS:
        code_a, code_u = ENCODINGS[layout][pde]
        a, u = code_a.decode(a), code_u.decode(u)
    return np.stack([a, u], axis=1)


def encode(layout: str, pde: str, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two channels ``(N, S, S)`` float64 of physical ``fields`` ``(N, 2, S, S)`` in
    ``layout``'s units (the inverse of :func:`decode`, up to rounding)."""
    a = np.asarray(fields[:, 0], dtype=np.float64)
    u = np.asarray(fields[:, 1], dtype=np.float64)
    if layout in ENCODINGS:
        code_a, code_u = ENCODINGS[layout][pde]
        return code_a.encode(a), code_u.encode(u)
    return a, u


def binary_darcy_coefficient(a: np.ndarray, exact: bool, where: str) -> np.ndarray:
    """Darcy's coefficient ``(N, S, S)`` as exactly 3 / 12, DiffusionPDE's decoding
    (``12`` where ``a > 7.5``, else ``3``).

    ``exact``: the values must already be exactly 3 or 12 (physical files); else each must lie
    within :data:`DARCY_DECODE_TOLERANCE` of one of them (decoded files, whose encoding does
    not round-trip exactly). Raises :class:`PiddmError` naming ``where`` otherwise.
    """
    a = np.asarray(a, dtype=np.float64)
    distance = np.minimum(np.abs(a - DARCY_LOW), np.abs(a - DARCY_HIGH))
    bad = distance > (0.0 if exact else DARCY_DECODE_TOLERANCE)
    if bad.any():
        example = float(a[bad].flat[0])
        raise PiddmError(
            f"{where}: the Darcy coefficient holds values other than 3 and 12 (e.g. "
            f"{example:.6g}); not DiffusionPDE's thresholded coefficient in this encoding"
        )
    return np.where(a > DARCY_THRESHOLD, DARCY_HIGH, DARCY_LOW)
