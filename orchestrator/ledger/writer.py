"""The SQLite ledger's writer thread and the protocol of its queue.

One dedicated thread with its own connection takes what is queued, commits it in one transaction
(group commit) and wakes whoever waits. What can be written (`Write`):

- `MarkerWrite`: an in-flight marker, into `llm_inflight`;
- `RowWrite`: a row, into `llm_runs`; `ends_marker` when its marker was handed to the writer
  earlier, so that the same transaction deletes it.

What can be queued (`Item`):

- `Awaited`: one row whose caller awaits its commit (`Ledger.record`) and gets its failure;
- `Unawaited`: writes nobody awaits (`record_nowait`, `begin`); a failure is logged once and kept
  for the next `take_failure()` (`Ledger.flush`);
- `Barrier`: resolves once everything queued before it is committed, never with the rows'
  failure (`flush`, `close`); `stop` ends the thread after that commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from ace_lsp.orchestrator.errors import LedgerError
from ace_lsp.orchestrator.ledger.schema import BEGIN_JSON, END_JSON, INSERT_JSON, ROW_ID, reason

log = logging.getLogger("ace.ledger")

MAX_BATCH = 4096  # queued items per transaction at most; more just wait for the next one


@dataclass(frozen=True, slots=True)
class MarkerWrite:
    """An in-flight marker's parameters (`schema.marker_params`)."""

    params: tuple[object, ...]


@dataclass(frozen=True, slots=True)
class RowWrite:
    """A row's parameters (`schema.row_params`); `ends_marker`: delete its marker too."""

    params: tuple[object, ...]
    ends_marker: bool = False


Write: TypeAlias = MarkerWrite | RowWrite


@dataclass(frozen=True, slots=True)
class Waiter:
    """A future on an event loop, resolved from the writer thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]

    @classmethod
    def here(cls) -> Waiter:
        """A waiter with a new future on the running event loop."""
        loop = asyncio.get_running_loop()
        return cls(loop, loop.create_future())

    def resolve(self, error: str | None) -> None:
        """Resolve the future from the writer thread: done, or failed with LedgerError(`error`)."""
        fut = self.future

        def done() -> None:
            if fut.done():  # the awaiting task was cancelled; the row is written all the same
                return
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(LedgerError(error))

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            self.loop.call_soon_threadsafe(done)


@dataclass(frozen=True, slots=True)
class Awaited:
    """One row whose caller awaits its commit, and gets its failure."""

    write: RowWrite
    waiter: Waiter


@dataclass(frozen=True, slots=True)
class Unawaited:
    """Writes nobody awaits; a failure is kept for the next `take_failure()`."""

    writes: tuple[Write, ...]


@dataclass(frozen=True, slots=True)
class Barrier:
    """Resolves once everything queued before it is committed; `stop` ends the thread after that."""

    waiter: Waiter
    stop: bool = False


Item: TypeAlias = Awaited | Unawaited | Barrier


class Writer:
    """The thread that owns `conn` (closing it when stopped) and commits what is queued."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self.commits = 0  # transactions committed
        self.rows_written = 0
        self._conn = conn
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._failure: str | None = None  # of an Unawaited write, until taken
        self._thread = threading.Thread(target=self._run, name="ace-ledger-write", daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        """Queue `item` without waiting for its commit."""
        self._queue.put(item)

    async def wait(self, item: Awaited | Barrier) -> None:
        """Queue `item` and wait for its commit; raises LedgerError if an awaited row failed."""
        self._queue.put(item)
        await item.waiter.future

    def take_failure(self) -> str | None:
        """The sentence of the last failed unawaited write since the last call, if any."""
        failure, self._failure = self._failure, None
        return failure

    async def join(self) -> None:
        """Wait, off the event loop, for the writer thread to end."""
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes: list[Write] = []
            for item in items:
                if isinstance(item, Awaited):
                    writes.append(item.write)
                elif isinstance(item, Unawaited):
                    writes.extend(item.writes)
            error = self._commit(writes) if writes else None
            for item in items:
                if isinstance(item, Awaited):
                    item.waiter.resolve(error)
                elif isinstance(item, Barrier):
                    # it only waits for the commit; the rows' failure is told to their own
                    # record(), or to flush() through take_failure()
                    item.waiter.resolve(None)
                    stop = stop or item.stop
                elif error is not None:
                    if self._failure is None:
                        log.warning("%s", error)
                    self._failure = error
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def _commit(self, writes: list[Write]) -> str | None:
        """Commit `writes` in one transaction; the failure as a sentence, or None."""
        conn = self._conn
        markers = [w.params for w in writes if isinstance(w, MarkerWrite)]
        rows = [w for w in writes if isinstance(w, RowWrite)]
        try:
            conn.execute("BEGIN IMMEDIATE")
            if markers:
                conn.execute(BEGIN_JSON, (json.dumps(markers),))
            if rows:
                conn.execute(INSERT_JSON, (json.dumps([r.params for r in rows]),))
            ends = [r.params[ROW_ID] for r in rows if r.ends_marker]
            if ends:
                conn.execute(END_JSON, (json.dumps(ends),))
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return (
                f"Could not write to the usage ledger {self.path} ({reason(exc)}); "
                "check that the disk is writable and not full."
            )
        self.commits += 1
        self.rows_written += len(rows)
        return None
