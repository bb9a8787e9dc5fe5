"""The SQLite file: opening it privately, its schema and migrations, and rows as SQL parameters.

The file is created with mode 0600 and runs in WAL mode with `synchronous=NORMAL` (set by the
`Ledger` that opens it). Rows are written as one statement over a JSON array (`INSERT_JSON`):
sqlite3 lets go of the GIL at every step of an executemany, and on a busy event loop each
hand-back is a thread switch that slows the loop's own system calls (measured: ~0.3 ms per model
call at 32 concurrent on 2 cores); one step, one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ace_lsp.orchestrator.errors import LedgerError
from ace_lsp.orchestrator.ledger.records import InFlight, LedgerRow, as_text

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LedgerRow))
COLUMNS = ", ".join(FIELDS)
ROW_ID = FIELDS.index("row_id")  # where a row's id is in its parameters
INSERT = f"INSERT OR IGNORE INTO llm_runs ({COLUMNS}) VALUES ({', '.join('?' * len(FIELDS))})"
INSERT_JSON = (
    f"INSERT OR IGNORE INTO llm_runs ({COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(FIELDS)))
    + " FROM json_each(?)"
)
_MARKER_COLUMNS = 12
BEGIN_JSON = (
    "INSERT OR IGNORE INTO llm_inflight SELECT "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(_MARKER_COLUMNS))
    + " FROM json_each(?)"
)
END = "DELETE FROM llm_inflight WHERE row_id = ?"
END_JSON = "DELETE FROM llm_inflight WHERE row_id IN (SELECT value FROM json_each(?))"

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
SCHEMA_VERSION = len(_MIGRATIONS)


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the database at `path`: autocommit, any thread, patient with locks."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def chmod_private(path: Path) -> None:
    """Mode 0600 on the database and its WAL and shared-memory files, where they exist."""
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(file, 0o600)


def migrate(conn: sqlite3.Connection, path: Path) -> None:
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


def row_params(row: LedgerRow) -> tuple[object, ...]:
    """Row -> SQL parameters, with types checked here, on the caller's side of the queue."""
    return (
        float(row.ts),
        as_text(row.request_id),
        as_text(row.user),
        as_text(row.task),
        as_text(row.tier),
        as_text(row.model),
        as_text(row.provider),
        int(row.input_tokens),
        int(row.output_tokens),
        float(row.cost_usd),
        float(row.latency_ms),
        as_text(row.outcome),
        int(row.chain_position),
        int(row.attempt),
        as_text(row.row_id),
        None if row.reservation_id is None else as_text(row.reservation_id),
    )


def marker_params(marker: InFlight, owner: str) -> tuple[object, ...]:
    """Marker -> SQL parameters (the columns of `llm_inflight`), `owner` last."""
    return (
        marker.row_id, float(marker.ts), marker.request_id, as_text(marker.user),
        as_text(marker.task), as_text(marker.tier), marker.model, marker.provider,
        float(marker.estimate_usd), int(marker.chain_position), int(marker.attempt), owner,
    )  # fmt: skip


def row_from(values: Sequence[Any]) -> LedgerRow:
    """The columns `COLUMNS` of one stored row -> the row."""
    return LedgerRow(*values)


def reason(exc: BaseException) -> str:
    """Why an OS or SQLite call failed, as the end of a sentence."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).rstrip(".") or type(exc).__name__
