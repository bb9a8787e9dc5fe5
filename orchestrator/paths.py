"""Where ACE keeps its files: `ACE_HOME`, else the platform's user data folder."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from platformdirs import user_data_dir


def ace_home(env: Mapping[str, str] | None = None) -> Path:
    """ACE's home folder: `ACE_HOME` (with `~` expanded), else the platform's user data folder."""
    env = os.environ if env is None else env
    home = env.get("ACE_HOME")
    return Path(home).expanduser() if home else Path(user_data_dir("ace", appauthor=False))


def private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
