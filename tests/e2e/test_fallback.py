"""End to end: `ace fix` with cloud models on fake vendor servers; the primary fails in each way,
the chain falls back to a valid patch, and the ledger holds one row per attempt."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import server_env
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY as MISTRAL_KEY

SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
GOOD = (
    "Here is the fix.\n```diff\n--- a/mod.py\n+++ b/mod.py\n@@ -5,1 +5,1 @@\n"
    "-    if x == None:\n+    if x is None:\n```\n"
)
FIXED = SOURCE.replace("x == None", "x is None")
DEVSTRAL = "devstral-small-2505"
SONNET = "claude-3-5-sonnet-20241022"


def diff(old: str, new: str, line: int = 5, name: str = "mod.py") -> str:
    return f"```diff\n--- a/{name}\n+++ b/{name}\n@@ -{line},1 +{line},1 @@\n-{old}\n+{new}\n```\n"


@dataclass(frozen=True)
class Vendors:
    mistral: FakeVendor
    anthropic: FakeVendor
    env: dict[str, str]


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    mistral, anthropic = FakeVendor(), FakeVendor()
    with (
        serve(mistral_app(mistral)) as mistral_url,
        serve(fake_anthropic.create_app(anthropic)) as anthropic_url,
    ):
        env = {
            "MISTRAL_API_KEY": MISTRAL_KEY,
            "ACE_MISTRAL_BASE_URL": f"{mistral_url}/v1",
            "ANTHROPIC_API_KEY": fake_anthropic.API_KEY,
            "ACE_ANTHROPIC_BASE_URL": anthropic_url,
        }
        yield Vendors(mistral, anthropic, env)


CASES = [
    # a retryable failure moves on at once: the fallback is the retry
    pytest.param([Fault(status=500)], ["server_error"], id="500"),
    pytest.param([Fault(status=503)], ["overloaded"], id="503"),
    pytest.param([Fault(status=429, retry_after="0")], ["rate_limited"], id="429"),
    pytest.param([Fault(delay_s=3.0)], ["timeout"], id="read-timeout"),
    pytest.param([Fault(raw_body="{not json")], ["bad_response"], id="malformed-json"),
    pytest.param([Fault(empty=True)], ["bad_response"], id="empty-content"),
    pytest.param([Fault(text="The code looks fine to me.")], ["invalid_patch"], id="no-diff"),
    pytest.param(
        [Fault(text=diff("import os", "import sys", line=1))], ["invalid_patch"], id="out-of-range"
    ),
    pytest.param(
        [Fault(text=diff("    if x == None:", "    if x is None:", name="other.py"))],
        ["invalid_patch"],
        id="other-file",
    ),
    pytest.param(
        [Fault(text=diff("    if x == None:", "    if x is None"))], ["invalid_patch"], id="syntax"
    ),
    pytest.param(
        [Fault(text=diff("    if x == Nothing:", "    if x is None:"))],
        ["invalid_patch"],
        id="context-mismatch",
    ),
]


@pytest.mark.parametrize(("faults", "primary_outcomes"), CASES)
def test_primary_fails_then_a_later_model_fixes(
    vendors: Vendors, tmp_path: Path, faults: list[Fault], primary_outcomes: list[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        "[calls]\nmax_retries = 1\nretry_after_limit_s = 5\n\n"
        "[providers.devstral]\nread_timeout_s = 0.5\n"
    )
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    vendors.mistral.inject(DEVSTRAL, *faults)
    vendors.anthropic.inject(SONNET, Fault(text=GOOD))
    env = {**server_env(home), **vendors.env}
    proc = subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", "fix", str(path), "--json", "--apply"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    assert path.read_text() == FIXED
    assert out["model"] == "claude-3-5-sonnet"
    attempts = [(a["model"], a["outcome"]) for a in out["attempts"]]
    assert attempts == [("devstral-small", o) for o in primary_outcomes] + [
        ("claude-3-5-sonnet", "ok")
    ]
    for a in out["attempts"][:-1]:
        assert a["reason"] and a["reason"].endswith(".") and MISTRAL_KEY not in a["reason"]
    # the ledger: one row per attempt, same outcomes, costs adding up to what was reported
    with sqlite3.connect(home / "ledger.sqlite3") as db:
        rows = db.execute(
            "SELECT model, outcome, cost_usd FROM llm_runs ORDER BY chain_position, attempt"
        ).fetchall()
    assert [(m, o) for m, o, _ in rows] == attempts
    assert sum(c for _, _, c in rows) == pytest.approx(out["cost_usd"])
    assert (home / "ledger.sqlite3").stat().st_mode & 0o777 == 0o600


def test_an_auth_failure_skips_the_providers_other_models(vendors: Vendors, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    vendors.anthropic.inject(SONNET, Fault(status=500), Fault(status=500), Fault(status=500))
    env = {**server_env(home), **vendors.env, "MISTRAL_API_KEY": "wrong-key-0000"}
    proc = subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", "fix", str(path), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # devstral refuses the key -> codestral (same key) is skipped; sonnet fails; local fixes
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = json.loads(proc.stdout)
    outcomes = [(a["model"], a["outcome"]) for a in out["attempts"]]
    assert outcomes[0] == ("devstral-small", "auth")
    assert ("codestral", "auth") not in outcomes
    assert outcomes[-1] == ("local", "ok")
    assert "wrong-key-0000" not in proc.stdout + proc.stderr
