"""`ace usage`: spend today and this month against the budgets, by model and task, from the ledger,
with downgrade suggestions (a cheaper model that does as well on the same task)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator import budget as budgeting
from orchestrator.call import Orchestrator
from orchestrator.ledger import Ledger, UsageLine, stats_by_model
from orchestrator.registry import Registry
from orchestrator.types import Tier


def suggestions(lines: list[UsageLine], registry: Registry) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        model = registry.find(line.model)
        if model is None:
            continue
        cheaper = budgeting.suggest_downgrade(
            line.task, model, stats_by_model(lines, line.task), list(registry)
        )
        if cheaper is not None:
            out.append(
                {
                    "task": line.task,
                    "model": model.id,
                    "instead": cheaper.id,
                    "reason": f"{cheaper.id} is cheaper and succeeds as often at {line.task}.",
                }
            )
    return out


async def report(
    orchestrator: Orchestrator, ledger: Ledger, user: str, tier: Tier
) -> dict[str, Any]:
    day, month = budgeting.period_starts(budgeting.utc_today())
    status = orchestrator.budget.status(user, tier)
    lines = await ledger.usage(month, user=user)
    today = await ledger.usage(day, user=user)
    return {
        "user": user,
        "tier": tier.value,
        "today": {"spent_usd": status.spent_today, "limit_usd": status.daily_limit},
        "month": {"spent_usd": status.spent_month, "limit_usd": status.monthly_limit},
        "per_request_limit_usd": status.per_request_limit,
        "by_model_task": [asdict(line) for line in lines],
        "calls_today": sum(line.calls for line in today),
        "suggestions": suggestions(lines, orchestrator.registry),
        "ledger": str(ledger.path),
    }


def _limit(v: float | None) -> str:
    return "no limit" if v is None else budgeting.usd(v)


def render(data: dict[str, Any], console: Console) -> None:
    today, month = data["today"], data["month"]
    console.print(
        f"ACE usage for {data['user']} ({data['tier']} tier): "
        f"today {budgeting.usd(today['spent_usd'])} of {_limit(today['limit_usd'])}, "
        f"this month {budgeting.usd(month['spent_usd'])} of {_limit(month['limit_usd'])}."
    )
    if not data["by_model_task"]:
        console.print("No calls this month.")
    else:
        table = Table(title="This month, by model and task")
        for col in ("model", "task", "calls", "ok", "failed", "cost", "p50"):
            table.add_column(col)
        for line in data["by_model_task"]:
            p50 = line["p50_ms"]
            table.add_row(
                line["model"],
                line["task"],
                str(line["calls"]),
                str(line["ok"]),
                str(line["failures"]),
                budgeting.usd(line["cost_usd"]),
                "-" if p50 is None else f"{p50:.0f} ms",
            )
        console.print(table)
    for s in data["suggestions"]:
        console.print(f"Suggestion: for {s['task']}, try {s['instead']} instead of {s['model']}.")


async def run(args: argparse.Namespace) -> int:
    orchestrator = await Orchestrator.open()
    try:
        if orchestrator.ledger is None:
            print("ace: the usage ledger cannot be opened; run `ace doctor` to see why.")
            return 1
        data = await report(orchestrator, orchestrator.ledger, args.user, Tier(args.tier))
    finally:
        await orchestrator.aclose()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        render(data, Console())
    return 0
