"""JSON output of the commands and the bench: one encoder for numbers and paths.

``--json`` prints one object on one line, keys sorted (:func:`emit_json`); ``bench.json``
is written with the same encoder (:func:`json_default`). A leaf module: the CLI, its
commands and :mod:`piddm.bench` all import it, and it imports nothing of piddm.
"""

from __future__ import annotations

import json
from typing import Any

import click


def json_default(value: Any) -> Any:
    """``json.dumps``' ``default``: numpy / torch scalars (``.item()``) as numbers, paths
    (``os.PathLike``) as strings; anything else raises :class:`TypeError`."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(payload: dict[str, Any]) -> None:
    """Print one JSON object on stdout (the ``--json`` contract)."""
    click.echo(json.dumps(payload, sort_keys=True, default=json_default))
