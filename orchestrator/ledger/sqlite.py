"""`Ledger`: the personal usage ledger, one SQLite file, written off the event loop.

Writes go to the writer thread (`writer`): rows that queue up while it commits are written
together in one transaction, and each `record()` resolves once its row is committed;
`record_nowait()` rows and in-flight markers first linger on the event loop (`batching`). Reads
(`queries`) use a second connection on a reader thread; WAL lets them run beside the writer.
Failures (read-only or full disk, a file that is not a database) raise `LedgerError`, one
sentence, so that the caller can decide to go on without the ledger.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ace_lsp.orchestrator.errors import LedgerError
from ace_lsp.orchestrator.ledger import queries, recovery
from ace_lsp.orchestrator.ledger.batching import Linger
from ace_lsp.orchestrator.ledger.records import InFlight, LedgerRow, UsageLine
from ace_lsp.orchestrator.ledger.schema import (
    chmod_private,
    connect,
    marker_params,
    migrate,
    reason,
    row_params,
)
from ace_lsp.orchestrator.ledger.writer import (
    Awaited,
    Barrier,
    MarkerWrite,
    RowWrite,
    Unawaited,
    Waiter,
    Write,
    Writer,
)
from ace_lsp.orchestrator.paths import private_dir

T = TypeVar("T")


class Ledger:
    """The usage ledger at `path`. Create it on the event loop; `await close()` when done."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._closed = False
        self._lingering: Linger[RowWrite] = Linger(self._hand_on)  # record_nowait rows
        # in-flight markers: begun and not handed on yet (an attempt that ends before the next
        # hand-on never costs a write), and handed on but not yet ended by their rows
        self._unwritten: dict[str, MarkerWrite] = {}
        self._written: set[str] = set()
        self._owner = recovery.owner()
        try:
            parent = self.path.parent
            created = not parent.exists()
            private_dir(parent)
            if created:
                os.chmod(parent, 0o700)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            chmod_private(self.path)
            self._wconn = connect(self.path)
            mode = self._wconn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch to WAL mode (got {mode})")
            self._wconn.execute("PRAGMA synchronous = NORMAL")
            migrate(self._wconn, self.path)
            self.recovered = recovery.recover(self._wconn)
            chmod_private(self.path)
            self._rconn = connect(self.path)
            self._rconn.execute("PRAGMA query_only = 1")
        except LedgerError:
            raise
        except (OSError, sqlite3.Error) as exc:
            raise LedgerError(
                f"Cannot open the usage ledger {self.path} ({reason(exc)}); "
                "check that its folder is writable and the disk is not full."
            ) from None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ace-ledger-read")
        self._writer = Writer(self._wconn, self.path)

    @property
    def where(self) -> str:
        """The database file's path."""
        return str(self.path)

    @property
    def commits(self) -> int:
        """Transactions committed by the writer."""
        return self._writer.commits

    @property
    def rows_written(self) -> int:
        """Rows committed by the writer."""
        return self._writer.rows_written

    # -- writing ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerError(f"The usage ledger {self.path} is closed.")

    def _ending(self, row: LedgerRow) -> RowWrite:
        """The row's write, ending its marker if that has gone to the writer."""
        params = row_params(row)
        if self._unwritten.pop(row.row_id, None) is not None:
            return RowWrite(params)  # its marker was never written: nothing to delete
        if row.row_id in self._written:
            self._written.discard(row.row_id)
            return RowWrite(params, ends_marker=True)
        return RowWrite(params)

    async def record(self, row: LedgerRow) -> None:
        """Write `row`; returns once it is committed. Raises LedgerError if the write failed."""
        self._check_open()
        write = self._ending(row)
        self._lingering.hand_on()  # keep the order rows were recorded in
        await self._writer.wait(Awaited(write, Waiter.here()))

    def record_nowait(self, row: LedgerRow) -> None:
        """Queue `row` and return at once; it is committed within ~50 ms; `flush()` tells failures.

        Rows wait on the event loop and go to the writer together (see `batching`).
        """
        self._check_open()
        write = self._ending(row)
        if not self._lingering.add(write):
            self._writer.put(Unawaited((write,)))

    def begin(self, marker: InFlight) -> None:
        """An attempt starts: note it; its row ends it. The marker is written with the next batch
        (within ~50 ms) only if the attempt is still running then."""
        self._check_open()
        write = MarkerWrite(marker_params(marker, self._owner))
        if not self._lingering.wake():
            self._written.add(marker.row_id)
            self._writer.put(Unawaited((write,)))
            return
        self._unwritten[marker.row_id] = write

    def _hand_on(self, rows: list[RowWrite]) -> None:
        """The lingering rows, and the markers of attempts still running, to the writer at once."""
        if rows or self._unwritten:
            writes: list[Write] = [*self._unwritten.values(), *rows]
            self._written.update(self._unwritten)
            self._unwritten = {}
            self._writer.put(Unawaited(tuple(writes)))  # one wake-up of the writer

    async def flush(self) -> None:
        """Wait until every row queued so far is committed; raise if a queued row failed."""
        self._lingering.hand_on()
        self._check_open()
        await self._writer.wait(Barrier(Waiter.here()))
        failure = self._writer.take_failure()
        if failure is not None:
            raise LedgerError(failure)

    async def close(self) -> None:
        """Commit what is queued, stop the writer and close both connections. Idempotent.

        Failures of queued `record_nowait` rows were logged; call `flush()` first to get them.
        """
        if self._closed:
            return
        self._lingering.hand_on()
        self._closed = True
        await self._writer.wait(Barrier(Waiter.here(), stop=True))
        await self._writer.join()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._reader, self._rconn.close)
        self._reader.shutdown(wait=False)

    # -- reading ------------------------------------------------------------------------------

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, query, self._rconn)
        except sqlite3.Error as exc:
            raise LedgerError(
                f"Could not read the usage ledger {self.path} ({reason(exc)})."
            ) from None

    async def spent(self, user: str, since: float) -> float:
        """What `user` spent from `since` (epoch seconds) on, in USD."""
        return await self._read(functools.partial(queries.spent, user=user, since=since))

    async def spent_by_user(
        self, day_start: float, month_start: float
    ) -> dict[str, tuple[float, float]]:
        """user -> (spent since `day_start`, spent since `month_start`): for `Budget(spent=…)`."""
        return await self._read(
            functools.partial(queries.spent_by_user, day_start=day_start, month_start=month_start)
        )

    async def usage(
        self, since: float, until: float | None = None, user: str | None = None
    ) -> list[UsageLine]:
        """Attempts from `since` to before `until`, grouped by (model, task), sorted that way."""
        return await self._read(
            functools.partial(queries.usage, since=since, until=until, user=user)
        )

    async def recent(self, per_model: int = 100) -> list[LedgerRow]:
        """The newest `per_model` rows of each model, oldest first: for `Health.warm`."""
        return await self._read(functools.partial(queries.recent, per_model=per_model))

    async def pending(self, limit: int = 1000) -> list[LedgerRow]:
        """The oldest `limit` rows, queued ones included (as a spool: rows waiting to be sent)."""
        await self.flush()
        return await self._read(functools.partial(queries.oldest, limit=limit))

    async def forget(self, row_ids: Sequence[str]) -> None:
        """Delete the rows with these ids (a spool's rows once they are stored elsewhere)."""
        await self.flush()

        def delete() -> None:
            conn = connect(self.path)
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
                f"Could not update the usage ledger {self.path} ({reason(exc)})."
            ) from None
