"""The usage ledger (the seed's `llmRuns`): one SQLite row per attempt, written off the event loop.

What is stored is what `LedgerRow` has: when, who, which task, tier, model and provider, tokens,
cost, latency, outcome and place in the chain. There is no column for prompt text, replies or keys,
so none can be stored.

The file is created with mode 0600 (its folder 0700 when the ledger creates it) and runs in WAL mode
with `synchronous=NORMAL`: a committed transaction survives the process being killed (the OS holds
the WAL pages), and the file always passes `PRAGMA integrity_check`; only a power cut can lose the
last few commits.

An attempt in flight has a marker (`begin`, table `llm_inflight`) that its row ends in the same
transaction. A process killed mid-call leaves markers; the next process to open the ledger turns
those of dead processes into "interrupted" rows costing their estimates, so that calls the vendor
may have billed are neither lost nor free (a kill within ~50 ms of a call's start can still lose
its marker).

Writes go through one dedicated writer thread with its own connection. Rows that queue up while it
commits are written together in one transaction (group commit), and each `record()` resolves once
its row is committed. Reads use a second connection on a reader thread; WAL lets them run beside
the writer. Failures (read-only or full disk, a file that is not a database) raise `LedgerError`,
one sentence, so that the caller can decide to go on without the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ace_lsp.orchestrator.errors import AceError
from ace_lsp.orchestrator.health import ModelStats, percentile
from ace_lsp.orchestrator.paths import private_dir
from ace_lsp.orchestrator.types import Attempt

log = logging.getLogger("ace.ledger")

T = TypeVar("T")

_LINGER_S = 0.05  # how long a `record_nowait` row waits in memory for others to share a commit
_MAX_BATCH = 4096  # rows per transaction at most; more just wait for the next one


class LedgerError(AceError):
    kind = "ledger_error"


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
        return cls(
            ts=time.time() if ts is None else ts,
            request_id=request_id,
            user=user,
            task=_text(task),
            tier=_text(tier),
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
    task = _text(task)
    return {line.model: line.stats() for line in lines if line.task == task}


def period_filter(
    since: float,
    until: float | None,
    user: str | None,
    *,
    mark: str = "?",
    user_column: str = "user",
) -> tuple[str, list[object]]:
    """The WHERE condition and its parameters for usage queries (SQLite's `?`, psycopg's `%s`)."""
    where = [f"ts >= {mark}"]
    args: list[object] = [since]
    if until is not None:
        where.append(f"ts < {mark}")
        args.append(until)
    if user is not None:
        where.append(f"{user_column} = {mark}")
        args.append(user)
    return " AND ".join(where), args


class UsageLedger(Protocol):
    """What the orchestrator and the CLI need of a ledger: SQLite's `Ledger`, or the team's."""

    @property
    def where(self) -> str:
        """Where the rows go, for people: a file path, or a database without its password."""
        ...

    async def record(self, row: LedgerRow) -> None: ...

    def record_nowait(self, row: LedgerRow) -> None: ...

    def begin(self, marker: InFlight) -> None:
        """An attempt starts; the row with the same row_id ends it (see `InFlight`)."""
        ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]: ...

    async def usage(
        self, since: float, until: float | None = None, user: str | None = None
    ) -> list[UsageLine]: ...

    async def recent(self, per_model: int = 100) -> list[LedgerRow]: ...


_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LedgerRow))
_COLUMNS = ", ".join(_FIELDS)
_INSERT = f"INSERT OR IGNORE INTO llm_runs ({_COLUMNS}) VALUES ({', '.join('?' * len(_FIELDS))})"
# A batch as one statement over a JSON array of rows: sqlite3 lets go of the GIL at every step of
# an executemany, and on a busy event loop each hand-back is a thread switch that slows the loop's
# own system calls (measured: ~0.3 ms per model call at 32 concurrent on 2 cores); one step, one.
_INSERT_JSON = (
    f"INSERT OR IGNORE INTO llm_runs ({_COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(_FIELDS)))
    + " FROM json_each(?)"
)

# One entry per schema version; each is applied once, in order, inside one transaction.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS llm_runs (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            user TEXT NOT NULL,
            task TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost_usd REAL NOT NULL,
            latency_ms REAL NOT NULL,
            outcome TEXT NOT NULL,
            chain_position INTEGER NOT NULL,
            attempt INTEGER NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS llm_runs_ts ON llm_runs (ts)",
        "CREATE INDEX IF NOT EXISTS llm_runs_user_ts ON llm_runs (user, ts)",
        "CREATE INDEX IF NOT EXISTS llm_runs_model_ts ON llm_runs (model, ts)",
    ),
    (  # 2: ids that make rows idempotent, for the team ledger's spool
        "ALTER TABLE llm_runs ADD COLUMN row_id TEXT",
        "ALTER TABLE llm_runs ADD COLUMN reservation_id TEXT",
        "UPDATE llm_runs SET row_id = lower(hex(randomblob(16))) WHERE row_id IS NULL",
        "CREATE UNIQUE INDEX IF NOT EXISTS llm_runs_row_id ON llm_runs (row_id)",
    ),
    (  # 3: attempts in flight, so that a killed process's billed calls are not lost
        """CREATE TABLE IF NOT EXISTS llm_inflight (
            row_id TEXT PRIMARY KEY,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            user TEXT NOT NULL,
            task TEXT NOT NULL,
            tier TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            estimate_usd REAL NOT NULL,
            chain_position INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            owner TEXT NOT NULL
        )""",
    ),
)
_BEGIN_JSON = (
    "INSERT OR IGNORE INTO llm_inflight SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(12))
    + " FROM json_each(?)"
)
_END = "DELETE FROM llm_inflight WHERE row_id = ?"
_END_JSON = "DELETE FROM llm_inflight WHERE row_id IN (SELECT value FROM json_each(?))"
_ROW_ID = _FIELDS.index("row_id")
INTERRUPTED = "interrupted"  # the outcome of an attempt whose process died while it ran


class _Begin(tuple[object, ...]):
    """The parameters of an in-flight marker, told apart from a row's in the writer's batch."""


class _Ends(tuple[object, ...]):
    """A row's parameters, when the row ends a marker already handed to the writer."""


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


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot, from /proc): with the pid, its identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat.rsplit(b")", 1)[-1].split()[19].decode()  # field 22; the name may hold spaces


