"""Running ruff: its executable, its rule list, and its diagnostics as CodeIssues.

Used by the `local` provider (fixes), by `ace fix` (diagnostics for a Python file) and by the
patch gate's verification (code/verify.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Sequence
from functools import cache
from typing import Any

from ruff import find_ruff_bin  # type: ignore[import-untyped]

from ace_lsp.orchestrator.code.source import Source, utf16_len
from ace_lsp.orchestrator.errors import BadResponse, ProviderUnavailable, Timeout
from ace_lsp.orchestrator.types import CodeIssue, Position, TextRange

RUFF_TIMEOUT_S = 30.0


@cache
def ruff_bin() -> str:
    """The path of the ruff executable that the `ruff` package ships."""
    try:
        return str(find_ruff_bin())
    except FileNotFoundError as exc:  # pragma: no cover - ruff is a dependency
        raise ProviderUnavailable("The ruff executable was not found; reinstall ace-lsp.") from exc


@cache
def known_rules() -> frozenset[str]:
    """Every rule code this ruff knows (about 30 ms, once per process)."""
    out = subprocess.run(
        [ruff_bin(), "rule", "--all", "--output-format", "json"],
        capture_output=True,
        check=True,
        timeout=RUFF_TIMEOUT_S,
    ).stdout
    return frozenset(rule["code"] for rule in json.loads(out))


def _command(path: str, select: Sequence[str] | None) -> tuple[list[str], str | None]:
    """The `ruff check` command line for stdin named `path`, and the folder to run it in."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    cmd = [ruff_bin(), "check", "--no-cache", "--output-format", "json", "--exit-zero"]
    if select:
        cmd += ["--select", ",".join(select)]
    cmd += ["--stdin-filename", path, "-"]
    return cmd, folder if os.path.isdir(folder) else None


def _parse(returncode: int | None, out: bytes, err: bytes) -> list[dict[str, Any]]:
    """ruff's JSON diagnostics, or BadResponse saying why there are none."""
    if returncode != 0:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        detail = " ".join(line.strip() for line in lines[:2]) or f"exit {returncode}"
        raise BadResponse(f"ruff failed on the file ({detail}).")
    try:
        result = json.loads(out)
    except json.JSONDecodeError as exc:
        raise BadResponse("ruff printed output that is not JSON; check the ruff version.") from exc
    if not isinstance(result, list):
        raise BadResponse("ruff printed unexpected JSON; check the ruff version.")
    return result


def check_blocking(text: str, path: str, timeout: float) -> list[dict[str, Any]]:
    """`check()` for a worker thread (the patch gate's): Timeout past `timeout` seconds."""
    cmd, cwd = _command(path, None)
    try:
        done = subprocess.run(
            cmd, input=text.encode("utf-8"), capture_output=True, cwd=cwd, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise Timeout(f"ruff took longer than {timeout:g} s to check the file.") from None
    except OSError as exc:
        raise BadResponse(f"ruff could not be started ({exc.strerror}).") from None
    return _parse(done.returncode, done.stdout, done.stderr)


async def check(text: str, path: str, select: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """`ruff check` on `text` as if it were the file at `path` (so the project's config applies)."""
    cmd, folder = _command(path, select)
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=folder,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(text.encode("utf-8")), RUFF_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise Timeout(f"ruff took longer than {RUFF_TIMEOUT_S:.0f} s to check the file.") from None
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    return _parse(proc.returncode, out, err)


def _position(source: Source, loc: dict[str, Any]) -> Position:
    """ruff location (1-based row, 1-based column in code points) -> LSP position (UTF-16)."""
    line = int(loc["row"]) - 1
    return Position(line, utf16_len(source.line_text(line)[: int(loc["column"]) - 1]))


def to_issues(source: Source, diagnostics: Sequence[dict[str, Any]]) -> list[CodeIssue]:
    """ruff's diagnostics as CodeIssues in UTF-16 positions; syntax errors (no code) left out."""
    severity = {"error": 1, "warning": 2}
    return [
        CodeIssue(
            range=TextRange(_position(source, d["location"]), _position(source, d["end_location"])),
            message=str(d["message"]),
            code=d.get("code"),
            source="ruff",
            severity=severity.get(str(d.get("severity", "warning")), 2),
        )
        for d in diagnostics
        if d.get("code")  # syntax errors have no code and no fix
    ]
