"""`ace serve --log-file`: the log is created with mode 0600, and an existing file keeps its mode."""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path

import pytest

from ace_lsp.server.cli import log_file_handler

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write(path: Path, line: str) -> None:
    handler = log_file_handler(path)
    try:
        handler.emit(logging.LogRecord("ace", logging.INFO, __file__, 1, line, None, None))
    finally:
        handler.close()


def test_a_new_log_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "ace.log"
    old = os.umask(0o000)
    try:
        _write(path, "first")
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert path.read_text(encoding="utf-8") == "first\n"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400 | 0o200])
def test_an_existing_log_file_keeps_its_mode_and_lines(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ace.log"
    path.write_text("earlier\n", encoding="utf-8")
    path.chmod(mode)
    _write(path, "later")
    assert _mode(path) == mode  # never widened (nor changed under the user's feet)
    assert path.read_text(encoding="utf-8") == "earlier\nlater\n"
