"""The commands' option defaults are their typed configs' (one default per setting; the
solve options' are checked in tests/tasks/test_latent.py)."""

from __future__ import annotations

import dataclasses

import click

from piddm.commands import demo
from piddm.demo import DEMO_SEED, DemoSettings


def test_demo_defaults_are_demo_settings():
    defaults = {p.name: p.default for p in demo.command.params if isinstance(p, click.Option)}
    fields = {f.name: f.default for f in dataclasses.fields(DemoSettings)}
    names = [name for name in fields if name not in ("seed", "teacher", "student")]
    assert {name: defaults[name] for name in names} == {name: fields[name] for name in names}
    assert fields["seed"] == DEMO_SEED and defaults["seed"] is None  # None: DemoSettings' seed
