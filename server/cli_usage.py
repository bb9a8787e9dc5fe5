"""`ace usage`: spend today and this month against the budgets, by model and task, from the ledger,
with downgrade suggestions (a cheaper model that does as well on the same task)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ace_lsp.orchestrator import budget as budgeting
from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.orchestrator.types import Tier
from ace_lsp.server.reports import TeamViewRefused, report, team_report


def render_team(data: dict[str, Any], console: Console) -> None:
    team = data["team"] or {}
    console.print(
        f"ACE team usage ({data['ledger']}): today "
        f"{budgeting.usd(team.get('spent_today', 0.0))} of {_limit(team.get('daily_limit'))}, "
        f"this month {budgeting.usd(team.get('spent_month', 0.0))} of "
        f"{_limit(team.get('monthly_limit'))}."
    )
    table = Table(title="This month, by user, model and task")
    for col in ("user", "model", "task", "calls", "ok", "failed", "cost"):
        table.add_column(col)
    for line in data["by_user_model_task"]:
        table.add_row(
            line["user"],
            line["model"],
            line["task"],
            str(line["calls"]),
            str(line["ok"]),
            str(line["failures"]),
            budgeting.usd(line["cost_usd"]),
        )
    console.print(table)


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
        if args.team:
            try:
                data = await team_report(orchestrator)
            except TeamViewRefused as exc:
                print(f"ace: {exc}")
                return 1
        else:
            data = await report(orchestrator, orchestrator.ledger, args.user, Tier(args.tier))
    finally:
        await orchestrator.aclose()
    if args.json:
        print(json.dumps(data, indent=2))
    elif args.team:
        render_team(data, Console())
    else:
        render(data, Console())
    return 0
