"""The ``piddm`` command: one entry point, sub-commands registered from :mod:`piddm.commands`.

One error path: user errors (:class:`PiddmError`, bad flags, an allocation the machine cannot
serve) print ``error: <message>`` on one line and exit 2; a training run stopped by SIGTERM /
SIGINT (:class:`TrainingInterrupted`) prints one line and exits ``128 + signum``; internal
errors exit 1 and show a traceback only under ``--debug``.
"""

from __future__ import annotations

import re
import sys
import traceback

import click

from piddm.commands import COMMANDS
from piddm.errors import PiddmError, TrainingInterrupted
from piddm.jsonio import emit_json

__all__ = ["cli", "emit_json", "main", "out_of_memory_message"]

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(package_name="piddm", prog_name="piddm")
def cli(debug: bool) -> None:
    """piddm: physics-informed distillation of diffusion models for PDE-constrained generation.

    Generate solver-backed PDE data, train an EDM teacher, distil it into a one-step student
    whose samples satisfy the PDE, and solve forward / inverse problems from sparse
    observations. Every command takes --help; with --json a command prints one JSON object.
    """


def _register_commands() -> None:
    for command in COMMANDS:
        cli.add_command(command)


def out_of_memory_message(detail: str) -> str:
    """One line for an allocation the machine cannot serve (``detail``: the allocator's)."""
    # torch's CPU allocator says "[enforce fail at ...] ... you tried to allocate N bytes. ..."
    wanted = re.search(r"tried to allocate ([^.]+)", detail)
    detail = wanted.group(0) if wanted else " ".join(detail.split())
    return (
        f"error: out of memory{f' ({detail})' if detail else ''}; use a smaller --n, "
        "--batch-size, --ensemble, --candidates or resolution"
    )


def _is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, or torch's failed allocation: a RuntimeError on CPU, its
    OutOfMemoryError on CUDA."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and map errors to exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _register_commands()
    try:
        code = cli.main(args=args, prog_name="piddm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:  # bad flags, missing arguments, bad parameter values
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        code = EXIT_USER_ERROR
    except PiddmError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_USER_ERROR
    except TrainingInterrupted as exc:
        click.echo(str(exc), err=True)
        code = exc.exit_code
    except (KeyboardInterrupt, click.Abort):
        click.echo("error: interrupted", err=True)
        code = 130
    except Exception as exc:  # an internal error (a bug, not the user's fault), unless OOM
        if _is_out_of_memory(exc):  # the job asked for more memory than the machine has
            click.echo(out_of_memory_message(str(exc)), err=True)
            code = EXIT_USER_ERROR
        else:
            if debug:
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(
                f"error: internal error: {type(exc).__name__}: {first} (rerun with --debug)",
                err=True,
            )
            code = EXIT_INTERNAL_ERROR
    sys.exit(code if isinstance(code, int) else 0)
