"""The ledger and budget calls on PostgreSQL (psycopg 3, async, a small connection pool).

Each call is one round trip on a pooled autocommit connection; the budget's arithmetic happens in
the database (see `schema`), so that every ACE process of a team sees the same money. Connection
failures raise `Unreachable`; anything the database refuses (a role of another team, a row with
a poison cost) raises `LedgerError` with one sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ace_lsp.orchestrator.budget import usd
from ace_lsp.orchestrator.errors import LedgerError, Unreachable
from ace_lsp.orchestrator.ledger import LedgerRow, UsageLine, period_filter
from ace_lsp.orchestrator.team import schema

log = logging.getLogger("ace.team")

# not `ts` nor the user: the database stamps both (members may not supply them)
_ROW_FIELDS = (
    "row_id", "request_id", "task", "tier", "model", "provider", "input_tokens",
    "output_tokens", "cost_usd", "latency_ms", "outcome", "chain_position", "attempt",
    "reservation_id",
)  # fmt: skip
_TYPES = (
    "text", "text", "text", "text", "text", "text", "int4", "int4", "float8", "float8",
    "text", "int4", "int4", "text",
)  # fmt: skip
# one statement per batch (arrays, unnested): the trigger then updates the totals once per batch
_INSERT = (
    f"INSERT INTO ace.runs ({', '.join(_ROW_FIELDS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{t}[]" for t in _TYPES)
    + ") ON CONFLICT (row_id) DO NOTHING"
)
_CHUNK = 5000  # rows per statement
_OK_LATENCY = "WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE outcome = 'ok')"
_RECENT_FIELDS = (
    "ts", "request_id", "task", "tier", "model", "provider", "input_tokens", "output_tokens",
    "cost_usd", "latency_ms", "outcome", "chain_position", "attempt",
)  # fmt: skip


# what each CHECK constraint of the schema means, for the sentence a refused write ends in
_CHECKS = {
    "runs_cost_usd_range": "a row's cost must be a number of dollars from 0 up to 1000",
    "runs_figures_range": "a row's latency and token counts must be numbers of 0 or more",
    "reservations_amount_range": "an amount must be a number of dollars from 0 up to 1000",
}


def display_url(url: str) -> str:
    """The URL without its password, for messages and `ace/budget`."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(an invalid URL)"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


_SECRETS: set[str] = set()  # passwords of the URLs opened: never in a message or a log line


def _remember_password(url: str) -> None:
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.ProgrammingError:
        password = None
    match = re.search(r"://[^/@:]*:([^@/]+)@", url)  # also from a URL libpq cannot parse
    for found in (password, match.group(1) if match else None):
        if found:
            _SECRETS.add(str(found))


def scrub(text: str) -> str:
    """`text` with every known password, and any user:password@ in a URL, masked."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return re.sub(r"(://[^/@:\s]*):[^@/\s]+@", r"\1:***@", text)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return scrub(text).rstrip(".")


class _PoolLog(logging.Filter):
    """psycopg_pool warns at each failed reconnect, quoting libpq (which may quote the URL):
    ACE reports the state itself, once, so these go to debug, scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), None
        if record.levelno >= logging.ERROR:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_POOL_LOG = _PoolLog()
logging.getLogger("psycopg.pool").addFilter(_POOL_LOG)
logging.getLogger("psycopg").addFilter(_POOL_LOG)


def _unreachable(where: str, exc: BaseException) -> Unreachable:
    why = "no answer in time" if isinstance(exc, asyncio.TimeoutError) else _why(exc)
    return Unreachable(f"The team ledger at {where} does not answer ({why}).")


