"""compat: the one `tomllib` and the one check of whether a process is alive."""

from __future__ import annotations

import os
import subprocess
import sys

from ace_lsp.orchestrator.compat import pid_alive, tomllib


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    assert not pid_alive(child.pid)
    assert not pid_alive(2**40)  # not a pid at all


def test_tomllib_parses() -> None:
    assert tomllib.loads("a = 1") == {"a": 1}
