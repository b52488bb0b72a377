"""The generated docs (``docs/cli.md``, ``docs/configuration.md``, ``docs/errors.md``) match
what ``docs/generate.py`` produces from the code now, so they cannot drift; and the error
extraction finds every user error, with readable placeholders."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from conftest import SUBPROCESS_ENV

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "generate.py"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def pages(generator: ModuleType) -> dict[Path, str]:
    return generator.render_all()


@pytest.mark.parametrize("name", ["cli.md", "configuration.md", "errors.md"])
def test_generated_page_is_up_to_date(pages: dict[Path, str], name: str) -> None:
    path = ROOT / "docs" / name
    assert path in pages
    assert path.read_text() == pages[path], f"docs/{name} is stale: run python docs/generate.py"


def test_cli_page_has_every_command(pages: dict[Path, str]) -> None:
    from piddm.cli import _register_commands, cli

    _register_commands()
    text = pages[ROOT / "docs" / "cli.md"]
    for name, command in cli.commands.items():
        assert f"## `piddm {name}`" in text
        assert f"Usage: piddm {name} " in text
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--"):
                    assert option in text, (name, option)


def test_every_user_error_in_the_source_is_listed(generator: ModuleType) -> None:
    sites = generator.error_sites()
    text = (ROOT / "docs" / "errors.md").read_text()
    # An independent count: every call of PiddmError or of a subclass named *Error in the
    # package that the ast finds must be one row (or a duplicate of one) of the page.
    calls = 0
    for path in sorted((ROOT / "src" / "piddm").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "PiddmError",
                "UNetConfigError",
            ):
                calls += 1
    assert len(sites) == calls > 100
    for site in sites:
        assert site.message.replace("|", "\\|") in text, site
    assert "observations {p} does not exist" in text  # a known f-string, placeholders kept
    assert f"{len(sites)} messages in total." in text


def test_messages_render_literals_and_placeholders(generator: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "errors.py").write_text("class PiddmError(Exception): ...\n")
    (package / "things.py").write_text(
        textwrap.dedent(
            """
            class ShapeError(PiddmError, ValueError): ...

            class Reader:
                def read(self, path, n):
                    if n < 0:
                        raise ShapeError(f"file {path}: n must be >= 0, got {n!r:>4} "
                                         f"(see {', '.join(KEYS)})")
                    raise PiddmError("plain " + f"{path.name}" + " text")

            def build(message):
                return PiddmError(message)
            """
        )
    )
    sites = {(s.function, s.message) for s in generator.error_sites(package)}
    assert sites == {
        ("Reader.read", "file {path}: n must be >= 0, got {n} (see {', '.join(KEYS)})"),
        ("Reader.read", "plain {path.name} text"),
        ("build", "{message}"),
    }
    page = generator.render_errors(package)
    assert "### `things.py`" in page  # a module of no known area gets its own section
    assert page.count(" | `things.py` `") == 3 and "3 messages in total." in page


def test_check_mode_names_stale_pages_and_the_script_rewrites_them(tmp_path: Path) -> None:
    for name in ("cli.md", "configuration.md", "errors.md"):
        (tmp_path / name).write_text((ROOT / "docs" / name).read_text())
    (tmp_path / "errors.md").write_text("# out of date\n")

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(SCRIPT), "--docs", str(tmp_path), *args]
        return subprocess.run(argv, capture_output=True, text=True, env=SUBPROCESS_ENV, timeout=300)

    check = script("--check")
    assert check.returncode == 1 and check.stdout.splitlines() == [
        f"stale: {tmp_path / 'errors.md'} (run python docs/generate.py)"
    ]
    assert (tmp_path / "errors.md").read_text() == "# out of date\n"  # --check writes nothing
    rewrite = script()
    assert rewrite.returncode == 0 and rewrite.stdout.strip() == f"wrote {tmp_path / 'errors.md'}"
    assert (tmp_path / "errors.md").read_text() == (ROOT / "docs" / "errors.md").read_text()


# ----------------------------------------------------------------------------- citations
#: The internal design document's name, built from pieces so that this file does not mention it.
INTERNAL_DOC = "SP" + "EC"
#: Where the package's own text lives: every file a user of the package can read.
TEXT_ROOTS = ("src", "docs", "configs", "tests")
#: A citation ``docs/<page>.md, "<heading>"`` (more headings: ``, "<h2>"`` or `` and "<h2>"``).
CITATION = re.compile(r'docs/([\w.-]+\.md),\s+((?:"[^"]+"(?:,\s*|\s+and\s+)?)+)')
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def text_files() -> list[Path]:
    """README.md and every text file under :data:`TEXT_ROOTS` (tracked or new), skipping
    build output (``__pycache__``, ``*.egg-info``) and binary files."""
    files = [ROOT / "README.md"]
    for root in TEXT_ROOTS:
        for path in sorted((ROOT / root).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if not path.is_file() or any(
                p == "__pycache__" or p.endswith(".egg-info") for p in parts
            ):
                continue
            if b"\0" not in path.read_bytes()[:8192]:
                files.append(path)
    return files


def joined(text: str) -> str:
    """``text`` as one line: line breaks, indentation and comment markers (``#``, ``#:``) at
    line starts become one space, so a citation wrapped over lines reads as one."""
    return re.sub(r"\n[ \t]*(?:#:?[ \t]*)?", " ", text)


def headings(page: Path) -> set[str]:
    """The headings of a Markdown page outside code fences, each also without its leading
    section number (``1. ``), its trailing parenthesis (``Metrics (`piddm.metrics`)``) or both."""
    found: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            title = match.group(1)
            unnumbered = re.sub(r"^\d+(\.\d+)*\.?\s+", "", title)
            for variant in (title, unnumbered):
                found.update({variant, re.sub(r"\s*\([^()]*\)$", "", variant)})
    return found


def citations(text: str) -> list[tuple[str, str]]:
    """``(page, heading)`` of every ``docs/<page>.md, "<heading>"`` citation in ``text``."""
    found = []
    for match in CITATION.finditer(joined(text)):
        for heading in re.findall(r'"([^"]+)"', match.group(2)):
            found.append((match.group(1), " ".join(heading.split())))
    return found


def test_no_file_cites_the_internal_design_document() -> None:
    word = re.compile(rf"\b{INTERNAL_DOC}\b")
    hits = []
    for path in text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if word.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "cite docs/ pages instead (e.g. docs/method.md):\n" + "\n".join(hits)


def test_citations_name_an_existing_page_and_heading() -> None:
    broken = []
    count = 0
    for path in text_files():
        for page, heading in citations(path.read_text(errors="replace")):
            count += 1
            target = ROOT / "docs" / page
            if not target.is_file():
                broken.append(f"{path.relative_to(ROOT)}: docs/{page} does not exist")
            elif heading not in headings(target):
                broken.append(f'{path.relative_to(ROOT)}: docs/{page} has no heading "{heading}"')
    assert not broken, "\n".join(broken)
    assert count > 40  # the parser finds the package's citations (one per line at least)


def test_citation_parser() -> None:
    text = textwrap.dedent(
        '''
        """Loss (docs/method.md, "PIDDM student" and "PID student"); masks (docs/method.md,
        "Observation masks"), metrics (docs/concepts.md, "Metrics", "Physics
        measures")."""
        # a comment (docs/method.md,
        # "CPU sizing")
        '''
    )
    assert citations(text) == [
        ("method.md", "PIDDM student"),
        ("method.md", "PID student"),
        ("method.md", "Observation masks"),
        ("concepts.md", "Metrics"),
        ("concepts.md", "Physics measures"),
        ("method.md", "CPU sizing"),
    ]
    assert {"Metrics", "Physics measures", "Preconditioned residual"} <= headings(
        ROOT / "docs" / "concepts.md"
    )