@contextlib.contextmanager
def _errors(where: str, *, no_rights: str, refused: str = "refused ACE") -> Iterator[None]:
    """Database errors as one-sentence LedgerErrors (Unreachable when the database is away)."""
    try:
        yield
    except schema.MigrationNeeded as exc:
        raise LedgerError(str(exc)) from None
    except pgerrors.InsufficientPrivilege:
        raise LedgerError(no_rights) from None
    except pgerrors.CheckViolation as exc:
        why = _CHECKS.get(exc.diag.constraint_name or "") or _why(exc)
        raise LedgerError(f"The team ledger at {where} {refused}: {why}.") from None
    except (PoolTimeout, psycopg.OperationalError, asyncio.TimeoutError) as exc:
        if (refusal := _not_in_team(where, exc)) is not None:
            raise refusal from None
        raise _unreachable(where, exc) from None
    except psycopg.Error as exc:
        raise LedgerError(f"The team ledger at {where} {refused} ({_why(exc)}).") from None


def _not_in_team(where: str, exc: BaseException) -> LedgerError | None:
    """The server answered, but this role may not connect to the team's database (CONNECT is for
    the team's own roles): not a reason to wait for it, a grant to ask for."""
    found = re.search(r'permission denied for database "([^"]+)"', str(exc))
    if found is None:
        return None
    database = found.group(1)
    try:
        user = conninfo_to_dict(where).get("user")
    except psycopg.ProgrammingError:
        user = None
    who = str(user or os.environ.get("PGUSER") or getpass.getuser())
    return LedgerError(
        f"The team ledger at {where} refused {who}: this role is not a member of that team "
        f"(it may not connect to database {database}); ask its admin to grant it "
        f"{schema.sql_name(schema.team_roles(database)[0])}."
    )


async def _connect_once(url: str, timeout_s: float) -> Any:
    """One autocommit connection: its error says why (a pool's would only say it timed out)."""
    _remember_password(url)
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise LedgerError(
            f"The team ledger URL is not a valid PostgreSQL URL ({_why(exc)}); "
            "check ledger_url or ACE_LEDGER_URL."
        ) from None
    with _errors(display_url(url), no_rights=f"{display_url(url)} refused the connection."):
        return await asyncio.wait_for(
            psycopg.AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(timeout_s))
            ),
            timeout_s + 1,
        )


@dataclass(frozen=True)
class Identity:
    """Who a connection acts as in a team's database, and that team's roles."""

    user: str  # the database role logged in
    admin: bool  # a member of the team's admin role
    member_role: str  # `ace_member_<db>`: what makes a login a member of this team
    admin_role: str  # `ace_team_admin_<db>`


async def _prepare(conn: Any, where: str, migrate: bool) -> Identity:
    """Check (or bring up to date) the schema on `conn`; who this role is, and whether admin."""
    no_rights = (
        f"The team ledger at {where} has no ACE schema (version {schema.SCHEMA_VERSION}) "
        "and this role may not create it; ask the database owner to run `ace team migrate`."
    )
    with _errors(where, no_rights=no_rights):
        version = await schema.current_version(conn)
    if version != schema.SCHEMA_VERSION:
        if not migrate:
            raise LedgerError(
                f"The team ledger at {where} has schema version {version}, not "
                f"{schema.SCHEMA_VERSION}; run `ace team migrate` as its owner."
            )
        if version:
            no_rights = (
                f"The team ledger at {where} has ACE schema version {version}, not "
                f"{schema.SCHEMA_VERSION}, and this role may not upgrade it; ask the database "
                "owner to run `ace team migrate`."
            )
    with _errors(where, no_rights=no_rights):
        if version != schema.SCHEMA_VERSION:
            await schema.migrate(conn)
        member_role, admin_role = await schema.roles_in(conn)
        cur = await conn.execute(
            "SELECT current_user::text, pg_has_role(current_user, %s, 'MEMBER')", (admin_role,)
        )
        row = await cur.fetchone()
    assert row is not None
    return Identity(str(row[0]), bool(row[1]), member_role, admin_role)


@dataclass(frozen=True)
class Migrated:
    """What `ace team migrate` did, and the roles that make people members and admins."""

    before: int  # the schema version found
    applied: int  # migrations applied
    member_role: str
    admin_role: str
    shared_roles: bool  # version 1's `ace_member`/`ace_team_admin` still belong to this team


