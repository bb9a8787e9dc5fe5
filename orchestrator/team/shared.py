"""The ledger ACE uses in team mode: PostgreSQL while it answers, a local spool while it does not.

Online, rows go to PostgreSQL in batches (they wait up to ~50 ms on the event loop to share a
transaction) and every reservation is made in the database. When the database stops answering, a
write or a reservation fails with `Unreachable` and the ledger goes offline:

- rows go to a local SQLite spool (the same format as the personal ledger), nothing is dropped;
- reservations are checked against a conservative local allowance (`offline_usd` per outage, and
  never more than the room the database last reported), so a team cap can be passed by at most
  that much per member while the database is away;
- a background task tries to reconnect every `reconnect_s`; once it can, it replays the spool in
  batches (each row has a unique `row_id`, so a batch sent twice is stored once), then deletes the
  replayed rows from the spool and goes online again.

Rows left in the spool by an earlier process (it died while offline) are replayed when the ledger
next reaches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psycopg.conninfo import conninfo_to_dict

from ace_lsp.orchestrator.budget import usd
from ace_lsp.orchestrator.errors import LedgerError, OverBudget, Unreachable
from ace_lsp.orchestrator.ledger import InFlight, Ledger, LedgerRow, UsageLine
from ace_lsp.orchestrator.ledger.batching import Linger
from ace_lsp.orchestrator.team.pg import PgLedger, Scope, display_url

if TYPE_CHECKING:
    from ace_lsp.orchestrator.config import AceConfig
    from ace_lsp.orchestrator.health import Health

log = logging.getLogger("ace.team")

ONLINE = "online"
OFFLINE = "offline"
_REPLAY_BATCH = 500


@dataclass(frozen=True)
class TeamSettings:
    """How a team ledger works: the database URL and the `[team]` settings."""

    url: str
    offline_usd: float = 0.25  # what a member may spend per outage without the database
    reservation_ttl_s: float = 600.0  # a dead process's reservations are released after this
    reconnect_s: float = 5.0  # how often to try the database while offline
    share_health: bool = True  # steer routing by the whole team's recent attempts
    health_refresh_s: float = 15.0
    connect_timeout_s: float = 5.0


class TeamLedger:
    """The `UsageLedger` of a team, with the shared budget's `reserve`. Open with `open()`."""

    def __init__(self, settings: TeamSettings, spool: Ledger) -> None:
        self.settings = settings
        self.spool = spool
        self.pg: PgLedger | None = None
        self.user = _url_user(settings.url)  # the database role (confirmed once connected)
        self.admin = False
        self.reason: str | None = None  # why offline, one sentence
        self.replayed = 0  # rows sent from the spool to the database
        self.on_state: Callable[[str], None] | None = None  # told when online/offline changes
        self._lingering: Linger[LedgerRow] = Linger(self._write_soon)  # rows share a transaction
        self._writes: set[asyncio.Task[None]] = set()
        self._reconnect: asyncio.Task[None] | None = None
        self._follow: asyncio.Task[None] | None = None
        self._closed = False
        # the offline allowance: reservations made and money spent since the database went away
        self._offline_reserved: dict[str, float] = {}
        self._offline_spent = 0.0
        self._allowance = settings.offline_usd
        self._last_room: float | None = None

    @classmethod
    async def open(cls, settings: TeamSettings, spool_path: Path) -> TeamLedger:
        """Open the spool and try the database once; offline (and retrying) if it is away.

        Raises `LedgerError` only when the spool cannot be opened. A database that answers but
        refuses ACE (no schema and no right to create it, a wrong password) is treated as away:
        `reason` says why, and the warning is logged.
        """
        led = cls(settings, Ledger(spool_path))
        try:
            await led._connect()
        except LedgerError as exc:
            # away, or refusing ACE (no schema yet, a role without rights): either way fixes go
            # on under the offline allowance, and the ledger keeps trying
            led._go_offline(exc.reason)
        return led

    @property
    def where(self) -> str:
        """The database's URL without its password."""
        return display_url(self.settings.url)

    @property
    def state(self) -> str:
        """ONLINE while a connection pool to the database is open, else OFFLINE."""
        return ONLINE if self.pg is not None else OFFLINE

    async def _connect(self) -> None:
        pg = await PgLedger.open(self.settings.url, timeout_s=self.settings.connect_timeout_s)
        try:
            await self._replay(pg)
        except BaseException:
            await pg.close()
            raise
        self.pg, self.user, self.admin, self.reason = pg, pg.user, pg.admin, None
        self._offline_reserved.clear()
        self._offline_spent = 0.0
        if self.on_state is not None:
            self.on_state(ONLINE)
        try:
            await self._replay(pg)  # rows spooled while the first replay ran
        except Unreachable as exc:
            self._go_offline(exc.reason)

    async def _replay(self, pg: PgLedger) -> None:
        while rows := await self.spool.pending(_REPLAY_BATCH):
            await pg.insert(rows)
            await self.spool.forget([r.row_id for r in rows])
            self.replayed += len(rows)
            log.info("Replayed %d spooled usage rows to %s.", len(rows), self.where)

    def _go_offline(self, reason: str) -> None:
        room = self._last_room
        self._allowance = (
            self.settings.offline_usd if room is None else min(self.settings.offline_usd, room)
        )
        first = self.reason is None  # not already offline for another reason
        pg, self.pg, self.reason = self.pg, None, reason
        if pg is not None or first:
            log.warning(
                "%s ACE keeps working with a local spool and an allowance of %s until it answers.",
                reason,
                usd(self._allowance),
            )
        if pg is not None:
            task = asyncio.ensure_future(pg.close())
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
            if self.on_state is not None:
                self.on_state(OFFLINE)
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.ensure_future(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        while not self._closed and self.state == OFFLINE:
            await asyncio.sleep(self.settings.reconnect_s)
            try:
                await self._connect()
            except LedgerError as exc:
                self.reason = exc.reason
                log.debug("The team ledger is still away: %s", exc.reason)

    # -- writing ------------------------------------------------------------------------------

    def record_nowait(self, row: LedgerRow) -> None:
        """Queue `row` for the database (the spool while offline) and return at once."""
        if self._closed:
            raise LedgerError(f"The team ledger {self.where} is closed.")
        self._settle_offline(row)
        if not self._lingering.add(row):
            raise RuntimeError("the team ledger is written from a running event loop")

    def begin(self, marker: InFlight) -> None:
        """Nothing to note: in team mode the database's reservation is the in-flight record (it
        expires when its process dies), and a spool marker would outlive its row sent elsewhere."""

    async def record(self, row: LedgerRow) -> None:
        """Write `row` to the database (the spool while offline); returns once it is written."""
        if self._closed:
            raise LedgerError(f"The team ledger {self.where} is closed.")
        self._settle_offline(row)
        self._lingering.hand_on(row)
        await self._drain()

    def _write_soon(self, rows: list[LedgerRow]) -> None:
        if not rows:
            return
        task = asyncio.ensure_future(self._write(rows))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, rows: list[LedgerRow]) -> None:
        pg = self.pg
        if pg is not None:
            try:
                await pg.insert(rows)
                return
            except Unreachable as exc:
                self._go_offline(exc.reason)
            except LedgerError as exc:  # refused, not away: keep the rows, say so
                log.warning("%s The rows are kept in the local spool.", exc.reason)
        for row in rows:
            self.spool.record_nowait(row)
        await self.spool.flush()

    async def _drain(self) -> None:
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def flush(self) -> None:
        """Wait until every row queued so far is in the database or the spool."""
        self._lingering.hand_on()
        await self._drain()
        await self.spool.flush()

    async def close(self) -> None:
        """Write what is queued, stop the background tasks, close database and spool; idempotent."""
        if self._closed:
            return
        await self.flush()
        self._closed = True
        for task in (self._reconnect, self._follow):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.pg is not None:
            await self.pg.close()
        await self.spool.close()

    # -- the shared budget --------------------------------------------------------------------

    async def reserve(
        self,
        reservation_id: str,
        user: str,
        amount: float,
        *,
        daily: float | None,
        monthly: float | None,
        model: str | None = None,
    ) -> None:
        """Reserve `amount` in the team's books, or raise OverBudget saying which cap."""
        pg = self.pg
        if pg is not None:
            try:
                refusal = await pg.reserve(
                    reservation_id,
                    amount,
                    daily=daily,
                    monthly=monthly,
                    ttl_s=self.settings.reservation_ttl_s,
                )
            except Unreachable as exc:
                self._go_offline(exc.reason)
            else:
                if refusal is not None:
                    self._last_room = max(0.0, refusal.cap - refusal.spent - refusal.reserved)
                    raise OverBudget(refusal.sentence(pg.user, amount, model))
                return
        used = self._offline_spent + math.fsum(self._offline_reserved.values())
        if used + amount > self._allowance + 1e-9:
            subject = f"{model}'s estimate" if model else "The estimate"
            raise OverBudget(
                f"{subject} {usd(amount)} does not fit ACE's offline allowance ({usd(used)} of "
                f"{usd(self._allowance)} used) while the team ledger is unreachable; "
                "it resets when the ledger answers again."
            )
        self._offline_reserved[reservation_id] = amount

    def release_soon(self, reservation_id: str) -> None:
        """Give a reservation back without waiting (its call never started); best effort: an
        unreleased reservation expires anyway."""
        self._offline_reserved.pop(reservation_id, None)
        pg = self.pg
        if pg is None:
            return

        async def release() -> None:
            with contextlib.suppress(LedgerError):
                await pg.release(reservation_id)

        task = asyncio.ensure_future(release())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _settle_offline(self, row: LedgerRow) -> None:
        if row.reservation_id is not None and row.reservation_id in self._offline_reserved:
            del self._offline_reserved[row.reservation_id]
            self._offline_spent += row.cost_usd

    async def status(self, daily: float | None, monthly: float | None) -> dict[str, Scope] | None:
        """The database's figures for this user and the team; None while offline."""
        pg = self.pg
        if pg is None:
            return None
        try:
            figures = await pg.status(daily, monthly)
        except Unreachable as exc:
            self._go_offline(exc.reason)
            return None
        rooms = [
            limit - spent - s.reserved
            for s in figures.values()
            for limit, spent in ((s.daily_limit, s.spent_today), (s.monthly_limit, s.spent_month))
            if limit is not None
        ]
        self._last_room = max(0.0, min(rooms)) if rooms else None
        return figures

    def offline_status(self) -> dict[str, float]:
        """The offline allowance and how much of it is used since the database went away."""
        return {
            "allowance": self._allowance,
            "used": self._offline_spent + math.fsum(self._offline_reserved.values()),
        }

    # -- reading ------------------------------------------------------------------------------

    def _online(self) -> PgLedger:
        pg = self.pg
        if pg is None:
            raise LedgerError(
                f"The team ledger at {self.where} is unreachable ({self.reason or 'offline'}); "
                "try again when it answers."
            )
        return pg

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]:
        """This user's spending today and this month, from the database; empty while offline."""
        if self.pg is None:
            return {}
        try:
            return await self.pg.spent_by_user(day_start, month_start)
        except Unreachable as exc:
            self._go_offline(exc.reason)
            return {}

    async def usage(
        self,
        since: float,
        until: float | None = None,
        user: str | None = None,
        *,
        by_user: bool = False,
    ) -> list[UsageLine]:
        """The database's usage lines, per user too if `by_user`; a LedgerError while offline."""
        return await self._online().usage(since, until, user, by_user=by_user)

    async def recent(self, per_model: int = 100) -> list[LedgerRow]:
        """The latest rows per model, to warm health with; none while offline (and a database
        that stops answering here sends the ledger offline, as a failed write does)."""
        pg = self.pg
        if pg is None:
            return []
        try:
            return await pg.recent(per_model)
        except Unreachable as exc:
            self._go_offline(exc.reason)
            return []

    # -- shared health ------------------------------------------------------------------------

    def share_health(self, health: Health) -> None:
        """Feed `health` with the other members' attempts as they land (when configured)."""
        if self.settings.share_health and self._follow is None:
            self._follow = asyncio.ensure_future(self._follow_loop(health))

    async def _follow_loop(self, health: Health) -> None:
        after: int | None = None
        while not self._closed:
            pg = self.pg
            if pg is not None:
                try:
                    if after is None:
                        after = await pg.last_row()
                    else:
                        after, rows = await pg.others_since(after)
                        for row in rows:
                            health.record(row.model, row.outcome, row.latency_ms)
                except Unreachable as exc:
                    self._go_offline(exc.reason)
                except LedgerError as exc:
                    log.debug("Shared health not read: %s", exc.reason)
            await asyncio.sleep(self.settings.health_refresh_s)


def _url_user(url: str) -> str:
    """The role libpq will log in as: the URL's user, else $PGUSER, else the OS user."""
    import os

    try:
        user = conninfo_to_dict(url).get("user")
    except Exception:  # an invalid URL fails on connect, with its own message
        user = None
    return str(user or os.environ.get("PGUSER") or getpass.getuser())


async def open_team(config: AceConfig) -> TeamLedger:
    """The team ledger the config asks for (`ledger_url` and the [team] section)."""
    if config.ledger_url is None:
        raise ValueError("no ledger_url in the config")
    options = {k: v for k, v in config.team.items()}
    settings = TeamSettings(url=config.ledger_url, **options)  # type: ignore[arg-type]
    return await TeamLedger.open(settings, config.spool_path)
