"""Shared helpers for end-to-end tests: real ruff diagnostics in LSP form, a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ruff import find_ruff_bin

SERVER = [sys.executable, "-m", "server"]


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