async def migrate_schema(url: str, timeout_s: float = 5.0) -> Migrated:
    """`ace team migrate`: bring ACE's schema at `url` up to date."""
    where = display_url(url)
    conn = await _connect_once(url, timeout_s)
    no_rights = (
        f"This role may not create ACE's schema in {where}; run it as the database's owner "
        "(a role that may also create roles) or as a superuser."
    )
    try:
        with _errors(where, no_rights=no_rights, refused="refused the migration"):
            before = await schema.current_version(conn)
            applied = await schema.migrate(conn)
            member, admin = await schema.roles_in(conn)
            cur = await conn.execute(
                "SELECT CASE WHEN to_regrole('ace_member') IS NULL THEN false"
                " ELSE pg_has_role('ace_member', %s::name, 'MEMBER') END"
                " OR CASE WHEN to_regrole('ace_team_admin') IS NULL THEN false"
                " ELSE pg_has_role('ace_team_admin', %s::name, 'MEMBER') END",
                (member, admin),
            )
            row = await cur.fetchone()
        return Migrated(before, applied, member, admin, bool(row and row[0]))
    finally:
        await conn.close()


@dataclass(frozen=True)
class Scope:
    """What one scope ("user" or "team") has spent and reserved, and its caps (None: no cap)."""

    spent_today: float
    spent_month: float
    reserved: float
    daily_limit: float | None
    monthly_limit: float | None


@dataclass(frozen=True)
class Refusal:
    """Which cap a reservation would pass, with the figures the database saw."""

    scope: str  # "user" | "team"
    period: str  # "daily" | "monthly"
    spent: float
    reserved: float
    cap: float

    def sentence(self, user: str, amount: float, model: str | None = None) -> str:
        """The refusal as one sentence for the user: whose budget, which period, and the figures."""
        subject = f"{model}'s estimate {usd(amount)}" if model else f"The estimate {usd(amount)}"
        whose = "the team's" if self.scope == "team" else f"{user}'s"
        return (
            f"{subject} would pass {whose} {self.period} budget ({usd(self.spent)} spent, "
            f"{usd(self.reserved)} reserved, limit {usd(self.cap)})."
        )


@dataclass(frozen=True)
class Voided:
    """A run an admin voided: it stays in `ace.runs`, marked, and counts nowhere."""

    id: int
    user: str
    cost_usd: float
    ts: float
    voided_at: float  # epoch seconds
    voided_by: str
    newly: bool  # False: it had been voided before (by `voided_by`)


