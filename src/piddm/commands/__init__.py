"""The sub-commands of ``piddm``; each module defines one click ``command``."""

from __future__ import annotations

import click

from piddm.commands import amortise, bench, data, demo, distill, evaluate, sample, solve, train

COMMANDS: list[click.Command] = [
    data.command,
    train.command,
    distill.command,
    amortise.command,
    sample.command,
    evaluate.command,
    solve.command,
    bench.command,
    demo.command,
]
