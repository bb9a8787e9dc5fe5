"""Ledger: round trips, file modes, WAL, commit-before-return, group commit, queries, kill -9."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ace_lsp.orchestrator.budget import suggest_downgrade
from ace_lsp.orchestrator.errors import AceError
from ace_lsp.orchestrator.health import Health
from ace_lsp.orchestrator.ledger import (
    INTERRUPTED,
    SCHEMA_VERSION,
    InFlight,
    Ledger,
    LedgerError,
    LedgerRow,
    UsageLine,
    stats_by_model,
)
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import Attempt, TaskType, Tier

DAY = 86_400.0
T0 = 1_741_910_400.0  # 2025-03-14 00:00 UTC


def row(
    i: int = 0,
    *,
    ts: float | None = None,
    user: str = "ana",
    task: str = "AUTO_FIX",
    model: str = "devstral-small",
    outcome: str = "ok",
    cost: float = 0.001,
    latency: float = 100.0,
) -> LedgerRow:
    return LedgerRow(
        ts=T0 + i if ts is None else ts,
        request_id=f"req-{i}",
        user=user,
        task=task,
        tier="free",
        model=model,
        provider="mistral",
        input_tokens=100 + i,
        output_tokens=50,
        cost_usd=cost,
        latency_ms=latency,
        outcome=outcome,
        chain_position=i % 3,
        attempt=1 + i % 2,
    )


def count(path: Path, where: str = "1") -> int:
    """Rows seen by an independent connection: what is committed, nothing else."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM llm_runs WHERE {where}").fetchone()[0])


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "home" / "ace" / "ledger.sqlite3"


@pytest.fixture
async def ledger(path: Path) -> AsyncIterator[Ledger]:
    led = Ledger(path)
    yield led
    await led.close()


async def test_rows_round_trip(ledger: Ledger) -> None:
    rows = [row(i, model=m) for i, m in enumerate(["a", "b", "a", "c", "b"])]
    for r in rows:
        await ledger.record(r)
    assert await ledger.recent() == rows  # oldest first


async def test_schema_has_no_room_for_prompts_or_keys(ledger: Ledger, path: Path) -> None:
    with sqlite3.connect(path) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(llm_runs)")}
    assert columns == {
        "id", "ts", "request_id", "user", "task", "tier", "model", "provider", "input_tokens",
        "output_tokens", "cost_usd", "latency_ms", "outcome", "chain_position", "attempt",
        "row_id", "reservation_id",
    }  # fmt: skip


async def test_file_modes_and_wal(ledger: Ledger, path: Path) -> None:
    await ledger.record(row())
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert side.exists()
        assert side.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert ledger._wconn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