class PgLedger:
    """A team ledger at `url`; `await PgLedger.open(url)`, and `await close()` when done."""

    def __init__(self, pool: AsyncConnectionPool[Any], url: str, who: Identity) -> None:
        self.pool = pool
        self.url = url
        self.user = who.user  # the database role this process acts as
        self.admin = who.admin  # member of the team's admin role
        self.member_role = who.member_role
        self.admin_role = who.admin_role

    @property
    def where(self) -> str:
        """The database's URL without its password."""
        return display_url(self.url)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrate: bool = True,
        max_size: int = 4,
        timeout_s: float = 5.0,
    ) -> PgLedger:
        """Connect (a pool of up to `max_size`), bring the schema up to date when allowed.

        Raises `Unreachable` when the database does not answer within `timeout_s`, `LedgerError`
        when it answers but cannot be used (schema missing and this role may not create it).
        """
        where = display_url(url)
        conn = await _connect_once(url, timeout_s)
        try:
            who = await _prepare(conn, where, migrate)
        finally:
            await conn.close()
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=timeout_s,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout_s))},
            check=AsyncConnectionPool.check_connection,
            name="ace-team",
        )
        try:
            await pool.open(wait=True, timeout=timeout_s)
        except (PoolTimeout, psycopg.OperationalError) as exc:
            await pool.close()
            raise _unreachable(where, exc) from None
        return cls(pool, url, who)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.pool.close()

    async def _fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        no_rights = f"The team ledger at {self.where} does not allow {self.user} to do that."
        with _errors(self.where, no_rights=no_rights):
            async with self.pool.connection() as conn:
                cur = await conn.execute(sql, params)
                return list(await cur.fetchall())

    async def ping(self) -> None:
        """A trivial query, to see that the database answers; Unreachable when it is away."""
        await self._fetch("SELECT 1")

    # -- rows ---------------------------------------------------------------------------------

    async def insert(self, rows: Sequence[LedgerRow]) -> None:
        """Store `rows` in one transaction; rows already stored (same row_id) are skipped."""
        if not rows:
            return
        chunks = [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]
        params = [[[getattr(r, f) for r in chunk] for f in _ROW_FIELDS] for chunk in chunks]
        no_rights = f"The team ledger at {self.where} does not let {self.user} write rows."
        with _errors(self.where, no_rights=no_rights, refused=f"refused {len(rows)} usage rows"):
            for attempt in range(3):  # a deadlock (another batch's locks) is worth a retry
                try:
                    async with self.pool.connection() as conn, conn.transaction():
                        for columns in params:
                            await conn.execute(_INSERT, columns)
                    return
                except pgerrors.DeadlockDetected:
                    if attempt == 2:
                        raise

    async def others_since(self, after: int, limit: int = 1000) -> tuple[int, list[LedgerRow]]:
        """Other members' attempts stored after row id `after`, oldest first, without who made
        them; and the id to ask after next time."""
        rows = await self._fetch(
            f"SELECT id, {', '.join(_RECENT_FIELDS)} FROM ace.others_since(%s, %s)",
            (after, limit),
        )
        last = int(rows[-1][0]) if rows else after
        return last, [self._anonymous(r[1:]) for r in rows]

    async def last_row(self) -> int:
        """The newest row's id: where `others_since` starts."""
        return int((await self._fetch("SELECT ace.last_run_id()"))[0][0])

    async def recent(self, per_model: int = 100) -> list[LedgerRow]:
        """The team's newest `per_model` attempts of each model, oldest first (for `Health`)."""
        rows = await self._fetch(
            f"SELECT {', '.join(_RECENT_FIELDS)} FROM ace.recent_runs(%s)", (per_model,)
        )
        return [self._anonymous(r) for r in rows]

    @staticmethod
    def _anonymous(values: Sequence[Any]) -> LedgerRow:
        fields = dict(zip(_RECENT_FIELDS, values, strict=True))
        return LedgerRow(user="", **fields)

    # -- budgets ------------------------------------------------------------------------------

    async def reserve(
        self,
        reservation_id: str,
        amount: float,
        *,
        daily: float | None,
        monthly: float | None,
        ttl_s: float,
    ) -> Refusal | None:
        """Reserve `amount` for this user in the database; the cap it would pass, or None."""
        rows = await self._fetch(
            "SELECT granted, scope, period, spent, reserved, cap "
            "FROM ace.reserve(%s, %s, %s, %s, %s)",
            (reservation_id, amount, daily, monthly, ttl_s),
        )
        granted, scope, period, spent, reserved, cap = rows[0]
        if granted:
            return None
        return Refusal(str(scope), str(period), float(spent), float(reserved), float(cap))

    async def release(self, reservation_id: str) -> None:
        """Free reservation `reservation_id` now, instead of when it expires."""
        await self._fetch("SELECT ace.release(%s)", (reservation_id,))

    async def status(self, daily: float | None, monthly: float | None) -> dict[str, Scope]:
        """ "user" and "team" -> their figures now; `daily`/`monthly`: this user's own caps."""
        rows = await self._fetch(
            "SELECT scope, spent_today, spent_month, reserved, daily_limit, monthly_limit "
            "FROM ace.budget_status(%s, %s)",
            (daily, monthly),
        )
        return {
            str(r[0]): Scope(
                float(r[1]),
                float(r[2]),
                float(r[3]),
                None if r[4] is None else float(r[4]),
                None if r[5] is None else float(r[5]),
            )
            for r in rows
        }

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]:
        """This user's spending today and this month (UTC, as the database counts it)."""
        mine = (await self.status(None, None))["user"]
        return {self.user: (mine.spent_today, mine.spent_month)}

    async def set_budget(self, subject: str, daily: float | None, monthly: float | None) -> None:
        """Set a cap: subject is a user's role, '*' (every user) or '' (the team). Admins only."""
        self._admin_only("Setting budgets")
        await self._fetch(
            "INSERT INTO ace.budgets AS b (subject, daily_usd, monthly_usd) VALUES (%s, %s, %s) "
            "ON CONFLICT (subject) DO UPDATE SET daily_usd = EXCLUDED.daily_usd, "
            "monthly_usd = EXCLUDED.monthly_usd, updated_by = current_user, updated_at = now() "
            "RETURNING subject",
            (subject, daily, monthly),
        )

    def _admin_only(self, what: str) -> None:
        if not self.admin:
            raise LedgerError(
                f"{what} needs the {self.admin_role} role, which {self.user} does not have; "
                "ask your team admin."
            )

    async def budget_of(self, subject: str) -> tuple[float | None, float | None]:
        """The (daily, monthly) caps set for `subject`; (None, None) when none is set."""
        rows = await self._fetch(
            "SELECT daily_usd, monthly_usd FROM ace.budgets WHERE subject = %s", (subject,)
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    # -- voiding (admins) ---------------------------------------------------------------------

    async def void_run(self, run: str) -> Voided:
        """Void one run (its number in `ace.runs`, or its row_id): it no longer counts."""
        self._admin_only("Voiding")
        no_rights = f"Voiding needs the {self.admin_role} role, which {self.user} does not have."
        with _errors(self.where, no_rights=no_rights):
            async with self.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT run_id, run_user, run_cost, run_ts, "
                    "extract(epoch FROM run_voided_at)::float8, run_voided_by, newly "
                    "FROM ace.void_run(%s)",
                    (run,),
                )
                found = await cur.fetchone()
        if found is None:
            raise LedgerError(f"The team ledger at {self.where} has no run {run}.")
        rid, user, cost, ts, at, by, newly = found
        return Voided(int(rid), str(user), float(cost), float(ts), float(at), str(by), bool(newly))

    async def void_reservation(self, reservation_id: str) -> tuple[str, float] | None:
        """End a reservation now: (whose, amount), or None when there is none by that id."""
        self._admin_only("Voiding")
        rows = await self._fetch(
            "SELECT res_user, res_amount FROM ace.void_reservation(%s)", (reservation_id,)
        )
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    # -- reading ------------------------------------------------------------------------------

    async def usage(
        self,
        since: float,
        until: float | None = None,
        user: str | None = None,
        *,
        by_user: bool = False,
    ) -> list[UsageLine]:
        """Attempts grouped by (model, task) — and by user with `by_user` — as the SQLite ledger.

        Row level security decides what is seen: a member's own rows; an admin's, everyone's.
        """
        cond, args = period_filter(since, until, user, mark="%s", user_column="user_name")
        keys = "user_name, model, task" if by_user else "NULL::text, model, task"
        group = "user_name, model, task" if by_user else "model, task"
        rows = await self._fetch(
            f"SELECT {keys}, count(*), count(*) FILTER (WHERE outcome = 'ok'), "
            "count(*) FILTER (WHERE outcome = 'cancelled'), coalesce(sum(cost_usd), 0), "
            "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
            f"percentile_cont(0.5) {_OK_LATENCY}, percentile_cont(0.95) {_OK_LATENCY} "
            f"FROM ace.runs WHERE voided_at IS NULL AND {cond} GROUP BY {group} ORDER BY {group}",
            args,
        )
        return [
            UsageLine(
                model=str(model),
                task=str(task),
                calls=int(calls),
                ok=int(ok),
                failures=int(calls - ok - cancelled),
                cancelled=int(cancelled),
                cost_usd=float(cost),
                input_tokens=int(tin),
                output_tokens=int(tout),
                p50_ms=None if p50 is None else float(p50),
                p95_ms=None if p95 is None else float(p95),
                user=None if who is None else str(who),
            )
            for who, model, task, calls, ok, cancelled, cost, tin, tout, p50, p95 in rows
        ]
