"""The packages' import structure, read from the source (nothing is imported): no cycle among
module-level imports, and the one-way flow preset -> space -> fmnist (``fmnist`` never sees
Optuna or the search, a space never sees Optuna)."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import pytest

from tests.testing import ROOT

PACKAGES = ("search", "fmnist", "spaces", "fmnist_bench")


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        folder = ROOT / package
        if not (folder / "__init__.py").is_file():
            continue
        found[package] = folder / "__init__.py"
        for info in pkgutil.walk_packages([str(folder)], prefix=f"{package}."):
            path = folder.joinpath(*info.name.split(".")[1:])
            found[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return found


MODULES = modules()


def imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The project modules an import statement in ``module`` needs initialised: ``from a import
    b`` needs ``a.b`` when that is a module, else ``a`` (whose ``__init__`` must have defined
    ``b``). A package is always entered before its submodules, so a submodule taken from its
    own ancestor package is no dependency on that package."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports run when the module is: at module level, in ``try``/``if`` blocks, but not in
    functions, classes' methods or ``if TYPE_CHECKING:``."""
    out: list = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                out.append(node)
            elif isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.ClassDef | ast.With):
                visit(node.body)

    visit(tree.body)
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports at module level."""
    edges = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges[module] = {
            name
            for node in top_level_imports(tree)
            for name in imported(node, module)
            if name in MODULES and name != module
        }
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_the_walk_finds_every_package() -> None:
    assert {"search.run.runner", "search.storage.claim", "fmnist.train", "spaces.dims"} <= set(
        MODULES
    )
    assert all(path.is_file() for path in MODULES.values())


def test_no_import_cycle_among_module_level_imports() -> None:
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(group) for group in found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def every_import(path: Path) -> set[str]:
    """The top-level package of every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


FORBIDDEN = {
    "fmnist": {"optuna", "optuna_integration", "optuna_dashboard", "search", "spaces"},
    "spaces": {"optuna", "optuna_integration", "optuna_dashboard", "search"},
}


@pytest.mark.parametrize("package", list(FORBIDDEN))
def test_the_lower_packages_never_import_the_upper_ones(package: str) -> None:
    offences = {
        name: sorted(every_import(path) & FORBIDDEN[package])
        for name, path in MODULES.items()
        if name.split(".")[0] == package and every_import(path) & FORBIDDEN[package]
    }
    assert not offences, offences


@pytest.mark.parametrize("top", [*PACKAGES, "tests"])
def test_every_folder_of_python_files_is_a_package(top: str) -> None:
    """Package discovery (pyproject's ``packages.find``) skips a folder without
    ``__init__.py``, and pytest mixes up two test files of one name in such folders."""
    if not (ROOT / top).is_dir():
        pytest.skip(f"no {top}/ in this checkout")
    folders = {
        path.parent for path in (ROOT / top).rglob("*.py") if "__pycache__" not in path.parts
    }
    assert [f for f in sorted(folders) if not (f / "__init__.py").is_file()] == []
