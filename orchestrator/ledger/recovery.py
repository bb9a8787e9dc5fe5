"""Crash recovery: in-flight markers of processes that died become "interrupted" rows.

An attempt in flight has a marker (`Ledger.begin`, table `llm_inflight`) that its row ends in the
same transaction. A process killed mid-call leaves markers; the next process to open the ledger
turns those of dead processes into "interrupted" rows costing their estimates, so that calls the
vendor may have billed are neither lost nor free (a kill within ~50 ms of a call's start can
still lose its marker: markers wait that long to share a commit).

A marker's owner is its process's pid and start time, so that a reused pid is not taken for the
process that wrote the marker.
"""

from __future__ import annotations

import logging
import os
import sqlite3

from ace_lsp.orchestrator.compat import pid_alive
from ace_lsp.orchestrator.ledger.records import INTERRUPTED, LedgerRow
from ace_lsp.orchestrator.ledger.schema import END, INSERT, row_params

log = logging.getLogger("ace.ledger")


def _start_time(pid: int) -> str:
    """A process's start time (clock ticks since boot, from /proc): with the pid, its identity."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat.rsplit(b")", 1)[-1].split()[19].decode()  # field 22; the name may hold spaces


def owner() -> str:
    """This process, as the owner of the markers it writes."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def _alive(marker_owner: str) -> bool:
    """Is the process that wrote a marker still running (the same process, not a reused pid)?"""
    pid_text, _, started = marker_owner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if not pid_alive(pid):
        return False
    return not started or _start_time(pid) in ("", started)


def recover(conn: sqlite3.Connection) -> int:
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
            conn.execute(INSERT, row_params(row))
            conn.execute(END, (row_id,))
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
