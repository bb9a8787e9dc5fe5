"""The server's import graph, read from the source with `ast`: no circle (counting imports inside
functions and under TYPE_CHECKING), a base that imports no feature, and no `cli_*` module
imported by the server's features."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ace_lsp.server

SERVER = Path(ace_lsp.server.__file__).parent
PACKAGE = "ace_lsp.server"
BASE_MAY_IMPORT = {"__init__", "compat", "framing"}  # the base's own parts, no feature


def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """Module name (file stem) -> the package's modules it imports, wherever the import is."""
    modules = {p.stem for p in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        edges: set[str] = set()
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package if node.level else (node.module or "")
                if node.level and node.module:
                    base = f"{package}.{node.module}"
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                if target == package:
                    edges.add("__init__")
                elif target.startswith(package + "."):
                    stem = target[len(package) + 1 :].split(".")[0]
                    if stem in modules:
                        edges.add(stem)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts (["a", "b", "a"]), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_there_is_no_import_circle_in_the_server() -> None:
    assert find_cycle(import_graph(SERVER, PACKAGE)) is None


def test_the_circle_finder_sees_hidden_imports(tmp_path: Path) -> None:
    """Circles made only of imports inside a function or under TYPE_CHECKING count too."""
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("def f():\n    from pkg.b import g\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
    )
    (tmp_path / "c.py").write_text("from . import a\n")
    (tmp_path / "d.py").write_text("import pkg.a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["d"] == {"a"}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    (tmp_path / "c.py").write_text("")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        pytest.param({"a": {"a"}}, ["a", "a"], id="self"),
        pytest.param({"a": {"b"}, "b": set()}, None, id="chain"),
        pytest.param({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None, id="diamond"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"], id="tail"),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_the_base_imports_no_feature() -> None:
    graph = import_graph(SERVER, PACKAGE)
    assert graph["base"] <= BASE_MAY_IMPORT
    assert graph["compat"] <= {"__init__", "framing"}


def test_only_the_command_line_imports_cli_modules() -> None:
    """Reports shared by the CLI and the server live in `reports`; the server never needs the
    command line's modules."""
    graph = import_graph(SERVER, PACKAGE)
    cli_side = {m for m in graph if m == "cli" or m.startswith("cli_") or m == "__main__"}
    for module, edges in graph.items():
        if module not in cli_side:
            assert not {e for e in edges if e.startswith("cli")}, module
