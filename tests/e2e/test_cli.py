"""`ace fix` as a user runs it: a subprocess, real ruff, real files, every exit code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ruff_diagnostics, server_env

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "import os\n\n\ndef f(x):\n    if x == None:\n        return 0\n    return x\n"


def ace(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", *args],
        cwd=cwd,
        env=server_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    # a project configuration, as users have: ruff's defaults change between releases
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["F", "E7"]\n')
    path = tmp_path / "mod.py"
    path.write_text(BROKEN)
    return path


def test_prints_a_diff_and_leaves_the_file(broken: Path, tmp_path: Path) -> None:
    proc = ace("fix", str(broken), cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("--- a/mod.py\n+++ b/mod.py\n@@ -1,7 +1,6 @@\n-import os\n")
    assert "-    if x == None:\n+    if x is None:\n" in proc.stdout
    assert "run with --apply" in proc.stderr
    assert "ace: verified by ruff: F401, E711 gone, 0 new.\n" in proc.stderr
    assert broken.read_text() == BROKEN


def test_apply_writes_the_fixed_file(broken: Path, tmp_path: Path) -> None:
    broken.chmod(0o640)
    proc = ace("fix", str(broken), "--apply", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    fixed = broken.read_text()
    assert fixed == "\n\ndef f(x):\n    if x is None:\n        return 0\n    return x\n"
    assert broken.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".ace")] == []
    ast.parse(fixed)


def test_json_output(broken: Path, tmp_path: Path) -> None:
    proc = ace("fix", str(broken), "--line", "5", "--json", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model"] == "local" and out["cost_usd"] == 0
    (patch,) = out["patches"]
    assert patch["path"] == str(broken)
    assert patch["edits"] == [
        {
            "range": {"start": {"line": 4, "character": 9}, "end": {"line": 4, "character": 11}},
            "newText": "is",
        }
    ]
    assert patch["verification"] == {
        "status": "verified",
        "checker": "ruff",
        "message": "verified by ruff: E711 gone, 0 new",
        "gone": ["E711"],
        "remaining": [],
        "unjudged": [],
        "new": [],
    }
    (attempt,) = out["attempts"]
    assert attempt["model"] == "local" and attempt["outcome"] == "ok"
    assert set(attempt) == {"model", "provider", "outcome", "latency_ms", "cost_usd", "reason"}


def test_diagnostics_file_from_any_linter(broken: Path, tmp_path: Path) -> None:
    diags = [d for d in ruff_diagnostics(broken) if d["code"] == "F401"]
    diag_file = tmp_path / "diags.json"
    diag_file.write_text(json.dumps(diags))
    proc = ace(
        "fix", str(broken), "--diagnostics", str(diag_file), cwd=tmp_path, home=tmp_path / "home"
    )
    assert proc.returncode == 0, proc.stderr
    assert "-import os\n" in proc.stdout and "x == None" not in proc.stdout.replace("-    if", "")
    assert "ace: verified by ruff: F401 gone, 0 new.\n" in proc.stderr


def test_too_many_diagnostics_are_trimmed_with_a_warning(broken: Path, tmp_path: Path) -> None:
    from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS

    (f401,) = [d for d in ruff_diagnostics(broken) if d["code"] == "F401"]
    diag_file = tmp_path / "diags.json"
    diag_file.write_text(json.dumps([f401] * (MAX_DIAGNOSTICS + 800)))
    proc = ace(
        "fix", str(broken), "--diagnostics", str(diag_file), cwd=tmp_path, home=tmp_path / "home"
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        f"ace: {MAX_DIAGNOSTICS + 800} diagnostics given; fixing the first {MAX_DIAGNOSTICS} "
        "(run again for the rest)." in proc.stderr
    )
    assert "-import os\n" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["fix", "missing.py"], "missing.py does not exist.", id="missing-file"),
        pytest.param(["fix", "bin.py"], "bin.py looks binary", id="binary-file"),
        pytest.param(
            ["fix", "mod.py", "--diagnostics", "bad.json"],
            "bad.json is not valid JSON",
            id="bad-json",
        ),
        pytest.param(
            ["fix", "mod.py", "--diagnostics", "obj.json"],
            "not an LSP Diagnostic",
            id="not-a-diagnostic",
        ),
        pytest.param(["fix", "app.js"], "pass --diagnostics FILE", id="js-without-diagnostics"),
        pytest.param(["fix", "mod.py", "--risk", "wild"], "invalid choice", id="bad-option"),
    ],
)
def test_input_errors_exit_2(broken: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bin.py").write_bytes(b"\x00\x01\x02")
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "obj.json").write_text('[{"message": "no range"}]')
    (tmp_path / "app.js").write_text("let x = 1\n")
    proc = ace(*args, cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert broken.read_text() == BROKEN


def test_nothing_to_fix_exits_1(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text("def f(x):\n    return x\n")
    proc = ace("fix", str(clean), cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ace: Nothing to fix: no diagnostics in {clean}."


def test_unfixable_diagnostic_exits_1_with_the_reason(broken: Path, tmp_path: Path) -> None:
    path = tmp_path / "undef.py"
    path.write_text("def f():\n    return y\n")
    proc = ace("fix", str(path), "--json", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["patches"] == []
    assert out["attempts"][0]["outcome"] == "unsupported"
    assert "ruff has no automatic fix for F821" in out["error"]
    assert path.read_text() == "def f():\n    return y\n"


def test_sample_in_the_repo_is_fixed(tmp_path: Path) -> None:
    proc = ace("fix", str(ROOT / "samples" / "broken.py"), cwd=ROOT, home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("--- a/broken.py\n+++ b/broken.py\n")
