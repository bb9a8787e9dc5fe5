"""The team ledger on PostgreSQL (loopback, a throwaway cluster): reservation round trip, ledger
write throughput, and overspend under 20 processes x 20 concurrent calls. Prints figures only.

Needs PostgreSQL's server programs (Debian: `apt-get install postgresql`); without them it says
so and reports nothing.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from ace_lsp.orchestrator.ledger import Ledger, LedgerRow
from ace_lsp.orchestrator.team.pg import PgLedger
from ace_lsp.orchestrator.team.shared import TeamLedger, TeamSettings
from bench.figures import Figure, Report
from tests.pg_cluster import ADMIN, MEMBERS, NoPostgres, PgCluster

ROUND_TRIPS = 2000
WRITE_ROWS = 20_000
SINGLE_ROWS = 1000
PROCESSES = 20
CONCURRENT = 20
TEAM_DAILY = 1.00
MEMBER_DAILY = 0.30


def _row(cost: float = 0.001, reservation: str | None = None) -> LedgerRow:
    return LedgerRow(
        ts=time.time(),
        request_id=uuid.uuid4().hex,
        user="bench",
        task="AUTO_FIX",
        tier="pro",
        model="devstral-small",
        provider="devstral",
        input_tokens=900,
        output_tokens=120,
        cost_usd=cost,
        latency_ms=420.0,
        outcome="ok",
        chain_position=0,
        attempt=1,
        reservation_id=reservation,
    )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _round_trips(url: str) -> tuple[list[float], list[float], list[float]]:
    """reserve, settle (the row that ends it), and a bare `SELECT 1` on the same pool."""
    pg = await PgLedger.open(url)
    reserve_ms: list[float] = []
    settle_ms: list[float] = []
    floor_ms: list[float] = []
    try:
        for _ in range(ROUND_TRIPS):
            rid = uuid.uuid4().hex
            t0 = time.perf_counter()
            await pg.reserve(rid, 0.002, daily=5.0, monthly=50.0, ttl_s=600)
            t1 = time.perf_counter()
            await pg.insert([_row(0.001, rid)])
            t2 = time.perf_counter()
            await pg.ping()
            t3 = time.perf_counter()
            reserve_ms.append((t1 - t0) * 1000)
            settle_ms.append((t2 - t1) * 1000)
            floor_ms.append((t3 - t2) * 1000)
    finally:
        await pg.close()
    return reserve_ms, settle_ms, floor_ms


async def _throughput(url: str, spool: Path, sqlite_path: Path) -> tuple[float, float, float]:
    """Rows per second: team ledger (batched), SQLite ledger (batched), one row per transaction."""
    led = await TeamLedger.open(TeamSettings(url=url, share_health=False), spool)
    rows = [_row() for _ in range(WRITE_ROWS)]
    t0 = time.perf_counter()
    for i, r in enumerate(rows):
        led.record_nowait(r)
        if i % 500 == 499:
            await asyncio.sleep(0)  # as calls end: spread over event-loop turns
    await led.flush()
    team_rate = WRITE_ROWS / (time.perf_counter() - t0)
    await led.close()

    local = Ledger(sqlite_path)
    rows = [_row() for _ in range(WRITE_ROWS)]
    t0 = time.perf_counter()
    for i, r in enumerate(rows):
        local.record_nowait(r)
        if i % 500 == 499:
            await asyncio.sleep(0)
    await local.flush()
    sqlite_rate = WRITE_ROWS / (time.perf_counter() - t0)
    await local.close()

    pg = await PgLedger.open(url)
    t0 = time.perf_counter()
    for _ in range(SINGLE_ROWS):
        await pg.insert([_row()])
    single_rate = SINGLE_ROWS / (time.perf_counter() - t0)
    await pg.close()
    return team_rate, sqlite_rate, single_rate


def _overspend(cluster: object, db: str, tmp: Path) -> dict[str, float]:
    url = cluster.url  # type: ignore[attr-defined]
    root = Path(__file__).resolve().parents[1]
    with psycopg.connect(url(ADMIN, db), autocommit=True) as conn:
        for subject, cap in (("", TEAM_DAILY), ("*", MEMBER_DAILY)):
            conn.execute(
                "INSERT INTO ace.budgets (subject, daily_usd) VALUES (%s, %s)", (subject, cap)
            )
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.team.reserve_worker",
                url(MEMBERS[i % len(MEMBERS)], db),
                str(tmp / f"spool{i}.sqlite3"),
                str(CONCURRENT),
                str(i),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - t0
    with psycopg.connect(url(database=db), autocommit=True) as conn:
        row = conn.execute("SELECT spent FROM ace.totals WHERE subject = ''").fetchone()
        team_spent = float(row[0]) if row else 0.0
        users = conn.execute("SELECT spent FROM ace.totals WHERE subject <> ''").fetchall()
    latencies = [ms for r in results for ms in r["reserve_ms"]]
    return {
        "granted": sum(r["granted"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "team_spent": team_spent,
        "overspend": max(0.0, team_spent - TEAM_DAILY),
        "member_overspend": max((max(0.0, float(s) - MEMBER_DAILY) for (s,) in users), default=0),
        "p50": _pct(latencies, 0.5),
        "p99": _pct(latencies, 0.99),
        "wall": wall,
    }


def main() -> Report:
    report = Report()
    try:
        cluster = PgCluster()
        cluster.start()
    except NoPostgres as exc:
        print(f"skipped: {exc}")
        return report
    try:
        cluster.create_roles()
        for db in ("bench", "crowd"):
            asyncio.run(cluster.create_team(db))

        url = cluster.url("alice", "bench")
        reserve, settle, floor = asyncio.run(_round_trips(url))
        print(f"PostgreSQL {cluster.bindir.parent.name} on 127.0.0.1, one client, {ROUND_TRIPS}x:")
        for name, values in (("reserve", reserve), ("settle (row)", settle), ("SELECT 1", floor)):
            print(
                f"  {name:<13} p50 {statistics.median(values):6.3f} ms   "
                f"p99 {_pct(values, 0.99):6.3f} ms"
            )
        with tempfile.TemporaryDirectory() as tmp:
            team_rate, sqlite_rate, single_rate = asyncio.run(
                _throughput(url, Path(tmp) / "spool.sqlite3", Path(tmp) / "ledger.sqlite3")
            )
            print(
                f"ledger writes: team (batched) {team_rate:,.0f} rows/s, SQLite (batched) "
                f"{sqlite_rate:,.0f} rows/s, PostgreSQL one row per transaction "
                f"{single_rate:,.0f} rows/s"
            )
            crowd = _overspend(cluster, "crowd", Path(tmp))
        print(
            f"{PROCESSES} processes x {CONCURRENT} concurrent: {crowd['granted']:.0f} granted, "
            f"{crowd['refused']:.0f} refused in {crowd['wall']:.1f} s; team spent "
            f"${crowd['team_spent']:.4f} of ${TEAM_DAILY:.2f}: overspend "
            f"${crowd['overspend']:.4f} (members: ${crowd['member_overspend']:.4f}); reserve "
            f"under load p50 {crowd['p50']:.1f} ms, p99 {crowd['p99']:.1f} ms"
        )
        report.add(
            Figure(
                "team budget: reservation round trip p50",
                statistics.median(reserve),
                statistics.median(floor),
                versus="bare SELECT 1 on the same pool",
            ),
            Figure(
                "team budget: reservation round trip p99",
                _pct(reserve, 0.99),
                _pct(floor, 0.99),
                versus="bare SELECT 1 on the same pool",
            ),
            Figure("team ledger: settle (row insert) p50", statistics.median(settle)),
            Figure(
                "team ledger: write throughput (batched)",
                team_rate,
                sqlite_rate,
                unit="rows/s",
                versus="personal SQLite ledger",
                lower_is_better=False,
            ),
            Figure(
                "team ledger: one row per transaction",
                single_rate,
                unit="rows/s",
                lower_is_better=False,
            ),
            Figure(
                "team budget: overspend, 20 processes x 20 concurrent",
                crowd["overspend"] + crowd["member_overspend"],
                unit="$",
                target="0",
            ),
            Figure("team budget: reservation p99 under 20x20", crowd["p99"]),
        )
    finally:
        cluster.close()
    return report


if __name__ == "__main__":
    main()
