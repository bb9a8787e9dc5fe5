"""The orchestrator package's public names (httpx-style): `__all__` is the whole of it, each name
resolves to what its home module defines, and importing a submodule stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import ace_lsp.orchestrator as orchestrator


def test_all_is_sorted_and_star_import_gives_exactly_it() -> None:
    assert orchestrator.__all__ == sorted(orchestrator.__all__)
    namespace: dict[str, object] = {}
    exec("from ace_lsp.orchestrator import *", namespace)
    assert {k for k in namespace if k != "__builtins__"} == set(orchestrator.__all__)
    assert set(orchestrator.__all__) <= set(dir(orchestrator))


@pytest.mark.parametrize("name", orchestrator.__all__)
def test_each_public_name_is_its_home_modules_own(name: str) -> None:
    value = getattr(orchestrator, name)
    assert value.__module__.startswith("ace_lsp.orchestrator.")
    assert getattr(sys.modules[value.__module__], name) is value


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'instrumentedLLMCall'"):
        _ = orchestrator.instrumentedLLMCall


def test_importing_a_submodule_does_not_import_the_pipeline() -> None:
    code = (
        "import sys, ace_lsp.orchestrator.errors, ace_lsp.orchestrator.types; "
        "print('ace_lsp.orchestrator.call' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
