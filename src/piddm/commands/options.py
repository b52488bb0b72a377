"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run (auto: CUDA if available).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary on stdout."
)
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
) -> Callable[[Any], Any]:
    """``flag`` whose default is the same-named field of ``settings`` (a typed config class or
    instance: ``--lambda-infer`` reads ``settings.lambda_infer``), shown in ``--help``: the one
    default of the setting stays in its config."""
    name = flag.lstrip("-").replace("-", "_")
    return click.option(
        flag, type=type, default=getattr(settings, name), show_default=True, help=help
    )
