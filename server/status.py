"""The budget for status bars: notification `ace/budget` after `initialized` and after every model
call, command `ace.budget` returning the same object, and one warning at 80% and at 100% of a
daily or monthly budget."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ace_lsp.orchestrator.budget import usd, utc_today
from ace_lsp.orchestrator.types import Attempt, TaskType
from ace_lsp.server.app import AceServer

if TYPE_CHECKING:
    from ace_lsp.orchestrator.team.shared import TeamLedger

log = logging.getLogger(__name__)

BUDGET_NOTIFICATION = "ace/budget"
BUDGET_COMMAND = "ace.budget"
THRESHOLDS = (0.8, 1.0)


def remember_call(ls: AceServer, model: str | None, attempts: Sequence[Attempt]) -> None:
    """Keep what the last model call cost and how long the user waited, for `lastCall`."""
    if not attempts:
        return
    ls.last_call = {
        "model": model or attempts[-1].model,
        "costUsd": round(sum(a.cost_usd for a in attempts), 6),
        "latencyMs": round(sum(a.latency_ms for a in attempts), 1),
    }


async def payload(ls: AceServer) -> dict[str, Any]:
    orch = await ls.orchestrator()
    s = ls.settings
    team = orch.team
    user = s.user_id if team is None else team.user
    limits = s.call_options(TaskType.AUTO_FIX, orch.budget)  # with a workspace's lower caps
    status = orch.budget.status(user, s.tier, daily=limits.daily_usd, monthly=limits.monthly_usd)
    data: dict[str, Any] = {
        "tier": s.tier.value,
        "user": user,
        "spentToday": round(status.spent_today, 6),
        "dailyLimit": status.daily_limit,
        "spentMonth": round(status.spent_month, 6),
        "monthlyLimit": status.monthly_limit,
        "lastCall": ls.last_call,
        "ledger": "ok" if orch.ledger is not None else "offline",
    }
    if team is not None:
        data.update(await _team(team, status.daily_limit, status.monthly_limit))
    return data


async def _team(team: TeamLedger, daily: float | None, monthly: float | None) -> dict[str, Any]:
    """Team mode: the database's figures for this user (all their machines) and the team; or,
    while it is unreachable, `"ledger": "offline"` and what is left of the offline allowance."""
    figures = await team.status(daily, monthly)
    if figures is None:
        allowance = team.offline_status()
        return {
            "ledger": "offline",
            "ledgerKind": "team",
            "offline": {
                "reason": team.reason,
                "allowanceUsd": round(allowance["allowance"], 6),
                "usedUsd": round(allowance["used"], 6),
            },
        }
    mine, whole = figures["user"], figures["team"]
    return {
        "ledgerKind": "team",
        "spentToday": round(mine.spent_today, 6),
        "dailyLimit": mine.daily_limit,
        "spentMonth": round(mine.spent_month, 6),
        "monthlyLimit": mine.monthly_limit,
        "team": {
            "spentToday": round(whole.spent_today, 6),
            "dailyLimit": whole.daily_limit,
            "spentMonth": round(whole.spent_month, 6),
            "monthlyLimit": whole.monthly_limit,
            "reserved": round(whole.reserved, 6),
        },
    }


def _warn(ls: AceServer, data: dict[str, Any]) -> None:
    today = utc_today()
    periods = (
        ("daily", "today", data["spentToday"], data["dailyLimit"], today.isoformat()),
        (
            "monthly",
            "this month",
            data["spentMonth"],
            data["monthlyLimit"],
            today.strftime("%Y-%m"),
        ),
    )
    for name, when, spent, limit, stamp in periods:
        if not limit:
            continue
        for share in reversed(THRESHOLDS):
            key = (data["user"], name, stamp, share)
            if spent >= share * limit:
                if key not in ls.budget_warned:
                    ls.budget_warned.add(key)
                    if share >= 1.0:
                        text = (
                            f"ACE: {data['user']} has spent {usd(spent)} {when}, the whole "
                            f"{name} budget of {usd(limit)}; only free models run until it resets."
                        )
                        kind = lsp.MessageType.Error
                    else:
                        text = (
                            f"ACE: {data['user']} has spent {usd(spent)} {when}, "
                            f"{share:.0%} of the {name} budget of {usd(limit)}."
                        )
                        kind = lsp.MessageType.Warning
                    ls.tell(text, kind)
                break  # the highest threshold passed is the one to tell


async def publish(ls: AceServer) -> dict[str, Any]:
    """Send `ace/budget` (and any threshold warning); returns the object sent."""
    data = await payload(ls)
    ls.protocol.notify(BUDGET_NOTIFICATION, data)
    _warn(ls, data)
    return data


def setup(server: AceServer) -> None:
    @server.command(BUDGET_COMMAND)
    async def budget(ls: AceServer, *args: Any) -> dict[str, Any]:
        return await payload(ls)
