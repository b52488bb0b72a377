"""What ``piddm train`` and ``piddm distill`` share beyond their options: the config overrides
of their flags and the report of a finished run."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import click

from piddm.commands.options import settings_from_params
from piddm.config import parse_overrides
from piddm.jsonio import emit_json
from piddm.training.loop import TrainResult
from piddm.training.session import RunOptions


def run_overrides(overrides: tuple[str, ...], flags: dict[str, Any]) -> dict[str, Any]:
    """The ``--set KEY=VALUE`` overrides, then the flags given (not ``None``) of ``flags``
    (dotted config key -> flag value, e.g. ``{"train.steps": steps}``): a flag wins."""
    extra = parse_overrides(overrides)
    extra.update({key: value for key, value in flags.items() if value is not None})
    return extra


def run_options() -> dict[str, Any]:
    """The keywords of :class:`~piddm.training.session.RunOptions` (what ``train`` and
    ``distill`` take besides the config) from the running command's flags ``--run-dir``,
    ``--resume``, ``--overwrite``, ``--device`` and ``--progress``."""
    return dataclasses.asdict(settings_from_params(RunOptions))


def report_run(result: TrainResult, as_json: bool, verb: str, with_loss: bool) -> None:
    """Print a finished run, on rank 0 only (under ``torchrun`` the other ranks print nothing):
    its JSON with ``as_json``, else ``<verb> N steps in T s (loss L, sample residual R);
    weights: PATH`` (the loss only ``with_loss``)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return
    if as_json:
        emit_json(result.to_json())
        return
    residual = result.extra.get("sample_residual_mean")
    tail = f", sample residual {residual:.4g}" if residual is not None else ""
    if with_loss:
        loss = f"{result.loss:.5g}" if result.loss is not None else "n/a"
        tail = f" (loss {loss}{tail})"
    click.echo(
        f"{verb} {result.steps} steps in {result.seconds:.1f} s{tail}; weights: {result.checkpoint}"
    )
