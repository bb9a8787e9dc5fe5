"""Shared helpers for end-to-end tests: real ruff diagnostics in LSP form, a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruff import find_ruff_bin

SERVER = [sys.executable, "-m", "ace_lsp.server"]


def server_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["ACE_HOME"] = str(home)
    return env


def ruff_diagnostics(path: Path) -> list[dict[str, Any]]:
    """ruff's diagnostics for `path` as LSP Diagnostic JSON; columns are ruff's code points."""
    out = subprocess.run(
        [
            find_ruff_bin(),
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "F,E7",
            "--output-format",
            "json",
            "--exit-zero",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return [
        {
            "range": {
                "start": {
                    "line": d["location"]["row"] - 1,
                    "character": d["location"]["column"] - 1,
                },
                "end": {
                    "line": d["end_location"]["row"] - 1,
                    "character": d["end_location"]["column"] - 1,
                },
            },
            "message": d["message"],
            "code": d["code"],
            "source": "Ruff",
            "severity": 1,
        }
        for d in json.loads(out)
    ]


def track_budget(client: Any) -> list[dict[str, Any]]:
    """Collect the server's `ace/budget` notifications (register before initialize)."""
    seen: list[dict[str, Any]] = []

    @client.feature("ace/budget")
    def on_budget(params: Any) -> None:
        seen.append(plain(params))

    return seen


def plain(obj: Any) -> Any:
    """pygls hands unknown notifications over as namedtuple-like Objects: make them JSON again."""
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


async def until(check: Any, what: str, timeout: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


def read_code_actions_like_editors(client: Any) -> None:
    """lsprotocol 2025.0.0 reads any code action with a `command` key as a bare Command, even
    when `command` is an object (a CodeAction carrying a command, as ACE sends to Emacs or for
    "Review with ACE"). Editors tell them apart by the type of `command`; so does this client."""
    from lsprotocol import types as lsp

    converter = client.protocol._converter

    def code_action_or_command(obj: Any, _: type) -> Any:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, lsp.Command)
        return converter.structure(obj, lsp.CodeAction)

    converter.register_structure_hook(lsp.Command | lsp.CodeAction, code_action_or_command)
