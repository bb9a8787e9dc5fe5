"""The tiers in tests/conftest.py name files and tests that exist, so a rename cannot quietly
take a slow test out of `slow` (and put it back into `make test-fast`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import FILES, SLOW, TESTS


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


@pytest.mark.parametrize("entry", sorted(SLOW | set(FILES)))
def test_every_listed_test_exists(entry: str) -> None:
    relative, _, function = entry.partition("::")
    path = TESTS / relative
    assert path.is_file(), f"tests/conftest.py names {relative}, which does not exist"
    if function:
        assert function in _functions(path), f"{relative} has no test {function}"
