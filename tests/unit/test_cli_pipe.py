"""`ace … | head`: a reader that leaves early ends the command quietly, not with a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ace_lsp.server import cli


class _ClosedPipe(io.TextIOWrapper):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_the_command_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ACE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    sink = open(tmp_path / "out", "wb")  # noqa: SIM115 - its descriptor is dup2'd over
    monkeypatch.setattr("sys.stdout", _ClosedPipe(sink))
    assert cli.main(["config", "check", "--json"]) == 0
    assert "Traceback" not in capsys.readouterr().err
