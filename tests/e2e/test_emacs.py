"""A real editor: Emacs (batch, -Q) with eglot starts `python -m ace_lsp.server` and applies a fix.

Each test runs one tests/e2e/emacs_*.el script (arguments in ACE_TEST_ARGS as JSON, shared helpers
in emacs_lib.el, the user's answers to eglot's prompts on stdin) and checks the file on disk.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


RUFF_TOML = '[lint]\nselect = ["F", "E7"]\n'


def _run_emacs(
    tmp_path: Path, script: str, test_args: dict[str, Any], answers: str
) -> subprocess.CompletedProcess[str]:
    """Run tests/e2e/`script` in `emacs --batch -Q`, typing `answers` at its prompts."""
    emacs = _emacs()
    test_args = {"cmd": [sys.executable, "-m", "ace_lsp.server"], **test_args}
    env = server_env(tmp_path / "ace-home")
    env.update(
        ACE_TEST_ARGS=json.dumps(test_args),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    started = time.monotonic()
    proc = subprocess.run(
        [emacs, "--batch", "-Q", "-l", str(ROOT / "tests" / "e2e" / script)],
        cwd=Path(test_args["file"]).parent,
        env=env,
        input=answers,
        capture_output=True,
        text=True,
        timeout=30,
    )
    print(f"{script}: emacs ran {time.monotonic() - started:.2f}s\n{proc.stderr}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_emacs_eglot_applies_ace_fix(tmp_path: Path) -> None:
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
    proc = _run_emacs(
        tmp_path,
        "emacs_fix.el",
        {"file": str(path), "diagnostics": [linter_diagnostic]},
        # eglot asks before applying a server-initiated edit; the user says yes
        answers="y\n",
    )
    assert "Server wants to edit" in proc.stdout, proc.stdout  # eglot's applyEdit handler ran
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)


def test_emacs_eglot_code_actions_fixes_line_without_diagnostics(tmp_path: Path) -> None:
    """eglot's stock `eglot-code-actions`: eglot sends no diagnostic (ACE publishes none), ACE
    offers "Fix with ACE · local · free: line N" and finds ruff's diagnostics on the line itself."""
    work = tmp_path / "work"
    work.mkdir()
    path = work / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    (work / "ruff.toml").write_text(RUFF_TOML, encoding="utf-8")
    (e711,) = [d for d in ruff_diagnostics(path) if d["code"] == "E711"]
    start = e711["range"]["start"]
    title = f"Fix with ACE · local · free: line {start['line'] + 1}"
    proc = _run_emacs(
        tmp_path,
        "emacs_code_actions.el",
        {
            "file": str(path),
            "line": start["line"],
            "character": start["character"],
            "user": "emacs-user",
        },
        # the user picks the action by its title in eglot's menu, then confirms the edit
        answers=f"{title}\ny\n",
    )
    assert "Pick an action" in proc.stdout, proc.stdout  # eglot's own menu asked
    assert f'eglot offers ("{title}"' in proc.stderr, proc.stderr  # offered first
    assert "Server wants to edit" in proc.stdout, proc.stdout  # eglot's applyEdit handler ran
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)
