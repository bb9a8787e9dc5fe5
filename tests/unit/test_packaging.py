"""ACE installs only under `ace_lsp.*`: every package folder is listed for setuptools, and no
top-level `server` or `orchestrator` exists that a workspace folder of that name could stand in
for (issue 12)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ace_lsp.orchestrator.compat import tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_installed_under_ace_lsp() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {
        "ace_lsp.server": "server",
        "ace_lsp.orchestrator": "orchestrator",
    }
    folders = {
        "ace_lsp." + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in ("server", "orchestrator")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == folders  # a new subpackage must be listed


def test_no_top_level_server_or_orchestrator_is_importable(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u; "
        "print([n for n in ('server', 'orchestrator') if u.find_spec(n)], "
        "u.find_spec('ace_lsp.server') is not None)"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[] True"
