"""`ace usage`: spend today and this month against the budgets, by model and task, from the ledger,
with downgrade suggestions (a cheaper model that does as well on the same task)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from ace_lsp.orchestrator import budget as budgeting
from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.orchestrator.ledger import UsageLedger, UsageLine, stats_by_model
from ace_lsp.orchestrator.registry import Registry
from ace_lsp.orchestrator.types import Tier


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
    orchestrator: Orchestrator, ledger: UsageLedger, user: str, tier: Tier
) -> dict[str, Any]:
    """One user's spend; in team mode the user is the database role and the figures the team's."""
    team = orchestrator.team
    if team is not None:
        user = team.user
    day, month = budgeting.period_starts(budgeting.utc_today())
    status = orchestrator.budget.status(user, tier)
    spent_today, spent_month = status.spent_today, status.spent_month
    daily, monthly = status.daily_limit, status.monthly_limit
    data: dict[str, Any] = {}
    if team is not None:
        figures = await team.status(daily, monthly)
        if figures is not None:  # the database's figures: every machine of this user, team caps
            mine = figures["user"]
            spent_today, spent_month = mine.spent_today, mine.spent_month
            daily, monthly = mine.daily_limit, mine.monthly_limit
            data["team"] = asdict(figures["team"])
        data["ledger_state"] = team.state
    lines = await ledger.usage(month, user=user)
    today = await ledger.usage(day, user=user)
    return {
        "user": user,
        "tier": tier.value,
        "today": {"spent_usd": spent_today, "limit_usd": daily},
        "month": {"spent_usd": spent_month, "limit_usd": monthly},
        "per_request_limit_usd": status.per_request_limit,
        "by_model_task": [asdict(line) for line in lines],
        "calls_today": sum(line.calls for line in today),
        "suggestions": suggestions(lines, orchestrator.registry),
        "ledger": ledger.where,
        **data,
    }


class TeamViewRefused(Exception):
    """`ace usage --team` cannot be shown to this user; the message says why."""


async def team_report(orchestrator: Orchestrator) -> dict[str, Any]:
    """The whole team's month, per user, model and task: for members of ace_team_admin only."""
    team = orchestrator.team
    if team is None:
        raise TeamViewRefused(
            "There is no team ledger: set ledger_url in ACE's config.toml or ACE_LEDGER_URL."
        )
    if team.state != "online":
        raise TeamViewRefused(
            f"The team ledger at {team.where} is unreachable ({team.reason}); try again later."
        )
    if not team.admin:
        raise TeamViewRefused(
            f"The team view needs the ace_team_admin role, which {team.user} does not have; "
            "ask your team admin, or run `ace usage` for your own."
        )
    _day, month = budgeting.period_starts(budgeting.utc_today())
    lines = await team.usage(month, by_user=True)
    figures = await team.status(None, None)
    users: dict[str, dict[str, float | int]] = {}
    for line in lines:
        u = users.setdefault(line.user or "?", {"calls": 0, "cost_usd": 0.0})
        u["calls"] += line.calls
        u["cost_usd"] += line.cost_usd
    return {
        "team": None if figures is None else asdict(figures["team"]),
        "users": users,
        "by_user_model_task": [asdict(line) for line in lines],
        "ledger": team.where,
    }


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
