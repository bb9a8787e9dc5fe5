"""The orchestrator's import graph, read from the source with `ast` (imports inside functions and
under TYPE_CHECKING count too): no circle between its modules, and the pure cores import no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import ace_lsp.orchestrator
from tests.unit.test_server_imports import find_cycle

ROOT = Path(ace_lsp.orchestrator.__file__).parent
PACKAGE = "ace_lsp.orchestrator"


def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__)."""
    out: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([PACKAGE, *parts])] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a module's own parent packages left out)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges.add(target)
        graph[name] = edges
    return graph


def test_no_import_circle_in_the_orchestrator() -> None:
    assert find_cycle(import_graph()) is None


def test_the_graph_sees_imports() -> None:  # so that the test above can fail
    graph = import_graph()
    assert f"{PACKAGE}.stats" in graph[f"{PACKAGE}.health"]
    assert find_cycle({**graph, f"{PACKAGE}.stats": {f"{PACKAGE}.health"}}) is not None


def test_the_pure_cores_import_no_io() -> None:
    graph = import_graph()
    for core in ("routing", "budget", "code.patches", "code.spans", "layers", "stats"):
        for target in graph[f"{PACKAGE}.{core}"]:
            assert not target.startswith(
                (f"{PACKAGE}.providers", f"{PACKAGE}.ledger", f"{PACKAGE}.team")
            ), (core, target)
