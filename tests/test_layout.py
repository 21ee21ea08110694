"""The package layout's promises, checked on the source: no import cycles, and a library
that never prints, parses argv, exits or writes terminal codes (that is the CLI's job).

Static checks over every module's syntax tree, imports inside functions
included: a cycle hidden in a function still ties two modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"neurograph": ROOT / "neurograph", "neurograph_cli": ROOT / "cli"}


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for the library and the command line."""
    out = {}
    for package, folder in PACKAGES.items():
        for file in folder.rglob("*.py"):
            parts = [package, *file.relative_to(folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


MODULES = module_files()
LIBRARY = sorted(m for m in MODULES if m.split(".")[0] == "neurograph")


def imported(name: str) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (``from a import b`` may name module a.b)."""
    file = MODULES[name]
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imported(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("name", LIBRARY)
def test_the_library_never_imports_the_command_line(name: str) -> None:
    assert not [m for m in GRAPH[name] if m.startswith("neurograph_cli")]


def console_uses(file: Path) -> list[str]:
    """What in ``file`` talks to the console or the process: print, std streams, argv, exits, escapes."""
    found = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "exit", "input"):
            found.append(f"{node.func.id}()")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            pair = (node.value.id, node.attr)
            if pair in {("sys", "stdout"), ("sys", "stderr"), ("sys", "argv"), ("sys", "exit"), ("os", "_exit")}:
                found.append(".".join(pair))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            found += [n for n in names if n in ("argparse", "rich") or n.startswith("rich.")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\x1b" in node.value:
            found.append("terminal escape")
    return found


@pytest.mark.parametrize("name", LIBRARY)
def test_the_library_never_prints_parses_argv_or_exits(name: str) -> None:
    assert console_uses(MODULES[name]) == []


def test_the_console_check_sees_what_it_looks_for(tmp_path: Path) -> None:
    file = tmp_path / "noisy.py"
    file.write_text('import argparse, sys, os\nprint(1)\nsys.stderr.write("\\x1b[2J")\nos._exit(3)\n')
    assert sorted(console_uses(file)) == ["argparse", "os._exit", "print()", "sys.stderr", "terminal escape"]
