"""Reports the `ace` command line and the language server both answer: the models panel
(`ace models --json`, command `ace.models`) and the usage view (`ace usage --json`, command
`ace.usage`), as JSON-ready dicts from a running orchestrator. Rendering is the CLI's."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ace_lsp.orchestrator import budget as budgeting
from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.orchestrator.ledger import UsageLedger, UsageLine, stats_by_model
from ace_lsp.orchestrator.registry import Registry
from ace_lsp.orchestrator.types import Tier


def model_rows(orchestrator: Orchestrator) -> list[dict[str, Any]]:
    unavailable = orchestrator.unavailable()
    rows = []
    for model in orchestrator.registry:
        stats = orchestrator.health.stats(model.id)
        reason = unavailable.get(model.provider)
        rows.append(
            {
                "id": model.id,
                "provider": model.provider,
                "wire_name": model.wire_name,
                "input_per_1m": round(model.input_per_1k * 1000, 6),
                "output_per_1m": round(model.output_per_1k * 1000, 6),
                "context_window": model.context_window,
                "max_output": model.max_output,
                "tasks": list(model.tasks),
                "available": reason is None,
                "unavailable_reason": reason,
                "circuit": orchestrator.health.state(model.id),
                "calls": stats.calls,
                "p50_ms": stats.p50_ms,
                "success_rate": stats.success_rate,
            }
        )
    return rows


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
