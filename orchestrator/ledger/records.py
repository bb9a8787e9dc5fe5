"""What a usage ledger stores and answers, and the interface every ledger offers (`UsageLedger`).

A row is what `LedgerRow` has: when, who, which task, tier, model and provider, tokens, cost,
latency, outcome and place in the chain. There is no field for prompt text, replies or keys, so
no ledger can store them. SQLite's `Ledger` and the team's PostgreSQL ledger share these types.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from ace_lsp.orchestrator.stats import ModelStats
from ace_lsp.orchestrator.types import Attempt

INTERRUPTED = "interrupted"  # the outcome of an attempt whose process died while it ran


def as_text(value: object) -> str:
    """A column's text: an enum's value, else `str(value)`."""
    return str(value.value) if isinstance(value, Enum) else str(value)


@dataclass(frozen=True)
class LedgerRow:
    """One attempt of one model. No prompt, reply or key: the schema has no place for them."""

    ts: float  # epoch seconds (UTC) when the attempt ended
    request_id: str
    user: str
    task: str
    tier: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    outcome: str  # "ok" | an error kind ("server_error", "timeout", …) | "invalid_patch" | …
    chain_position: int  # 0-based position of the model in the routed chain
    attempt: int = 1  # retry number for that model
    # unique per row: a row written twice (a replayed spool, a retried batch) is stored once
    row_id: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)
    reservation_id: str | None = None  # the team budget's reservation this attempt ends

    @classmethod
    def from_attempt(
        cls,
        a: Attempt,
        *,
        request_id: str,
        user: str,
        task: str,
        tier: str,
        chain_position: int,
        attempt: int = 1,
        ts: float | None = None,
    ) -> LedgerRow:
        """The row of attempt `a`: the call's who and what, the attempt's figures."""
        return cls(
            ts=time.time() if ts is None else ts,
            request_id=request_id,
            user=user,
            task=as_text(task),
            tier=as_text(tier),
            model=a.model,
            provider=a.provider,
            input_tokens=a.input_tokens,
            output_tokens=a.output_tokens,
            cost_usd=a.cost_usd,
            latency_ms=a.latency_ms,
            outcome=a.outcome,
            chain_position=chain_position,
            attempt=attempt,
        )


@dataclass(frozen=True)
class InFlight:
    """An attempt that has started: its row_id is the one its LedgerRow will have when it ends.

    If the process dies before that row is written, the next process to open the ledger turns
    the marker into an "interrupted" row costing the estimate: the vendor may have billed it, and
    the budget should count what it may have cost rather than nothing.
    """

    row_id: str
    ts: float
    request_id: str
    user: str
    task: str
    tier: str
    model: str
    provider: str
    estimate_usd: float
    chain_position: int
    attempt: int


@dataclass(frozen=True)
class UsageLine:
    """Attempts of one model for one task in a period. Latencies come from "ok" attempts only."""

    model: str
    task: str
    calls: int
    ok: int
    failures: int  # neither ok nor cancelled
    cancelled: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    p50_ms: float | None
    p95_ms: float | None
    user: str | None = None  # set in a team view, where lines are per user too

    def stats(self) -> ModelStats:
        """As `Health` counts: success rate over the attempts that were not cancelled."""
        counted = self.calls - self.cancelled
        return ModelStats(
            calls=counted,
            p50_ms=self.p50_ms,
            p95_ms=self.p95_ms,
            success_rate=self.ok / counted if counted else None,
        )


def stats_by_model(lines: Iterable[UsageLine], task: str) -> dict[str, ModelStats]:
    """Model id -> figures for `task`: the `stats` argument of `budget.suggest_downgrade`."""
    task = as_text(task)
    return {line.model: line.stats() for line in lines if line.task == task}


class UsageLedger(Protocol):
    """What the orchestrator and the CLI need of a ledger: SQLite's `Ledger`, or the team's."""

    @property
    def where(self) -> str:
        """Where the rows go, for people: a file path, or a database without its password."""
        ...

    async def record(self, row: LedgerRow) -> None:
        """Write `row`; returns once it is stored, and raises LedgerError if it was not."""
        ...

    def record_nowait(self, row: LedgerRow) -> None:
        """Queue `row` and return at once; `flush()` reports a failed write."""
        ...

    def begin(self, marker: InFlight) -> None:
        """An attempt starts; the row with the same row_id ends it (see `InFlight`)."""
        ...

    async def flush(self) -> None:
        """Wait until every row queued so far is stored; raises LedgerError if one failed."""
        ...

    async def close(self) -> None:
        """Store what is queued and let the ledger go; a second call does nothing."""
        ...

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]:
        """user -> (spent since `day_start`, spent since `month_start`): for `Budget(spent=…)`."""
        ...

    async def usage(
        self, since: float, until: float | None = None, user: str | None = None
    ) -> list[UsageLine]:
        """Attempts from `since` to before `until`, of `user` or all, one line per (model, task)."""
        ...

    async def recent(self, per_model: int = 100) -> list[LedgerRow]:
        """The newest `per_model` rows of each model, oldest first: for `Health.warm`."""
        ...
