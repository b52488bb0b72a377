"""Click options shared by several commands: each flag declared once (type, default, help),
parametrised where commands word its help differently."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

#: What :func:`click.option` returns: a decorator adding the option to a command.
Decorator = Callable[[Any], Any]
T = TypeVar("T")


def stack(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators`` as if written one above the other, so that their
    options appear in ``--help`` in this order."""

    def apply(function: Any) -> Any:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def device_flag(
    default: str | None = "auto", help: str = "Where to run (auto: CUDA if available)."
) -> Decorator:
    """``--device`` (``auto``, ``cpu``, ``cuda``); ``default=None`` where a config chooses
    unless the flag is given."""
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default=default,
        show_default=default is not None,
        help=help,
    )


def json_flag(help: str = "Print a JSON summary on stdout.") -> Decorator:
    """``--json`` (the parameter ``as_json``): print one JSON object instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def path_option(
    flag: str,
    *decls: str,
    kind: Literal["file", "dir"] = "file",
    as_path: bool = False,
    **extra: Any,
) -> Decorator:
    """``flag`` naming a file (``kind="dir"``: a directory), ``None`` unless given; ``as_path``
    passes a :class:`~pathlib.Path` instead of a ``str``; ``extra`` goes to
    :func:`click.option` (``required``, ``help``)."""
    path = click.Path(
        file_okay=kind == "file", dir_okay=kind == "dir", path_type=Path if as_path else None
    )
    return click.option(flag, *decls, type=path, **extra)


def out_option(help: str = "Output .h5 file.") -> Decorator:
    """The required ``--out FILE`` of a command that writes one file."""
    return path_option("--out", required=True, help=help)


def overwrite_option(help: str = "Replace an existing output file.") -> Decorator:
    """``--overwrite``: replace what a command would otherwise refuse to write over."""
    return click.option("--overwrite", is_flag=True, help=help)


def config_option(help: str, required: bool = True) -> Decorator:
    """``--config FILE`` (the parameter ``config_path``, a :class:`~pathlib.Path`): a YAML
    config."""
    return path_option("--config", "config_path", as_path=True, required=required, help=help)


def run_dir_options(run_dir_help: str | None, steps_help: str, resume_help: str) -> Decorator:
    """``--run-dir``, ``--steps``, ``--resume`` and ``--overwrite`` of a training run
    (``piddm train``, ``piddm distill``; :class:`piddm.training.session.RunOptions`)."""
    return stack(
        path_option("--run-dir", kind="dir", as_path=True, help=run_dir_help),
        click.option("--steps", type=click.IntRange(min=1), help=steps_help),
        click.option("--resume", is_flag=True, help=resume_help),
        overwrite_option("Delete the checkpoints of an existing run dir."),
    )


def override_options(example: str) -> Decorator:
    """``--set KEY=VALUE`` (repeatable; the parameter ``overrides``, ``example`` in its help)
    and ``--progress/--no-progress`` of a training run."""
    return stack(
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help=f"Override a config setting, e.g. --set {example} (repeatable).",
        ),
        click.option("--progress/--no-progress", default=True, help="Progress bar on stderr."),
    )


device_option = device_flag()
json_option = json_flag()
quiet_option = click.option("--quiet", is_flag=True, help="Hide the progress bar.")
model_option = click.option(
    "--model",
    required=True,
    help="Checkpoint: a .safetensors file, a run directory or a pretrained name (darcy-32-piddm).",
)


class Int64(click.ParamType):
    """An integer flag that fits a signed 64-bit integer (what numpy and torch take).

    Shown as ``INTEGER`` in ``--help`` like click's own ``int``; out-of-range values are a
    usage error (exit 2) instead of an overflow deep inside numpy or torch.
    """

    name = "integer"

    def __init__(self, low: int = -(2**63), high: int = 2**63 - 1, what: str = "") -> None:
        self.low, self.high, self.what = low, high, what

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip(), 10)
            except ValueError:
                self.fail(f"{value!r} is not a valid integer.", param, ctx)
        if not self.low <= number <= self.high:
            bounds = self.what or f"in [{self.low}, {self.high}]"
            self.fail(f"{number} is not {bounds}.", param, ctx)
        return number


#: Integer flags: any 64-bit integer (commands check their own, tighter ranges).
INT64 = Int64(what="a 64-bit integer")
#: ``--seed``: a non-negative 64-bit integer (numpy's SeedSequence and torch take it).
SEED = Int64(0, 2**63 - 1, "a seed in [0, 2**63)")


def default_option(
    flag: str, settings: object, type: click.ParamType | type = float, help: str | None = None
) -> Decorator:
    """``flag`` whose default is the same-named field of ``settings`` (a typed config class or
    instance: ``--lambda-infer`` reads ``settings.lambda_infer``), shown in ``--help``: the one
    default of the setting stays in its config."""
    name = flag.lstrip("-").replace("-", "_")
    return click.option(
        flag, type=type, default=getattr(settings, name), show_default=True, help=help
    )


def settings_from_params(cls: type[T], base: T | None = None, **overrides: Any) -> T:
    """The dataclass ``cls`` with each field named like an option of the running command set
    to that option's value (``--lambda-infer`` -> ``lambda_infer``), then ``overrides``; other
    fields keep their defaults. With a ``base`` instance, options left at their default
    take ``base``'s value instead (another set of defaults, e.g. ``piddm solve --start``'s).
    The counterpart of :func:`default_option`."""
    ctx = click.get_current_context()
    names = [f.name for f in dataclasses.fields(cls) if f.name in ctx.params]
    values = {name: ctx.params[name] for name in names}
    if base is not None:
        for name in names:
            if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
                values[name] = getattr(base, name)
    return cls(**{**values, **overrides})