async def test_existing_file_is_made_private(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "ledger.sqlite3"
    path.touch()
    os.chmod(path, 0o644)
    led = Ledger(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert tmp_path.stat().st_mode & 0o777 == 0o755  # a folder it did not create is left alone
    await led.close()


async def test_record_returns_after_commit(ledger: Ledger, path: Path) -> None:
    for i in range(25):
        await ledger.record(row(i))
        assert count(path) == i + 1


async def test_group_commit_under_500_concurrent_records(ledger: Ledger, path: Path) -> None:
    await asyncio.gather(*(ledger.record(row(i)) for i in range(500)))
    assert count(path) == 500
    assert ledger.rows_written == 500
    assert ledger.commits < 500 / 4  # rows were committed together, not one by one
    assert len({r.request_id for r in await ledger.recent(per_model=1000)}) == 500


async def test_record_nowait_and_flush(ledger: Ledger, path: Path) -> None:
    for i in range(100):
        ledger.record_nowait(row(i))
    await ledger.flush()
    assert count(path) == 100


async def test_cancelled_record_is_still_written(ledger: Ledger, path: Path) -> None:
    task = asyncio.ensure_future(ledger.record(row(1)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ledger.flush()
    assert count(path) == 1


async def test_spent_and_spent_by_user(ledger: Ledger) -> None:
    month_start, day_start = T0 - 13 * DAY, T0
    rows = [
        row(1, ts=T0 - 40 * DAY, cost=5.0),  # last month
        row(2, ts=T0 - 2 * DAY, cost=0.25),  # this month
        row(3, ts=T0 + 10, cost=0.01),  # today
        row(4, ts=T0 + 20, cost=0.02, outcome="server_error"),  # failures cost too
        row(5, ts=T0 + 30, cost=0.5, user="bob"),
        row(6, ts=T0 - DAY, cost=1.0, user="carl"),
    ]
    await asyncio.gather(*(ledger.record(r) for r in rows))
    assert await ledger.spent("ana", T0) == pytest.approx(0.03)
    assert await ledger.spent("ana", month_start) == pytest.approx(0.28)
    assert await ledger.spent("ana", 0) == pytest.approx(5.28)
    assert await ledger.spent("nobody", 0) == 0.0
    by_user = await ledger.spent_by_user(day_start, month_start)
    assert by_user == {
        "ana": (pytest.approx(0.03), pytest.approx(0.28)),
        "bob": (0.5, 0.5),
        "carl": (0.0, 1.0),
    }


async def test_usage_groups_by_model_and_task(ledger: Ledger) -> None:
    rows = [
        *(row(i, latency=100.0 * (i + 1)) for i in range(5)),  # 5 ok: 100..500 ms
        row(10, outcome="timeout", latency=60_000.0, cost=0.0),
        row(11, outcome="invalid_patch", latency=700.0),
        row(12, outcome="cancelled", latency=5.0, cost=0.0),
        row(13, model="claude", task="CODE_REVIEW", cost=0.2, latency=1000.0),
        row(14, model="claude", user="bob", cost=0.1, latency=3000.0),
        row(15, ts=T0 - DAY, model="claude", cost=9.0),  # before `since`
    ]
    await asyncio.gather(*(ledger.record(r) for r in rows))
    lines = await ledger.usage(T0)
    assert [(line.model, line.task) for line in lines] == [
        ("claude", "AUTO_FIX"),
        ("claude", "CODE_REVIEW"),
        ("devstral-small", "AUTO_FIX"),
    ]
    dev = lines[2]
    assert dev == UsageLine(
        model="devstral-small",
        task="AUTO_FIX",
        calls=8,
        ok=5,
        failures=2,
        cancelled=1,
        cost_usd=pytest.approx(0.006),  # type: ignore[arg-type]
        input_tokens=sum(100 + i for i in (0, 1, 2, 3, 4, 10, 11, 12)),
        output_tokens=8 * 50,
        p50_ms=300.0,
        p95_ms=pytest.approx(480.0),  # type: ignore[arg-type]
    )
    assert dev.stats().calls == 7 and dev.stats().success_rate == pytest.approx(5 / 7)
    only_bob = await ledger.usage(T0, user="bob")
    assert [(x.model, x.calls, x.cost_usd) for x in only_bob] == [("claude", 1, 0.1)]
    window = await ledger.usage(T0 - DAY, until=T0)
    assert [(x.model, x.calls, x.cost_usd) for x in window] == [("claude", 1, 9.0)]
    assert await ledger.usage(T0 + DAY) == []


async def test_usage_feeds_downgrade_advice(ledger: Ledger) -> None:
    def spec(model_id: str, inp: float, out: float) -> ModelSpec:
        return ModelSpec(
            id=model_id, provider="p", wire_name=model_id, input_per_1k=inp, output_per_1k=out,
            context_window=128_000, max_output=8192, tasks=("AUTO_FIX",),
        )  # fmt: skip

    sonnet, devstral = spec("claude", 3.0, 15.0), spec("devstral-small", 0.1, 0.3)
    rows = [row(i, model="claude", outcome="ok" if i % 10 else "timeout") for i in range(20)]
    rows += [row(100 + i, outcome="ok" if i % 8 else "invalid_patch") for i in range(16)]
    rows += [row(200 + i, task="CHAT", outcome="timeout") for i in range(10)]
    await asyncio.gather(*(ledger.record(r) for r in rows))
    stats = stats_by_model(await ledger.usage(0), TaskType.AUTO_FIX)
    assert stats["claude"].success_rate == 0.9 and stats["devstral-small"].success_rate == 0.875
    assert suggest_downgrade("AUTO_FIX", sonnet, stats, [sonnet, devstral]) == devstral
    chat = stats_by_model(await ledger.usage(0), "CHAT")
    assert chat["devstral-small"].success_rate == 0.0


async def test_recent_keeps_the_newest_per_model_oldest_first(ledger: Ledger) -> None:
    rows = [row(i, model="a") for i in range(30)] + [row(i, model="b") for i in range(5)]
    random.Random(7).shuffle(rows)
    for r in rows:
        ledger.record_nowait(r)
    await ledger.flush()
    recent = await ledger.recent(per_model=10)
    assert [r.ts for r in recent] == sorted(r.ts for r in recent)
    assert sorted(r.request_id for r in recent if r.model == "a") == sorted(
        f"req-{i}" for i in range(20, 30)
    )
    assert len([r for r in recent if r.model == "b"]) == 5
    health = Health()
    health.warm(recent)
    assert health.stats("a").calls == 10 and health.stats("b").calls == 5


async def test_from_attempt_and_enums(ledger: Ledger) -> None:
    a = Attempt(
        model="gpt-4o", provider="openai", outcome="rate_limited", latency_ms=12.5,
        cost_usd=0.002, reason="slow down", input_tokens=10, output_tokens=0,
    )  # fmt: skip
    r = LedgerRow.from_attempt(
        a, request_id="x", user="ana", task=TaskType.AUTO_FIX, tier=Tier.PRO, chain_position=2,
        attempt=3, ts=T0,
    )  # fmt: skip
    await ledger.record(r)
    (back,) = await ledger.recent()
    assert (back.task, back.tier, back.model, back.outcome, back.attempt) == (
        "AUTO_FIX", "pro", "gpt-4o", "rate_limited", 3,
    )  # fmt: skip


async def test_reopen_keeps_rows_and_migration_is_idempotent(path: Path) -> None:
    led = Ledger(path)
    await led.record(row(1))
    await led.close()
    await led.close()  # idempotent
    for _ in range(2):
        led = Ledger(path)
        assert len(await led.recent()) == 1
        await led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_closed_ledger_refuses_work(path: Path) -> None:
    led = Ledger(path)
    await led.close()
    with pytest.raises(LedgerError, match="closed"):
        await led.record(row())
    with pytest.raises(LedgerError):
        led.record_nowait(row())
    with pytest.raises(LedgerError):
        await led.spent("ana", 0)


def one_sentence(exc: AceError) -> None:
    text = str(exc)
    assert exc.kind == "ledger_error"
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text
    assert text.count(". ") == 0  # one sentence


def test_unwritable_path_is_one_clear_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(LedgerError) as info:
        Ledger(blocker / "ledger.sqlite3")
    one_sentence(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained trace
    assert str(blocker / "ledger.sqlite3") in str(info.value)
    assert "Cannot open the usage ledger" in str(info.value)


def test_not_a_database_is_one_clear_sentence(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not sqlite" * 512)
    with pytest.raises(LedgerError) as info:
        Ledger(path)
    one_sentence(info.value)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError, match="newer"):
        Ledger(path)


async def test_full_disk_is_reported_and_the_writer_survives(ledger: Ledger, path: Path) -> None:
    await ledger.record(row(0))
    pages = ledger._wconn.execute("PRAGMA page_count").fetchone()[0]
    ledger._wconn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
    results = await asyncio.gather(
        *(ledger.record(row(i)) for i in range(1, 2001)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors and all(isinstance(e, LedgerError) for e in errors)
    one_sentence(errors[0])  # type: ignore[arg-type]
    assert "full" in str(errors[0])
    for i in range(3000, 5000):
        ledger.record_nowait(row(i))
    with pytest.raises(LedgerError):
        await ledger.flush()
    await ledger.flush()  # the failure was reported once
    ledger._wconn.execute("PRAGMA max_page_count = 1073741823")  # space again
    await ledger.record(row(9999))
    assert count(path, "request_id = 'req-9999'") == 1


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from ace_lsp.orchestrator.ledger import Ledger, LedgerRow

    async def main() -> None:
        led = Ledger(Path(sys.argv[1]))
        async def one(i: int) -> None:
            await led.record(LedgerRow(time.time(), f"id-{i}", "u", "AUTO_FIX", "free", "m",
                                       "p", 1, 2, 0.001, 3.0, "ok", 0))
            sys.stdout.write(f"id-{i}\\n")
            sys.stdout.flush()
        i = 0
        while True:
            n = 1 + i % 16
            await asyncio.gather(*(one(i + k) for k in range(n)))
            i += n

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("run", range(3))
def test_kill_9_loses_no_recorded_row(tmp_path: Path, run: int) -> None:
    path = tmp_path / "ledger.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    printed: list[str] = []
    try:
        want = random.Random(run).randint(1000, 4000)
        while len(printed) < want:
            line = child.stdout.readline()
            assert line, f"the child ended early (exit {child.poll()})"
            printed.append(line.strip())
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
        printed += rest.split()  # printed before the kill, so recorded too
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r for (r,) in conn.execute("SELECT request_id FROM llm_runs")}
    assert len(printed) >= 1000
    assert set(printed) <= stored


async def test_version_1_file_is_migrated_and_its_rows_get_ids(path: Path) -> None:
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:  # a ledger as ACE wrote it before row ids existed
        conn.execute(
            "CREATE TABLE llm_runs (id INTEGER PRIMARY KEY, ts REAL NOT NULL, request_id TEXT "
            "NOT NULL, user TEXT NOT NULL, task TEXT NOT NULL, tier TEXT NOT NULL, model TEXT "
            "NOT NULL, provider TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens "
            "INTEGER NOT NULL, cost_usd REAL NOT NULL, latency_ms REAL NOT NULL, outcome TEXT "
            "NOT NULL, chain_position INTEGER NOT NULL, attempt INTEGER NOT NULL)"
        )
        for i in range(3):
            conn.execute(
                "INSERT INTO llm_runs VALUES (NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (T0 + i, f"r{i}", "ana", "AUTO_FIX", "free", "m", "p", 1, 1, 0.1, 1.0, "ok", 0, 1),
            )
        conn.execute("PRAGMA user_version = 1")
    led = Ledger(path)
    try:
        rows = await led.pending()
        assert [r.request_id for r in rows] == ["r0", "r1", "r2"]
        assert len({r.row_id for r in rows}) == 3 and all(len(r.row_id) == 32 for r in rows)
    finally:
        await led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3


async def test_a_row_written_twice_is_stored_once(ledger: Ledger, path: Path) -> None:
    r = row(1)
    await ledger.record(r)
    await ledger.record(r)
    ledger.record_nowait(r)
    await ledger.flush()
    assert count(path) == 1


async def test_spool_pending_and_forget(ledger: Ledger, path: Path) -> None:
    rows = [row(i) for i in range(5)]
    for r in rows:
        ledger.record_nowait(r)
    got = await ledger.pending(limit=3)
    assert [r.row_id for r in got] == [r.row_id for r in rows[:3]]
    assert got[0].reservation_id is None
    await ledger.forget([r.row_id for r in got])
    assert [r.row_id for r in await ledger.pending()] == [r.row_id for r in rows[3:]]


def marker(i: int = 0, *, row_id: str | None = None, estimate: float = 0.02) -> InFlight:
    return InFlight(
        row_id or f"m{i:031d}", T0 + i, f"req-{i}", "ana", "AUTO_FIX", "pro", "gpt-4o", "openai",
        estimate, 0, 1,
    )  # fmt: skip


async def test_a_row_ends_its_in_flight_marker(ledger: Ledger, path: Path) -> None:
    ledger.begin(marker(1, row_id="a" * 32))
    ledger.begin(marker(2, row_id="b" * 32))
    await ledger.flush()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM llm_inflight").fetchone() == (2,)
    ledger.record_nowait(dataclasses.replace(row(1), row_id="a" * 32))
    await ledger.flush()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT row_id FROM llm_inflight").fetchall() == [("b" * 32,)]
    # begun and ended within one batch: the marker never outlives its row
    ledger.begin(marker(3, row_id="c" * 32))
    ledger.record_nowait(dataclasses.replace(row(3), row_id="c" * 32))
    await ledger.flush()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT row_id FROM llm_inflight").fetchall() == [("b" * 32,)]


async def test_markers_of_a_dead_process_become_interrupted_rows(path: Path) -> None:
    led = Ledger(path)
    led.begin(marker(1, row_id="a" * 32, estimate=0.03))  # this process's: alive
    await led.flush()
    await led.close()
    with sqlite3.connect(path) as conn:  # another process's, which has died (no such pid)
        conn.execute(
            "INSERT INTO llm_inflight VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            ("d" * 32, T0, "req-d", "bo", "AUTO_FIX", "pro", "gpt-4o", "openai", 0.05, 1, 2,
             "4194999:123"),
        )  # fmt: skip
    led = Ledger(path)
    try:
        assert led.recovered == 1
        (got,) = await led.pending()
        assert (got.row_id, got.user, got.outcome, got.cost_usd) == (
            "d" * 32,
            "bo",
            INTERRUPTED,
            0.05,
        )
        assert (got.chain_position, got.attempt, got.input_tokens) == (1, 2, 0)
        assert await led.spent("bo", 0) == pytest.approx(0.05)  # budgets count what it may cost
    finally:
        await led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT row_id FROM llm_inflight").fetchall() == [("a" * 32,)]


CHILD_IN_FLIGHT = textwrap.dedent(
    """
    import asyncio, dataclasses, os, signal, sys
    sys.path.insert(0, os.getcwd())
    from ace_lsp.orchestrator.ledger import Ledger
    from tests.unit.test_ledger import marker, row

    async def main():
        led = Ledger(sys.argv[1])
        for i in range(20):
            led.begin(marker(i))
        for i in range(0, 20, 2):  # half of the calls end
            led.record_nowait(dataclasses.replace(row(i), row_id=marker(i).row_id))
        await led.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # the other half are in flight

    asyncio.run(main())
    """
)


def test_kill_9_during_calls_leaves_their_estimates_in_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    child = subprocess.run(
        [sys.executable, "-c", CHILD_IN_FLIGHT, str(path)], capture_output=True, text=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    async def reopen() -> list[LedgerRow]:
        led = Ledger(path)
        try:
            return await led.pending(100)
        finally:
            await led.close()

    rows = asyncio.run(reopen())
    outcomes = sorted((r.request_id, r.outcome) for r in rows)
    assert outcomes == sorted((f"req-{i}", "ok" if i % 2 == 0 else INTERRUPTED) for i in range(20))
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM llm_inflight").fetchone() == (0,)


# -- the pieces the ledger is built from ------------------------------------------------------


def test_the_package_keeps_the_names_its_importers_use() -> None:
    import ace_lsp.orchestrator.ledger as package

    used = {
        "INTERRUPTED", "SCHEMA_VERSION", "InFlight", "Ledger", "LedgerError", "LedgerRow",
        "UsageLedger", "UsageLine", "period_filter", "stats_by_model",
    }  # fmt: skip
    assert set(package.__all__) == used
    assert all(hasattr(package, name) for name in used)


def test_ledger_and_health_do_not_import_each_other() -> None:
    """`ModelStats` and `percentile` live in `stats`, so `budget` (pure) needs neither module."""
    code = (
        "import sys, ace_lsp.orchestrator.budget, ace_lsp.orchestrator.ledger; "
        "print('ace_lsp.orchestrator.health' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_linger_hands_on_together_and_in_order() -> None:
    from ace_lsp.orchestrator.ledger.batching import Linger

    handed: list[list[int]] = []
    linger: Linger[int] = Linger(handed.append, linger_s=0.01)
    assert linger.add(1) and linger.add(2)
    linger.hand_on(3)  # at once, after what waits
    assert handed == [[1, 2, 3]]
    assert linger.add(4)
    await asyncio.sleep(0.05)  # the timer of the first add fires, then the second's
    assert [4] in handed and handed[0] == [1, 2, 3]
    assert sum(map(len, handed)) == 4


def test_linger_without_a_loop_keeps_nothing() -> None:
    from ace_lsp.orchestrator.ledger.batching import Linger

    handed: list[list[int]] = []
    linger: Linger[int] = Linger(handed.append)
    assert not linger.add(1) and not linger.wake()
    assert handed == []
