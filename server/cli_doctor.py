"""`ace doctor`: the provider test — one tiny real call per configured provider.

Each provider with a key gets one call to its cheapest model (latency, cost, pass/fail, through
the orchestrator so it is budgeted and in the ledger); those without a key are listed as
"needs setup" with what to set. Exit 1 when a configured provider fails.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ace_lsp.orchestrator.ace import FixContext, ace_auto_fix
from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.errors import AceError
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import (
    CodeIssue,
    LLMRequest,
    Message,
    Position,
    ProviderReply,
    TaskType,
    TextRange,
    Tier,
)
from ace_lsp.server.cli_config import load_and_tell

PROBE = (Message("user", "Reply with the single word OK."),)
LOCAL_SAMPLE = "import os\n"


@dataclass(frozen=True)
class Check:
    provider: str
    model: str | None
    status: str  # "pass" | "fail" | "needs setup" | "unused"
    latency_ms: float | None = None
    cost_usd: float | None = None
    detail: str = ""


def _reply_text(reply: ProviderReply) -> str:
    return reply.text


async def _probe(orch: Orchestrator, model: ModelSpec, user: str, tier: Tier) -> Check:
    t0 = time.perf_counter()
    options = CallOptions(models=(model.id,), max_retries=0, use_cache=False, attempt_timeout_s=60)
    try:
        if model.provider == "local":
            issue = CodeIssue(TextRange(Position(0, 7), Position(0, 9)), "unused", "F401", "ruff")
            ctx = FixContext("doctor.py", LOCAL_SAMPLE, options=options)
            fix = await ace_auto_fix(orch, ctx, [issue])
            cost, detail = fix.cost_usd, "fixed a sample F401"
        else:
            request = LLMRequest(TaskType.CHAT, PROBE, tier=tier, user=user, max_output_tokens=16)
            called = await orch.call(request, _reply_text, options)
            cost, detail = called.result.cost_usd, f"answered {called.value.strip()[:20]!r}"
    except AceError as exc:
        return Check(model.provider, model.id, "fail", _ms(t0), None, exc.reason)
    return Check(model.provider, model.id, "pass", _ms(t0), cost, detail)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


async def checks(orch: Orchestrator, user: str, tier: Tier) -> list[Check]:
    out = []
    unavailable = orch.unavailable()
    for name in sorted(orch.providers):
        models = sorted(
            (m for m in orch.registry if m.provider == name),
            key=lambda m: (m.input_per_1k + m.output_per_1k, m.id),
        )
        if not models:
            out.append(Check(name, None, "unused", detail="no model in the registry uses it"))
        elif name in unavailable:
            out.append(Check(name, models[0].id, "needs setup", detail=unavailable[name]))
        else:
            out.append(await _probe(orch, models[0], user, tier))
    return out


def ledger_line(orch: Orchestrator) -> str:
    """Where usage goes, and whether it can: the SQLite file, or the team's database and state."""
    if orch.ledger is None:
        return "none (it could not be opened; see the warning above)"
    team = orch.team
    if team is None:
        return orch.ledger.where
    role = "team admin" if team.admin else "member"
    if team.state == "online":
        return f"{team.where}, as {team.user} ({role})"
    return f"{team.where} is offline. {team.reason} Usage waits in {team.spool.where}."


async def run(args: argparse.Namespace) -> int:
    config = load_and_tell(Path.cwd())
    orch = await Orchestrator.open(config)
    try:
        results = await checks(orch, args.user, Tier(args.tier))
        ledger = ledger_line(orch)
    finally:
        await orch.aclose()
    if args.json:
        print(json.dumps([asdict(c) for c in results], indent=2))
    else:
        console = Console()
        table = Table(title="ACE provider test")
        for col in ("provider", "model", "result", "latency", "cost", "detail"):
            table.add_column(col)
        for c in results:
            table.add_row(
                c.provider,
                c.model or "-",
                c.status,
                "-" if c.latency_ms is None else f"{c.latency_ms:.0f} ms",
                "-" if c.cost_usd is None else f"${c.cost_usd:.4f}",
                c.detail,
            )
        console.print(table)
        passed = sum(c.status == "pass" for c in results)
        tried = sum(c.status in ("pass", "fail") for c in results)
        console.print(f"{passed}/{tried} configured providers passed; ledger: {ledger}")
    return 1 if any(c.status == "fail" for c in results) else 0
