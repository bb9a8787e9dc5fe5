"""A real editor: headless Neovim 0.11 starts `ace serve` via clients/neovim and applies a fix."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ruff_diagnostics, server_env

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (
    'name = "Zoë 🐍"\n\n\ndef check(value):\n    if name != "🐍 Zoë" and value == None:\n'
    "        return name\n    return value\n"
)


def _nvim() -> str:
    nvim = shutil.which("nvim", path=os.path.dirname(sys.executable)) or shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim is not installed; `pip install -e '.[test]'` brings Neovim 0.11")
    return nvim


def test_neovim_applies_ace_fix(tmp_path: Path) -> None:
    path = tmp_path / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    (e711,) = [d for d in ruff_diagnostics(path) if d["code"] == "E711"]
    lines = SOURCE.splitlines()

    def byte_col(pos: dict[str, int]) -> int:  # ruff counts code points; Neovim counts bytes
        return len(lines[pos["line"]][: pos["character"]].encode("utf-8"))

    start, end = e711["range"]["start"], e711["range"]["end"]
    vim_diagnostic = {  # as nvim-lint would set it: 0-based line, byte column
        "lnum": start["line"],
        "col": byte_col(start),
        "end_lnum": end["line"],
        "end_col": byte_col(end),
        "message": e711["message"],
        "code": "E711",
        "source": "ruff",
        "severity": 1,
    }
    test_args = {
        "plugin": str(ROOT / "clients" / "neovim"),
        "file": str(path),
        "cmd": [sys.executable, "-m", "server"],
        "diagnostics": [vim_diagnostic],
    }
    env = server_env(tmp_path / "ace-home")
    env.update(
        ACE_TEST_ARGS=json.dumps(test_args),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    script = ROOT / "tests" / "e2e" / "neovim_fix.lua"
    proc = subprocess.run(
        [_nvim(), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {script}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)
