"""A real editor: Emacs (batch, -Q) with eglot starts `python -m server` and applies a fix."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ruff_diagnostics, server_env

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (
    'name = "Zoë 🐍"\n\n\ndef check(value):\n    if name != "🐍 Zoë" and value == None:\n'
    "        return name\n    return value\n"
)


def _emacs() -> str:
    emacs = shutil.which("emacs")
    if emacs is None:
        reason = "emacs is not installed: apt-get install emacs-nox elpa-eglot"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return emacs


def test_emacs_eglot_applies_ace_fix(tmp_path: Path) -> None:
    emacs = _emacs()
    work = tmp_path / "work"
    work.mkdir()
    path = work / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    (e711,) = [d for d in ruff_diagnostics(path) if d["code"] == "E711"]
    start, end = e711["range"]["start"], e711["range"]["end"]
    linter_diagnostic = {  # 0-based lines, columns in code points (= Emacs characters)
        "line": start["line"],
        "character": start["character"],
        "end_line": end["line"],
        "end_character": end["character"],
        "message": e711["message"],
        "code": "E711",
        "source": "ruff",
    }
    test_args = {
        "file": str(path),
        "cmd": [sys.executable, "-m", "server"],
        "diagnostics": [linter_diagnostic],
    }
    env = server_env(tmp_path / "ace-home")
    env.update(
        ACE_TEST_ARGS=json.dumps(test_args),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    script = ROOT / "tests" / "e2e" / "emacs_fix.el"
    started = time.monotonic()
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(script)],
        cwd=work,
        env=env,
        input="y\n",  # eglot asks before applying a server-initiated edit; the user says yes
        capture_output=True,
        text=True,
        timeout=90,
    )
    print(f"emacs ran {time.monotonic() - started:.2f}s\n{proc.stderr}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "Server wants to edit" in proc.stdout, proc.stdout  # eglot's applyEdit handler ran
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)
