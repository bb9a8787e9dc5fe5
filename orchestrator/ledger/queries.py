"""The reports read from the SQLite ledger: functions of a connection, run on the reader thread.

`period_filter` is shared with the team's PostgreSQL ledger, which reads the same reports.
"""

from __future__ import annotations

import sqlite3

from ace_lsp.orchestrator.ledger.records import LedgerRow, UsageLine
from ace_lsp.orchestrator.ledger.schema import COLUMNS, row_from
from ace_lsp.orchestrator.stats import percentile


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


def spent(conn: sqlite3.Connection, user: str, since: float) -> float:
    """What `user` spent from `since` (epoch seconds) on, in USD."""
    sql = "SELECT TOTAL(cost_usd) FROM llm_runs WHERE user = ? AND ts >= ?"
    return float(conn.execute(sql, (user, since)).fetchone()[0])


def spent_by_user(
    conn: sqlite3.Connection, day_start: float, month_start: float
) -> dict[str, tuple[float, float]]:
    """user -> (spent since `day_start`, spent since `month_start`)."""
    sql = (
        "SELECT user, TOTAL(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END), "
        "TOTAL(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END) "
        "FROM llm_runs WHERE ts >= ? GROUP BY user"
    )
    args = (day_start, month_start, min(day_start, month_start))
    return {u: (float(d), float(m)) for u, d, m in conn.execute(sql, args)}


def usage(
    conn: sqlite3.Connection, since: float, until: float | None, user: str | None
) -> list[UsageLine]:
    """Attempts from `since` to before `until`, grouped by (model, task), sorted that way."""
    cond, args = period_filter(since, until, user)
    conn.execute("BEGIN")  # one snapshot for both queries
    try:
        groups = conn.execute(
            "SELECT model, task, COUNT(*), TOTAL(outcome = 'ok'), "
            "TOTAL(outcome = 'cancelled'), TOTAL(cost_usd), TOTAL(input_tokens), "
            f"TOTAL(output_tokens) FROM llm_runs WHERE {cond} "
            "GROUP BY model, task ORDER BY model, task",
            args,
        ).fetchall()
        latencies: dict[tuple[str, str], list[float]] = {}
        for model, task, ms in conn.execute(
            f"SELECT model, task, latency_ms FROM llm_runs WHERE {cond} "
            "AND outcome = 'ok' ORDER BY model, task, latency_ms",
            args,
        ):
            latencies.setdefault((model, task), []).append(float(ms))
    finally:
        conn.execute("COMMIT")
    lines = []
    for model, task, calls, ok, cancelled, cost, tokens_in, tokens_out in groups:
        ok_latencies = latencies.get((model, task), [])
        lines.append(
            UsageLine(
                model=model,
                task=task,
                calls=int(calls),
                ok=int(ok),
                failures=int(calls - ok - cancelled),
                cancelled=int(cancelled),
                cost_usd=float(cost),
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
                p50_ms=percentile(ok_latencies, 50),
                p95_ms=percentile(ok_latencies, 95),
            )
        )
    return lines


def oldest(conn: sqlite3.Connection, limit: int) -> list[LedgerRow]:
    """The oldest `limit` rows, in the order they were written."""
    sql = f"SELECT {COLUMNS} FROM llm_runs ORDER BY id LIMIT ?"
    return [row_from(values) for values in conn.execute(sql, (limit,))]


def recent(conn: sqlite3.Connection, per_model: int) -> list[LedgerRow]:
    """The newest `per_model` rows of each model, oldest first."""
    conn.execute("BEGIN")
    try:
        # distinct models by skipping through the (model, ts) index, not a table scan
        models = [
            m
            for (m,) in conn.execute(
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
            for values in conn.execute(
                f"SELECT id, {COLUMNS} FROM llm_runs WHERE model = ? "
                "ORDER BY ts DESC, id DESC LIMIT ?",
                (model, per_model),
            ):
                found.append((values[1], values[0], row_from(values[1:])))
    finally:
        conn.execute("COMMIT")
    found.sort(key=lambda t: (t[0], t[1]))
    return [row for _, _, row in found]