def _owner() -> str:
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def _alive(owner: str) -> bool:
    """Is the process that wrote a marker still running (the same process, not a reused pid)?"""
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    return not started or _start_time(pid) in ("", started)


def _recover(conn: sqlite3.Connection) -> int:
    """Turn the markers of dead processes into "interrupted" rows; returns how many."""
    markers = conn.execute("SELECT * FROM llm_inflight").fetchall()
    dead = [m for m in markers if not _alive(str(m[11]))]
    if not dead:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for m in dead:
            row_id, ts, request_id, user, task, tier, model, provider, estimate, pos, att = m[:11]
            row = LedgerRow(
                ts=ts, request_id=request_id, user=user, task=task, tier=tier, model=model,
                provider=provider, input_tokens=0, output_tokens=0, cost_usd=estimate,
                latency_ms=0.0, outcome=INTERRUPTED, chain_position=pos, attempt=att,
                row_id=row_id,
            )  # fmt: skip
            conn.execute(_INSERT, _params(row))
            conn.execute(_END, (row_id,))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    log.warning(
        "%d model calls were in flight when an earlier ACE process ended; they are in the ledger "
        "as '%s', each costing its estimate.",
        len(dead),
        INTERRUPTED,
    )
    return len(dead)


SCHEMA_VERSION = len(_MIGRATIONS)


def _text(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def _params(row: LedgerRow) -> tuple[object, ...]:
    """Row -> SQL parameters, with types checked here, on the caller's side of the queue."""
    return (
        float(row.ts),
        _text(row.request_id),
        _text(row.user),
        _text(row.task),
        _text(row.tier),
        _text(row.model),
        _text(row.provider),
        int(row.input_tokens),
        int(row.output_tokens),
        float(row.cost_usd),
        float(row.latency_ms),
        _text(row.outcome),
        int(row.chain_position),
        int(row.attempt),
        _text(row.row_id),
        None if row.reservation_id is None else _text(row.reservation_id),
    )


def _row(values: Sequence[Any]) -> LedgerRow:
    return LedgerRow(*values)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).rstrip(".") or type(exc).__name__


