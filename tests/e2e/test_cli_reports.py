"""`ace models`, `ace usage` and `ace doctor` as a user runs them (subprocesses, real ledger)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ace_lsp.orchestrator.ledger import Ledger, LedgerRow
from tests.e2e.conftest import server_env
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.openai import KEY, openai_app


def ace(
    *args: str, home: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**server_env(home), **(extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[tuple[FakeVendor, dict[str, str]]]:
    vendor = FakeVendor()
    with serve(openai_app(vendor)) as url:
        yield vendor, {"OPENAI_API_KEY": KEY, "ACE_OPENAI_BASE_URL": f"{url}/v1"}


def test_models_lists_every_model_and_which_can_be_called(tmp_path: Path) -> None:
    proc = ace("models", "--json", home=tmp_path / "home", extra={"OPENAI_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    rows = {r["id"]: r for r in json.loads(proc.stdout)}
    assert len(rows) == 14 and {"id", "provider", "available"} <= set(rows["gpt-4o"])
    assert rows["gpt-4o"]["available"] and rows["local"]["available"]
    assert not rows["claude-3-5-sonnet"]["available"]
    assert "ANTHROPIC_API_KEY" in rows["claude-3-5-sonnet"]["unavailable_reason"]
    assert rows["gpt-4o"]["input_per_1m"] == 2.5
    assert KEY not in proc.stdout


def test_doctor_calls_each_configured_provider(
    tmp_path: Path, openai_fake: tuple[FakeVendor, dict[str, str]]
) -> None:
    vendor, env = openai_fake
    proc = ace("doctor", "--json", home=tmp_path / "home", extra=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    checks = {c["provider"]: c for c in json.loads(proc.stdout)}
    assert checks["openai"]["status"] == "pass" and checks["openai"]["model"] == "gpt-4o-mini"
    assert checks["openai"]["latency_ms"] > 0 and checks["openai"]["cost_usd"] > 0
    assert checks["local"]["status"] == "pass"
    assert checks["anthropic"]["status"] == "needs setup"
    assert vendor.requests[-1].body["max_tokens"] == 16


def test_doctor_fails_when_a_configured_provider_fails(
    tmp_path: Path, openai_fake: tuple[FakeVendor, dict[str, str]]
) -> None:
    vendor, env = openai_fake
    vendor.inject("gpt-4o-mini", Fault(status=500))
    proc = ace("doctor", home=tmp_path / "home", extra=env)
    assert proc.returncode == 1
    assert "fail" in proc.stdout and "server error" in proc.stdout


def _row(model: str, outcome: str, cost: float, user: str = "local") -> LedgerRow:
    return LedgerRow(
        ts=time.time(),
        request_id="r",
        user=user,
        task="AUTO_FIX",
        tier="pro",
        model=model,
        provider="x",
        input_tokens=100,
        output_tokens=50,
        cost_usd=cost,
        latency_ms=300.0,
        outcome=outcome,
        chain_position=0,
    )


def test_usage_reports_spend_and_suggests_a_cheaper_model(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def seed() -> None:
        ledger = Ledger(home / "ledger.sqlite3")
        for i in range(10):
            await ledger.record(_row("claude-3-5-sonnet", "ok" if i else "server_error", 0.01))
            await ledger.record(_row("devstral-small", "ok" if i else "invalid_patch", 0.001))
        await ledger.record(_row("gpt-4o", "ok", 0.5, user="someone-else"))
        await ledger.close()

    asyncio.run(seed())
    proc = ace("usage", "--json", "--tier", "pro", home=home)
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["today"]["spent_usd"] == pytest.approx(0.11)
    assert data["today"]["limit_usd"] == 5.0 and data["month"]["limit_usd"] == 50.0
    lines = {(x["model"], x["task"]): x for x in data["by_model_task"]}
    assert lines[("claude-3-5-sonnet", "AUTO_FIX")]["calls"] == 10
    assert ("gpt-4o", "AUTO_FIX") not in lines  # another user's
    assert data["suggestions"] == [
        {
            "task": "AUTO_FIX",
            "model": "claude-3-5-sonnet",
            "instead": "devstral-small",
            "reason": "devstral-small is cheaper and succeeds as often at AUTO_FIX.",
        }
    ]
    text = ace("usage", "--tier", "pro", home=home)
    assert "today $0.11 of $5.00" in text.stdout
    assert "try devstral-small instead of claude-3-5-sonnet" in text.stdout
