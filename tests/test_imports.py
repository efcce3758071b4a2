"""The house plan's import structure, as pyproject.toml's import-linter contracts state it
(layers of ``search``, ``fmnist`` and ``spaces`` below Optuna and the search, the library never
importing its bench or tools, tools using only public entry points, no cycles), checked by
``lint-imports`` itself; and what import-linter cannot check: each import inside a function
says why it is deferred, and every folder of Python files is a package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing import ROOT, environment

PACKAGES = ("search", "fmnist", "spaces", "fmnist_bench", "tools")


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``lint-imports`` from this interpreter's install, run in ``cwd``, no cache written."""
    command = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", command, "--no-cache", *args],
        cwd=cwd,
        env=environment({"PYTHONPATH": str(cwd)}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_import_contracts_hold() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_import_inside_a_function_breaks_a_contract(tmp_path: Path) -> None:
    """import-linter reads every import, those inside functions too: a loop hidden behind a
    function-level import is a broken layer, not a pass."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "high.py").write_text("from pkg import low\n")
    (pkg / "low.py").write_text("def later():\n    from pkg import high\n\n    return high\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = pkg\n\n"
        "[importlinter:contract:layers]\nname = high above low\ntype = layers\n"
        "layers =\n    pkg.high\n    pkg.low\n"
    )
    done = lint_imports(tmp_path, "--config", ".importlinter")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pkg.low -> pkg.high (l.2)" in done.stdout


def deferred_imports(path: Path) -> list[tuple[int, str]]:
    """Each import inside a function (line, source) that no comment explains: a comment on
    its line, or above the run of imports it belongs to."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for fn in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            row = node.lineno - 1
            above = row - 1
            while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
                above -= 1
            if "#" not in lines[row] and not lines[above].strip().startswith(("#", "try:  #")):
                found.append((node.lineno, lines[row].strip()))
    return sorted(set(found))


def test_every_import_inside_a_function_says_what_it_defers() -> None:
    """An import inside a function only defers a heavy or optional dependency, and says which;
    a loop between project modules is opened by moving a definition down instead."""
    unexplained = {
        str(path.relative_to(ROOT)): found
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (found := deferred_imports(path))
    }
    assert not unexplained, unexplained


def test_the_deferred_import_check_finds_an_unexplained_one(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "def f():\n    import json\n\n"
        "def g():\n    # heavy\n    import torch\n    import numpy\n\n"
        "def h():\n    import ray  # optional\n"
    )
    assert deferred_imports(path) == [(2, "import json")]


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
