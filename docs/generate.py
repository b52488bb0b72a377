"""Regenerate the generated pages of ``docs/`` from the code, so they cannot drift.

* ``docs/cli.md``: the ``--help`` of every ``piddm`` command and sub-command;
* ``docs/configuration.md``: every config key from the dataclasses of ``piddm.config``;
* ``docs/errors.md``: exit codes and every :class:`~piddm.errors.PiddmError` message in
  ``src/piddm``, extracted from the source with :mod:`ast` (f-string placeholders kept as
  ``{...}``), grouped by area, with the function that raises it.

Usage::

    python docs/generate.py          # rewrite the pages that changed
    python docs/generate.py --check  # exit 1 and name the stale pages, write nothing

``tests/test_docs.py`` runs the check, so a change to a command, a config key or an error
message fails the tests until the pages are regenerated.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

DOCS = Path(__file__).resolve().parent
SRC = DOCS.parent / "src" / "piddm"

#: Width of the help text (click's default on a terminal of 100+ columns, capped by the CLI's
#: ``max_content_width=100``).
HELP_WIDTH = 98


# ----------------------------------------------------------------------------- cli.md
CLI_HEADER = """\
# CLI reference

Generated from `piddm ... --help` by `docs/generate.py`. Every command prints one JSON object
with `--json`; user errors print one line `error: ...` and exit 2; internal errors exit 1
(tracebacks with `piddm --debug ...`). See [errors.md](errors.md) for every message.
"""


def _commands() -> Iterator[tuple[str, click.Context]]:
    """``(command path, context)`` of the root group and every command, depth first in
    registration order (sub-commands of a group in click's listing order)."""
    from piddm.cli import _register_commands, cli

    _register_commands()

    def walk(command: click.Command, parent: click.Context | None, name: str) -> Iterator:
        settings = {"terminal_width": HELP_WIDTH, **command.context_settings}
        ctx = click.Context(command, info_name=name, parent=parent, **settings)
        yield ctx.command_path, ctx
        if isinstance(command, click.Group):
            names = command.list_commands(ctx) if parent is not None else list(command.commands)
            for sub in names:
                yield from walk(command.commands[sub], ctx, sub)

    yield from walk(cli, None, "piddm")


def render_cli() -> str:
    """The text of ``docs/cli.md``."""
    parts = [CLI_HEADER]
    for path, ctx in _commands():
        help_text = ctx.command.get_help(ctx).rstrip()
        parts.append(f"## `{path}`\n\n```text\n{help_text}\n```\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- configuration.md
CONFIG_HEADER = """\
# Configuration reference

Run configs are YAML files with one section per table below (`configs/` has one per PDE and
hardware tier). Every key except `pde.name` has a default; unknown keys (with a
did-you-mean), wrong types and out-of-range values are refused with a one-line error naming
the key before any work starts (numbers must be finite, integers below 2**63). Any key can be
overridden on the command line with `--set section.key=value`, and `piddm train --config
FILE --dry-run` checks a config, its dataset and its network without training.

`kind` is `teacher` (`piddm train`), `piddm` or `pid` (`piddm distill`), or `start` (`piddm
amortise`: a student's amortised start network, whose `net` section sizes its own U-Net and
whose `start` section says what it trains on). A student's architecture and noise schedule
come from its teacher's checkpoint.
"""

CONFIG_FOOTER = (
    "This file is generated from `src/piddm/config.py` by `docs/generate.py` (the dataclasses\n"
    "are the source of truth).\n"
)


def _type_name(tp: Any) -> str:
    """``int``, ``str or None``, ``tuple[int, ...]``, ``dict[str, float]``, ..."""
    args = typing.get_args(tp)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return " or ".join([*(_type_name(a) for a in inner), "None"])
    if typing.get_origin(tp) is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if args:
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return repr(f.default_factory())
    return "(required)"


def render_configuration() -> str:
    """The text of ``docs/configuration.md``."""
    from piddm.config import Config

    parts = [CONFIG_HEADER]
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        cls = hints[section.name]
        if not dataclasses.is_dataclass(cls):
            continue  # kind: described in the header
        rows = ["| key | type | default | check |", "|---|---|---|---|"]
        field_hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            check = f.metadata.get("check")
            rows.append(
                f"| `{f.name}` | `{_type_name(field_hints[f.name])}` | `{_default(f)}` | "
                f"{check.describe('number') if check is not None else ''} |"
            )
        doc = inspect.cleandoc(cls.__doc__ or "")
        parts.append(f"## `{section.name}`\n\n{doc}\n\n" + "\n".join(rows) + "\n")
    parts.append(CONFIG_FOOTER)
    return "\n".join(parts)


# ----------------------------------------------------------------------------- errors.md
#: Human-readable area of a source file, by path prefix under ``src/piddm`` (first match).
AREAS: list[tuple[str, str]] = [
    ("commands/options.py", "Command-line flags"),
    ("cli.py", "Command-line flags"),
    ("config.py", "Run configuration (YAML, `--set`)"),
    ("commands/train.py", "`piddm train`"),
    ("training/", "Training runs (`piddm train`, `piddm distill`)"),
    ("commands/distill.py", "`piddm distill`"),
    ("distill/", "Distillation (`piddm distill`)"),
    ("commands/data.py", "`piddm data`"),
    ("data/", "Datasets (HDF5 files, `piddm data`)"),
    ("pdes/", "PDEs, grids and PDE parameters"),
    ("checkpoint.py", "Checkpoints and models (`--model`, `--teacher`)"),
    ("models.py", "Checkpoints and models (`--model`, `--teacher`)"),
    ("pretrained", "Checkpoints and models (`--model`, `--teacher`)"),
    ("export.py", "Checkpoints and models (`--model`, `--teacher`)"),
    ("nets/", "Network architecture (config `net`)"),
    ("diffusion/", "Diffusion sampling"),
    ("commands/sample.py", "`piddm sample`"),
    ("sampling.py", "Sampling (`piddm sample`)"),
    ("commands/solve.py", "`piddm solve`"),
    ("commands/amortise.py", "`piddm amortise`"),
    ("tasks/amortise.py", "`piddm amortise`"),
    ("tasks/", "Tasks and observation files (`piddm solve`)"),
    ("commands/evaluate.py", "`piddm eval`"),
    ("metrics.py", "Metrics (`piddm eval`)"),
    ("commands/bench.py", "`piddm bench`"),
    ("bench/", "Benchmarks (`piddm bench`)"),
    ("baselines/", "Baselines (`piddm bench`)"),
    ("commands/demo.py", "`piddm demo`"),
    ("demo.py", "`piddm demo`"),
    ("atomic.py", "Output files (`--out`, `--overwrite`)"),
    ("plotting.py", "Figures"),
]


@dataclasses.dataclass(frozen=True)
class ErrorSite:
    """One construction of a user error in the source."""

    area: str
    module: str  # path under src/piddm
    function: str  # enclosing function (Class.method), or <module>
    line: int
    message: str


def _area(module: str) -> str:
    for prefix, title in AREAS:
        if module.startswith(prefix):
            return title
    return f"`{module}`"


def _error_classes(trees: dict[str, ast.Module]) -> set[str]:
    """``PiddmError`` and every class deriving from it (by name, transitively)."""
    names = {"PiddmError"}
    changed = True
    while changed:
        changed = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in names:
                    bases = {
                        b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                        for b in node.bases
                    }
                    if bases & names:
                        names.add(node.name)
                        changed = True
    return names


def _placeholder(node: ast.expr) -> str:
    return "{" + ast.unparse(node) + "}"


def render_message(node: ast.expr | None) -> str:
    """A message expression as readable text: literals verbatim, expressions as ``{expr}``."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        out = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                out.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                out.append(_placeholder(value.value))
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return render_message(node.left) + render_message(node.right)
    return _placeholder(node)


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _sites_in(module: str, tree: ast.Module, classes: set[str]) -> Iterator[ErrorSite]:
    def visit(node: ast.AST, scope: list[str]) -> Iterator[ErrorSite]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call) and _call_name(child) in classes:
                arg = child.args[0] if child.args else None
                message = " ".join(render_message(arg).split())
                if message:
                    function = ".".join(scope) or "<module>"
                    yield ErrorSite(_area(module), module, function, child.lineno, message)
            yield from visit(child, scope)

    yield from visit(tree, [])


def error_sites(root: Path = SRC) -> list[ErrorSite]:
    """Every user-error message constructed in the package under ``root``, in source order."""
    trees = {
        path.relative_to(root).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(root.rglob("*.py"))
    }
    classes = _error_classes(trees)
    sites: list[ErrorSite] = []
    for module, tree in trees.items():
        sites += _sites_in(module, tree, classes)
    return sites


def _cell(text: str) -> str:
    """``text`` as a code span inside a markdown table cell."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _interrupted_example() -> str:
    try:
        import signal

        from piddm.errors import TrainingInterrupted

        return str(TrainingInterrupted(signal.SIGTERM, 1200))
    except (ImportError, TypeError, ValueError):  # an older / changed errors module
        return "interrupted by SIGTERM at step N; checkpoint saved, continue with --resume"


ERRORS_HEADER = """\
# Errors and exit codes

Generated by `docs/generate.py` from the source: every user error that `piddm` can report,
with the function that raises it. `{{...}}` stands for a value filled in at run time (a path,
a key, the offending value).

## Exit codes

{exit_codes}

A run interrupted with 143 or 130 continues exactly where it stopped with the same command
and `--resume`. Output files are written atomically: after any error (or interruption) an
output either does not exist or is complete.

## Command-line usage errors (exit 2)

Reported by the command-line parser for every command; for example (these lines are
produced by running the commands when this page is generated):

{usage}

## Messages by area
"""


#: ``(exit code, when, stderr)`` rows of the exit-code table.
EXIT_CODES: list[tuple[str, str, str]] = [
    ("0", "success", "progress bars only"),
    (
        "2",
        "a user error: bad flags, bad config, a missing / foreign / corrupt file, a model that "
        "does not fit the data, a job too large for the memory",
        "one line `error: <message>` (the tables below)",
    ),
    (
        "1",
        "an internal error (a bug: please report it)",
        "one line `error: internal error: <Type>: <message> (rerun with --debug)`; "
        "`piddm --debug ...` prints the traceback",
    ),
    (
        "143",
        "training (`piddm train` / `piddm distill`) stopped by SIGTERM (e.g. a cluster's time "
        "limit) after saving a checkpoint",
        "one line, e.g. `{interrupted}`",
    ),
    (
        "130",
        "stopped by SIGINT (Ctrl-C): training saves a checkpoint as for SIGTERM; other "
        "commands stop at once",
        "the same line with `SIGINT`, or `error: interrupted`",
    ),
]


def _exit_code_table() -> str:
    rows = ["| exit | when | stderr |", "|---|---|---|"]
    interrupted = _interrupted_example()
    for code, when, stderr in EXIT_CODES:
        rows.append(f"| {code} | {when} | {stderr.format(interrupted=interrupted)} |")
    return "\n".join(rows)


#: ``(argv, when)``: command lines run to show the parser's own messages.
USAGE_EXAMPLES: list[tuple[list[str], str]] = [
    (["sample", "--n", "1", "--out", "x.h5"], "a required flag is absent"),
    (["sample", "--ouput", "x.h5"], "a misspelt flag"),
    (["data", "generate", "darcy", "-s", "ten"], "a value of the wrong type"),
    (["sample", "--seed", "-1"], "a seed out of range"),
    (["sample", "--n", str(2**64)], "an integer too large"),
    (["solve", "fwd"], "a bad choice"),
    (["trian"], "a misspelt command"),
    (["eval", "--samples", "a.h5", "--reference", "b.h5", "c.h5"], "a stray argument"),
]


def _usage_line(argv: list[str]) -> str:
    """The stderr line of ``piddm ARGV`` (run in-process; it fails while parsing)."""
    import contextlib
    import io

    from piddm.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
    return err.getvalue().strip()


def _usage_table() -> str:
    rows = ["| example message | when |", "|---|---|"]
    for argv, when in USAGE_EXAMPLES:
        rows.append(f"| {_cell(_usage_line(argv))} | {when} |")
    from piddm.cli import out_of_memory_message

    memory = out_of_memory_message("...")
    rows.append(f"| {_cell(memory)} | the job does not fit in memory |")
    return "\n".join(rows)


def render_errors(root: Path = SRC) -> str:
    """The text of ``docs/errors.md``."""
    sites = error_sites(root)
    order = {title: i for i, (_, title) in enumerate(AREAS)}
    by_area: dict[str, list[ErrorSite]] = {}
    for site in sites:
        by_area.setdefault(site.area, []).append(site)
    header = ERRORS_HEADER.format(exit_codes=_exit_code_table(), usage=_usage_table())
    parts = [header]
    for area in sorted(by_area, key=lambda a: (order.get(a, len(order)), a)):
        rows = ["| message (`error: ...`) | raised in |", "|---|---|"]
        seen: set[tuple[str, str, str]] = set()
        for site in by_area[area]:
            key = (site.module, site.function, site.message)
            if key in seen:
                continue
            seen.add(key)
            where = f"`{site.module}` {_cell(site.function)}"
            rows.append(f"| {_cell(site.message)} | {where} |")
        parts.append(f"### {area}\n\n" + "\n".join(rows) + "\n")
    parts.append(f"{len(sites)} messages in total.\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- driver
def render_all(docs: Path = DOCS) -> dict[Path, str]:
    """Every generated page: ``{path under docs: text}``."""
    return {
        docs / "cli.md": render_cli(),
        docs / "configuration.md": render_configuration(),
        docs / "errors.md": render_errors(),
    }


def main(argv: list[str] | None = None) -> int:
    """Rewrite the stale pages (or, with ``--check``, name them and return 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Only report stale pages.")
    parser.add_argument("--docs", type=Path, default=DOCS, help="Pages directory [docs/].")
    args = parser.parse_args(argv)
    stale = {
        path: text
        for path, text in render_all(args.docs).items()
        if not path.is_file() or path.read_text() != text
    }
    for path, text in stale.items():
        if args.check:
            print(f"stale: {path} (run python docs/generate.py)")
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(f"wrote {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
