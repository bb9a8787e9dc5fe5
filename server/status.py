"""The budget for status bars: notification `ace/budget` after `initialized`, after a settings
change and after every model call, command `ace.budget` returning the same object, and one warning
at 80% and at 100% of a daily or monthly budget."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp

from ace_lsp.orchestrator.budget import usd, utc_today
from ace_lsp.orchestrator.types import Attempt, TaskType
from ace_lsp.server.base import AceServer, Feature
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.engine import Engine, account

if TYPE_CHECKING:
    from ace_lsp.orchestrator.team.shared import TeamLedger

log = logging.getLogger(__name__)

BUDGET_NOTIFICATION = "ace/budget"
BUDGET_COMMAND = "ace.budget"
THRESHOLDS = (0.8, 1.0)


@dataclass(frozen=True)
class LastCall:
    """What the last model call cost and how long the user waited (`lastCall`)."""

    model: str
    cost_usd: float
    latency_ms: float

    @classmethod
    def of(cls, model: str | None, attempts: Sequence[Attempt]) -> LastCall | None:
        if not attempts:
            return None
        return cls(
            model=model or attempts[-1].model,
            cost_usd=round(sum(a.cost_usd for a in attempts), 6),
            latency_ms=round(sum(a.latency_ms for a in attempts), 1),
        )

    def json(self) -> dict[str, str | float]:
        return {"model": self.model, "costUsd": self.cost_usd, "latencyMs": self.latency_ms}


WarnKey = tuple[str, str, str, float]  # user, period, the period's date stamp, threshold


class Status(Feature):
    name = "status"

    def __init__(self, server: AceServer, config: Configuration, engine: Engine) -> None:
        self.server = server
        self.config = config
        self.engine = engine
        self.last_call: LastCall | None = None
        self._warned: set[WarnKey] = set()

    def register(self) -> None:
        @self.server.command(BUDGET_COMMAND)
        async def budget(*args: Any) -> dict[str, Any]:
            return await self.payload()

        self.engine.on_team_change(self.publish)

    async def initialized(self) -> None:
        await self.publish()

    async def settings_changed(self) -> None:
        await self.publish()

    def remember_call(self, model: str | None, attempts: Sequence[Attempt]) -> None:
        """Keep what the last model call cost and how long the user waited, for `lastCall`."""
        last = LastCall.of(model, attempts)
        if last is not None:
            self.last_call = last

    def last_call_json(self) -> dict[str, str | float] | None:
        return None if self.last_call is None else self.last_call.json()

    async def payload(self) -> dict[str, Any]:
        orch = await self.engine.get()
        s = self.config.settings
        team = orch.team
        user = account(orch, s.user_id)
        limits = s.call_options(TaskType.AUTO_FIX, orch.budget)  # with a workspace's lower caps
        status = orch.budget.status(
            user, s.tier, daily=limits.daily_usd, monthly=limits.monthly_usd
        )
        data: dict[str, Any] = {
            "tier": s.tier.value,
            "user": user,
            "spentToday": round(status.spent_today, 6),
            "dailyLimit": status.daily_limit,
            "spentMonth": round(status.spent_month, 6),
            "monthlyLimit": status.monthly_limit,
            "lastCall": self.last_call_json(),
            "ledger": "ok" if orch.ledger is not None else "offline",
        }
        if team is not None:
            data.update(await _team(team, status.daily_limit, status.monthly_limit))
        return data

    async def publish(self) -> dict[str, Any]:
        """Send `ace/budget` (and any threshold warning); returns the object sent."""
        data = await self.payload()
        self.server.protocol.notify(BUDGET_NOTIFICATION, data)
        for text, kind in warnings(data, self._warned):
            self.server.tell(text, kind)
        return data

    def publish_soon(self) -> None:
        """`publish` in the background (after a job, also a cancelled one: money was spent)."""
        self.server.background(self.publish())


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


def warnings(data: dict[str, Any], warned: set[WarnKey]) -> list[tuple[str, lsp.MessageType]]:
    """The threshold warnings `data` (an `ace/budget` object) calls for that are not in `warned`
    yet (they are added): for each period, the highest threshold passed."""
    out: list[tuple[str, lsp.MessageType]] = []
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
                if key not in warned:
                    warned.add(key)
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
                    out.append((text, kind))
                break  # the highest threshold passed is the one to tell
    return out
