"""Which workspace `ace.toml` files the user allowed, and where a workspace's file is looked up.

A repository is written by strangers, so its `ace.toml` may only tighten ACE's settings
(see `layers.py`) unless the user ran `ace trust` on it: that records the file's SHA-256 in
`$ACE_HOME/trusted.toml` (mode 0600), the way `direnv allow` does, and any later change to the
file needs a new `ace trust`.

The file is looked up from a folder up to the repository root (the folder with `.git` or `.hg`)
or `$HOME`, never above; without either above it, only the folder itself. A file not owned by
this user, or writable by others, is ignored with a warning (git's `safe.directory` idea).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ace_lsp.orchestrator.compat import tomllib
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.paths import private_dir

FILE_NAME = "ace.toml"
STORE = "trusted.toml"
_MARKERS = (".git", ".hg")


@dataclass(frozen=True)
class WorkspaceFile:
    """A workspace's `ace.toml`: where it is, its bytes, and whether the user trusted them."""

    path: Path
    data: bytes
    trusted: bool


def digest(data: bytes) -> str:
    """The SHA-256 of `data` in hex, as `ace trust` records it."""
    return hashlib.sha256(data).hexdigest()


def find(start: Path, env: Mapping[str, str]) -> Path | None:
    """The nearest `ace.toml` from `start` (a folder) up to the repository root or $HOME."""
    start = start.resolve()
    home = Path(env["HOME"]).resolve() if env.get("HOME") else None
    chain = [start, *start.parents]
    stop = next((i for i, folder in enumerate(chain) if folder == home or _is_root(folder)), None)
    for folder in chain[: 1 if stop is None else stop + 1]:
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _is_root(folder: Path) -> bool:
    return any((folder / marker).exists() for marker in _MARKERS)


def unsafe(path: Path) -> str | None:
    """Why a workspace file must be ignored (someone else could have written it), or None."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "it belongs to another user"
    if info.st_mode & stat.S_IWOTH:
        return "anyone on this machine may write it"
    return None


def _store(home: Path) -> Path:
    return home / STORE


def trusted(home: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file the user trusted."""
    try:
        text = _store(home).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InputError(f"Cannot read {_store(home)} ({exc.strerror}).") from None
    try:
        table = tomllib.loads(text).get("trusted", {})
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{_store(home)} is not valid TOML ({exc}); fix or delete it.") from None
    return {str(k): str(v) for k, v in table.items() if isinstance(v, str)}


def _write(home: Path, table: Mapping[str, str]) -> None:
    import json

    lines = [
        "# Workspace files `ace trust` allowed, by SHA-256. Edit with `ace trust`.",
        "[trusted]",
    ]
    lines += [f"{json.dumps(path)} = {json.dumps(sha)}" for path, sha in sorted(table.items())]
    private_dir(home)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".trusted.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, _store(home))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def trust(home: Path, path: Path) -> str:
    """Record `path`'s current content as trusted; returns its SHA-256."""
    path = path.resolve()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {path} ({exc.strerror}).") from None
    why = unsafe(path)
    if why is not None:
        raise InputError(f"{path} cannot be trusted: {why}; fix its owner or mode first.")
    table = trusted(home)
    table[str(path)] = sha = digest(data)
    _write(home, table)
    return sha


def revoke(home: Path, path: Path) -> bool:
    """Forget `path`; False when it was not trusted."""
    table = trusted(home)
    found = table.pop(str(path.resolve()), None) is not None
    if found:
        _write(home, table)
    return found


def read(path: Path, home: Path) -> tuple[WorkspaceFile | None, str | None]:
    """The workspace file at `path` and whether it is trusted; or None and why it was ignored."""
    why = unsafe(path)
    if why is not None:
        return None, f"ACE ignored {path}: {why} (fix its owner or mode to use it)."
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"ACE ignored {path}: it cannot be read ({exc.strerror})."
    known = trusted(home).get(str(path.resolve()))
    return WorkspaceFile(path, data, known == digest(data)), None
