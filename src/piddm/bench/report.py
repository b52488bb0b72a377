"""The benchmark's one markdown table.

A mean is printed as ``mean ± h``, ``h`` the half-width of its 95 % interval (the row's
``*_ci`` key: over the samples for generation, over the instances for tasks; see
:mod:`piddm.metrics`), a median without one; a mean without an interval (one instance)
alone. Solver consistency and the relative residual are scale-free (docs/concepts.md,
"Physics measures"); the raw residual is a diagnostic in physical units.
"""

from __future__ import annotations

from typing import Any

from piddm.bench.runner import row_label

COLUMNS: tuple[str, ...] = (
    "method",
    "task",
    "NFE",
    "s/sample",
    "solver consistency median / mean",
    "rel. residual median / mean",
    "residual (diagnostic) mean / median",
    "MMSE (x floor)",
    "SMSE (x floor)",
    "SFD (x floor)",
    "rel L2 coef / sol",
    "error rate",
)
DASH = "-"


def _num(value: float | None, spec: str = ".3g") -> str:
    return DASH if value is None else format(value, spec)


def _nfe(value: float | None) -> str:
    if value is None:
        return DASH
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _vs_floor(value: float | None, floor: float | None) -> str:
    if value is None:
        return DASH
    if not floor:
        return f"{value:.2e}"
    return f"{value:.2e} ({value / floor:.1f}x)"


def _mean(row: dict[str, Any], key: str, spec: str) -> str:
    """``row[key]`` with the half-width of its interval ``row[key + '_ci']``: ``m ± h``."""
    value, ci = row.get(key), row.get(f"{key}_ci")
    if value is None or ci is None:
        return _num(value, spec)
    return f"{format(value, spec)} ± {format((ci[1] - ci[0]) / 2, spec)}"


def _pair(a: float | str | None, b: float | str | None, spec: str) -> str:
    """``a / b``; each a number (formatted with ``spec``), an already formatted cell, or
    ``None``; a dash if both are ``None``."""
    if a is None and b is None:
        return DASH
    cells = [x if isinstance(x, str) else _num(x, spec) for x in (a, b)]
    return f"{cells[0]} / {cells[1]}"


def table_row(row: dict[str, Any]) -> list[str]:
    """The cells of one row (unsupported rows say so)."""
    if not row["supported"]:
        return [row_label(row), row["task"], "unsupported", *[DASH] * (len(COLUMNS) - 3)]
    return [
        row_label(row),
        row["task"],
        _nfe(row["nfe"]),
        _num(row["seconds_per_sample"], ".3g"),
        _median_mean(row, "solver_consistency_median", "solver_consistency"),
        _median_mean(row, "relative_residual_median", "relative_residual_mean"),
        _pair(_cell(row, "residual_mean", ".2e"), row["residual_median"], ".2e"),
        _vs_floor(row["mmse"], row["mmse_floor"]),
        _vs_floor(row["smse"], row["smse_floor"]),
        _vs_floor(row["sfd"], row["sfd_floor"]),
        _pair(*(_cell(row, k, ".3f") for k in ("rel_l2_coefficient", "rel_l2_solution")), ".3f"),
        _mean(row, "error_rate", ".3f"),
    ]


def _cell(row: dict[str, Any], key: str, spec: str) -> str | None:
    """:func:`_mean` of ``key``, or ``None`` if the row has no value for it."""
    return None if row.get(key) is None else _mean(row, key, spec)


def _median_mean(row: dict[str, Any], median: str, mean: str) -> str:
    """``median / mean ± h`` of a scale-free measure (a dash if not measured)."""
    return _pair(row.get(median), _cell(row, mean, ".2e"), ".2e")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One markdown table of all rows (generation first, then each task)."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(table_row(row)) + " |" for row in rows]
    return "\n".join(lines)
