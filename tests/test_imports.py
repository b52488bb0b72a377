"""The package's import structure: no import cycles, every import at the top of its module.

Data flows one way and registrations sit below their users, so no module needs to hide an
import inside a function to break a cycle. Two checks over the source tree, by AST (nothing
is imported):

- the graph of module-level imports has no cycle (:func:`find_cycles`, itself tested on a
  synthetic package);
- no import statement sits inside a function or class body, except for the optional
  dependencies in :data:`OPTIONAL_IMPORTS` (``if TYPE_CHECKING:`` blocks are not imports at
  run time and are ignored by both checks).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "piddm"

#: Modules (and their submodules) that may be imported inside a function, each with the reason.
OPTIONAL_IMPORTS: dict[str, str] = {
    "torch.utils.tensorboard": "needs the tensorboard package, not a dependency of piddm: "
    "training logs to TensorBoard only where it is installed",
}


def module_files(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of ``root / package``."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _imports_in(scope: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when ``scope`` (a module, function or class body)
    runs: in its body and its ``if`` / ``try`` / ``with`` / loop blocks, not in nested
    functions or classes, nor under ``if TYPE_CHECKING:`` (only its ``else`` runs)."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        elif not isinstance(node, SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``: the packages whose ``__init__`` runs before ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imported_modules(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: set[str]
) -> set[str]:
    """The package modules whose code may run for ``node`` in module ``importer``.

    ``import a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``; ``from a.b import n`` runs ``a``,
    ``a.b`` and ``a.b.n`` when ``n`` is a submodule. The ``__init__`` of a package that
    contains ``importer`` has already started when ``importer`` runs, so it is an edge only
    when a name is taken from it (``from a import name``).
    """
    targets: set[str] = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            targets.update(_ancestors(alias.name) + [alias.name])
        taken_from: set[str] = set()
    else:
        if node.level:
            base = importer.split(".")
            if not is_package:
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        targets.update(_ancestors(source) + [source])
        taken_from = set()
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in modules:
                targets.add(sub)
            else:
                taken_from.add(source)
    own_packages = set(_ancestors(importer)) | ({importer} if is_package else set())
    targets = {t for t in targets if t not in own_packages} | taken_from
    return {t for t in targets if t in modules and t != importer}


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules it imports at module level}`` for the package ``root / package``."""
    files = module_files(root, package)
    names = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in _imports_in(tree):
            graph[name] |= _imported_modules(node, name, is_package, names)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one
    module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [_cycle_in(graph, set(component)) for component in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected ``component``."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"not a strongly connected component: {sorted(component)}")


def function_level_imports(root: Path, package: str) -> list[tuple[str, int, str]]:
    """``(file, line, imported module)`` for every import inside a function or class body
    (``if TYPE_CHECKING:`` blocks excepted)."""
    found = []
    for path in module_files(root, package).values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for scope in ast.walk(tree):
            if not isinstance(scope, SCOPES):
                continue
            for node in _imports_in(scope):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                else:
                    modules = ["." * node.level + (node.module or "")]
                for module in modules:
                    found.append((str(path.relative_to(root)), node.lineno, module))
    return sorted(set(found))


def test_no_import_cycles():
    cycles = find_cycles(import_graph(SRC, PACKAGE))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_function_level_imports():
    hidden = [
        f"{path}:{line}: {module}"
        for path, line, module in function_level_imports(SRC, PACKAGE)
        if not any(module == name or module.startswith(f"{name}.") for name in OPTIONAL_IMPORTS)
    ]
    assert not hidden, "imports inside functions (move them to the top):\n" + "\n".join(hidden)


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_find_cycles_finds_a_two_module_cycle(tmp_path: Path):
    _write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import thing\n",
            "pkg/b.py": "from . import a\n\ndef thing():\n    import pkg.c\n",
            "pkg/c.py": "import pkg.a\n",
        },
    )
    assert find_cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert function_level_imports(tmp_path, "pkg") == [(str(Path("pkg/b.py")), 4, "pkg.c")]


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        # A package __init__ importing a submodule that takes a name from the __init__.
        (
            {
                "pkg/__init__.py": "from pkg.sub import f\nX = 1\n",
                "pkg/sub.py": "from pkg import X\n",
            },
            ["pkg", "pkg.sub", "pkg"],
        ),
        # Importing a submodule of another package runs that package's __init__.
        (
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "import pkg.other.leaf\n",
                "pkg/other/__init__.py": "from ..a import name\n",
                "pkg/other/leaf.py": "",
            },
            ["pkg.a", "pkg.other", "pkg.a"],
        ),
        # An import in a module-level block runs with the module.
        (
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "try:\n    import pkg.b\nexcept ImportError:\n    pass\n",
                "pkg/b.py": "from pkg.a import x\n",
            },
            ["pkg.a", "pkg.b", "pkg.a"],
        ),
        # Imports under `if TYPE_CHECKING:` do not run.
        (
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from pkg import b\n",
                "pkg/b.py": "from pkg import a\n",
            },
            None,
        ),
    ],
)
def test_find_cycles_resolution(tmp_path: Path, files: dict[str, str], cycle: list[str] | None):
    _write_package(tmp_path, files)
    assert find_cycles(import_graph(tmp_path, "pkg")) == ([cycle] if cycle else [])