def _chmod_private(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to SCHEMA_VERSION; safe to run again, and beside another process."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])  # under the lock
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"The usage ledger {path} has schema version {version}, newer than this ACE "
                f"understands ({SCHEMA_VERSION}); upgrade ACE or point ACE_HOME elsewhere."
            )
        for statements in _MIGRATIONS[version:]:
            for sql in statements:
                conn.execute(sql)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@dataclass
class _Item:
    params: tuple[object, ...] | None  # None: a flush or stop marker (or a batch, below)
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    stop: bool = False
    batch: tuple[tuple[object, ...], ...] = ()  # record_nowait rows handed over together


def _resolve(item: _Item, error: str | None) -> None:
    loop, fut = item.loop, item.future
    if loop is None or fut is None:
        return

    def done() -> None:
        if fut.done():  # the awaiting task was cancelled; the row is written all the same
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(LedgerError(error))

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(done)


class Ledger:
    """The usage ledger at `path`. Create it on the event loop; `await close()` when done."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.commits = 0  # transactions committed by the writer
        self.rows_written = 0
        self._closed = False
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._nowait_error: str | None = None
        self._lingering: list[tuple[object, ...]] = []  # record_nowait rows not yet handed over
        self._scheduled = False  # a hand-over is due within _LINGER_S
        # in-flight markers: begun and not handed over yet (an attempt that ends before the next
        # hand-over never costs a write), and handed over but not yet ended by their rows
        self._unwritten: dict[str, _Begin] = {}
        self._written: set[str] = set()
        self._owner = _owner()
        try:
            parent = self.path.parent
            created = not parent.exists()
            private_dir(parent)
            if created:
                os.chmod(parent, 0o700)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            _chmod_private(self.path)
            self._wconn = _connect(self.path)
            mode = self._wconn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            self._wconn.execute("PRAGMA synchronous = NORMAL")
            _migrate(self._wconn, self.path)
            self.recovered = _recover(self._wconn)
            _chmod_private(self.path)
            self._rconn = _connect(self.path)
            self._rconn.execute("PRAGMA query_only = 1")
        except LedgerError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(
                f"Cannot open the usage ledger {self.path} ({_reason(exc)}); "
                "check that its folder is writable and the disk is not full."
            ) from None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ace-ledger-read")
        self._writer = threading.Thread(target=self._run, name="ace-ledger-write", daemon=True)
        self._writer.start()

    # -- writing ------------------------------------------------------------------------------

    def _put(self, item: _Item) -> None:
        if self._closed:
            raise LedgerError(f"The usage ledger {self.path} is closed.")
        self._queue.put(item)

    def _ending(self, row: LedgerRow) -> tuple[object, ...]:
        """The row's parameters, marked `_Ends` when its marker has gone to the writer."""
        params = _params(row)
        if self._unwritten.pop(row.row_id, None) is not None:
            return params  # its marker was never written: nothing to delete
        if row.row_id in self._written:
            self._written.discard(row.row_id)
            return _Ends(params)
        return params

    def _schedule(self) -> bool:
        """Make sure a hand-over is due; False when there is no running loop to wait on."""
        if self._scheduled:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        loop.call_later(_LINGER_S, self._hand_over)
        self._scheduled = True
        return True

    async def record(self, row: LedgerRow) -> None:
        """Write `row`; returns once it is committed. Raises LedgerError if the write failed."""
        params = self._ending(row)
        self._hand_over()  # keep the order rows were recorded in
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._put(_Item(params, loop, fut))
        await fut

    def record_nowait(self, row: LedgerRow) -> None:
        """Queue `row` and return at once; it is committed within ~50 ms; `flush()` tells failures.

        Rows wait on the event loop and go to the writer together: waking the writer thread and
        committing once per row cost ~0.4 ms of CPU per model call.
        """
        if self._closed:
            raise LedgerError(f"The usage ledger {self.path} is closed.")
        params = self._ending(row)
        if not self._schedule():
            self._put(_Item(params))
            return
        self._lingering.append(params)

    def begin(self, marker: InFlight) -> None:
        """An attempt starts: note it; its row ends it. The marker is written with the next batch
        (within ~50 ms) only if the attempt is still running then."""
        if self._closed:
            raise LedgerError(f"The usage ledger {self.path} is closed.")
        params = _Begin(
            (
                marker.row_id, float(marker.ts), marker.request_id, _text(marker.user),
                _text(marker.task), _text(marker.tier), marker.model, marker.provider,
                float(marker.estimate_usd), int(marker.chain_position), int(marker.attempt),
                self._owner,
            )
        )  # fmt: skip
        if not self._schedule():
            self._written.add(marker.row_id)
            self._put(_Item(params))
            return
        self._unwritten[marker.row_id] = params

    def _hand_over(self) -> None:
        self._scheduled = False
        if self._lingering or self._unwritten:
            rows = [*self._unwritten.values(), *self._lingering]
            self._written.update(self._unwritten)
            self._unwritten, self._lingering = {}, []
            self._queue.put(_Item(None, batch=tuple(rows)))  # one wake-up of the writer

    async def flush(self) -> None:
        """Wait until every row queued so far is committed; raise if a queued row failed."""
        self._hand_over()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._put(_Item(None, loop, fut))
        await fut
        error, self._nowait_error = self._nowait_error, None
        if error is not None:
            raise LedgerError(error)

    def _run(self) -> None:
        """Writer thread: take what is queued, commit it in one transaction, wake the waiters."""
        conn = self._wconn
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [p for item in batch for p in (item.batch or (item.params,)) if p is not None]
            error: str | None = None
            if rows:
                begins = [p for p in rows if isinstance(p, _Begin)]
                runs = [p for p in rows if not isinstance(p, _Begin)] if begins else rows
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    if begins:
                        conn.execute(_BEGIN_JSON, (json.dumps(begins),))
                    if runs:
                        conn.execute(_INSERT_JSON, (json.dumps(runs),))
                    ends = [p[_ROW_ID] for p in runs if isinstance(p, _Ends)]
                    if ends:
                        conn.execute(_END_JSON, (json.dumps(ends),))
                    conn.execute("COMMIT")
                    self.commits += 1
                    self.rows_written += len(runs)
                except Exception as exc:
                    with contextlib.suppress(sqlite3.Error):
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                    error = (
                        f"Could not write to the usage ledger {self.path} ({_reason(exc)}); "
                        "check that the disk is writable and not full."
                    )
            for item in batch:
                unawaited = item.batch or (item.params is not None and item.future is None)
                if unawaited and error is not None:
                    if self._nowait_error is None:
                        log.warning("%s", error)
                    self._nowait_error = error
                # a flush or stop marker only waits for the commit; its rows' failure is
                # reported by flush() through _nowait_error, or to each row's own record()
                _resolve(item, error if item.params is not None else None)
                stop = stop or item.stop
        with contextlib.suppress(sqlite3.Error):
            conn.close()

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close both connections. Idempotent.

        Failures of queued `record_nowait` rows were logged; call `flush()` first to get them.
        """
        if self._closed:
            return
        self._hand_over()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Item(None, loop, fut, stop=True))
        self._closed = True
        await fut
        await asyncio.to_thread(self._writer.join)
        await loop.run_in_executor(self._reader, self._rconn.close)
        self._reader.shutdown(wait=False)

    # -- reading ------------------------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise LedgerError(f"The usage ledger {self.path} is closed.")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, functools.partial(fn, self._rconn))
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Could not read the usage ledger {self.path} ({_reason(exc)})."
            ) from None

    async def spent(self, user: str, since: float) -> float:
        """What `user` spent from `since` (epoch seconds) on, in USD."""

        def q(c: sqlite3.Connection) -> float:
            sql = "SELECT TOTAL(cost_usd) FROM llm_runs WHERE user = ? AND ts >= ?"
            return float(c.execute(sql, (user, since)).fetchone()[0])

        return await self._read(q)

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]:
        """user -> (spent since `day_start`, spent since `month_start`): for `Budget(spent=…)`."""

        def q(c: sqlite3.Connection) -> dict[str, tuple[float, float]]:
            sql = (
                "SELECT user, TOTAL(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END), "
                "TOTAL(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END) "
                "FROM llm_runs WHERE ts >= ? GROUP BY user"
            )
            args = (day_start, month_start, min(day_start, month_start))
            return {u: (float(d), float(m)) for u, d, m in c.execute(sql, args)}

        return await self._read(q)

    async def usage(
        self, since: float, until: float | None = None, user: str | None = None
    ) -> list[UsageLine]:
        """Attempts from `since` to before `until`, grouped by (model, task), sorted that way."""
        cond, args = period_filter(since, until, user)

        def q(c: sqlite3.Connection) -> list[UsageLine]:
            c.execute("BEGIN")  # one snapshot for both queries
            try:
                groups = c.execute(
                    "SELECT model, task, COUNT(*), TOTAL(outcome = 'ok'), "
                    "TOTAL(outcome = 'cancelled'), TOTAL(cost_usd), TOTAL(input_tokens), "
                    f"TOTAL(output_tokens) FROM llm_runs WHERE {cond} "
                    "GROUP BY model, task ORDER BY model, task",
                    args,
                ).fetchall()
                latencies: dict[tuple[str, str], list[float]] = {}
                for model, task, ms in c.execute(
                    f"SELECT model, task, latency_ms FROM llm_runs WHERE {cond} "
                    "AND outcome = 'ok' ORDER BY model, task, latency_ms",
                    args,
                ):
                    latencies.setdefault((model, task), []).append(float(ms))
            finally:
                c.execute("COMMIT")
            lines = []
            for model, task, calls, ok, cancelled, cost, tin, tout in groups:
                lat = latencies.get((model, task), [])
                lines.append(
                    UsageLine(
                        model=model,
                        task=task,
                        calls=int(calls),
                        ok=int(ok),
                        failures=int(calls - ok - cancelled),
                        cancelled=int(cancelled),
                        cost_usd=float(cost),
                        input_tokens=int(tin),
                        output_tokens=int(tout),
                        p50_ms=percentile(lat, 50),
                        p95_ms=percentile(lat, 95),
                    )
                )
            return lines

        return await self._read(q)

    async def pending(self, limit: int = 1000) -> list[LedgerRow]:
        """The oldest `limit` rows, queued ones included (as a spool: rows waiting to be sent)."""
        await self.flush()

        def q(c: sqlite3.Connection) -> list[LedgerRow]:
            sql = f"SELECT {_COLUMNS} FROM llm_runs ORDER BY id LIMIT ?"
            return [_row(values) for values in c.execute(sql, (limit,))]

        return await self._read(q)

    async def forget(self, row_ids: Sequence[str]) -> None:
        """Delete the rows with these ids (a spool's rows once they are stored elsewhere)."""
        await self.flush()

        def delete() -> None:
            conn = _connect(self.path)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("DELETE FROM llm_runs WHERE row_id = ?", [(i,) for i in row_ids])
                conn.execute("COMMIT")
            finally:
                conn.close()

        try:
            await asyncio.to_thread(delete)
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Could not update the usage ledger {self.path} ({_reason(exc)})."
            ) from None

    @property
    def where(self) -> str:
        return str(self.path)

    async def recent(self, per_model: int = 100) -> list[LedgerRow]:
        """The newest `per_model` rows of each model, oldest first: for `Health.warm`."""

        def q(c: sqlite3.Connection) -> list[LedgerRow]:
            c.execute("BEGIN")
            try:
                # distinct models by skipping through the (model, ts) index, not a table scan
                models = [
                    m
                    for (m,) in c.execute(
                        "WITH RECURSIVE m(model) AS ("
                        " SELECT MIN(model) FROM llm_runs"
                        " UNION ALL"
                        " SELECT (SELECT MIN(model) FROM llm_runs WHERE model > m.model)"
                        " FROM m WHERE m.model IS NOT NULL"
                        ") SELECT model FROM m WHERE model IS NOT NULL"
                    )
                ]
                found: list[tuple[float, int, LedgerRow]] = []
                for model in models:
                    for values in c.execute(
                        f"SELECT id, {_COLUMNS} FROM llm_runs WHERE model = ? "
                        "ORDER BY ts DESC, id DESC LIMIT ?",
                        (model, per_model),
                    ):
                        found.append((values[1], values[0], _row(values[1:])))
            finally:
                c.execute("COMMIT")
            found.sort(key=lambda t: (t[0], t[1]))
            return [row for _, _, row in found]

        return await self._read(q)
