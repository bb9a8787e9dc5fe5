"""Team mode's ledger: losing the database mid-run, the spool, replay, shared health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ace_lsp.orchestrator.errors import OverBudget
from ace_lsp.orchestrator.health import OPEN, Health
from ace_lsp.orchestrator.ledger import Ledger
from ace_lsp.orchestrator.team.pg import PgLedger
from ace_lsp.orchestrator.team.shared import OFFLINE, ONLINE, TeamLedger, TeamSettings
from tests.team.conftest import ADMIN, TeamDb
from tests.team.test_pg_ledger import row


def settings(team: TeamDb, user: str = "alice", **kw: float | bool) -> TeamSettings:
    base: dict[str, float | bool] = {
        "reconnect_s": 0.2,
        "connect_timeout_s": 1.0,
        "health_refresh_s": 0.1,
    }
    base.update(kw)
    return TeamSettings(url=team.url(user), **base)  # type: ignore[arg-type]


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def test_losing_the_database_loses_no_row_and_counts_none_twice(
    team: TeamDb, tmp_path: Path
) -> None:
    led = await TeamLedger.open(settings(team, offline_usd=0.05), tmp_path / "spool.sqlite3")
    states: list[str] = []
    led.on_state = states.append
    try:
        assert led.state == ONLINE and led.user == "alice"
        before = [row(0.001) for _ in range(10)]
        for r in before:
            led.record_nowait(r)
        await led.flush()

        team.cluster.stop()
        during = []
        for i in range(20):
            rid = f"offline-{i}"
            await led.reserve(rid, "alice", 0.002, daily=None, monthly=None)
            during.append(row(0.001, reservation=rid))
            led.record_nowait(during[-1])
        await led.flush()
        assert led.state == OFFLINE and states == [OFFLINE]
        assert "does not answer" in (led.reason or "")
        assert len(await led.spool.pending()) == 20
        # the offline allowance: $0.02 spent of $0.05; $0.04 more does not fit
        with pytest.raises(OverBudget) as err:
            await led.reserve("too-much", "alice", 0.04, daily=None, monthly=None)
        assert "offline allowance ($0.02 of $0.05 used)" in err.value.reason
        assert await led.status(None, None) is None

        team.cluster.start()
        await until(lambda: led.state == ONLINE)
        assert states == [OFFLINE, ONLINE]
        after = row(0.001)
        await led.record(after)
        assert await led.spool.pending() == []
        ids = {r.row_id for r in before + during + [after]}
        stored = team.sql("SELECT row_id FROM ace.runs")
        assert len(stored) == 31 and {r for (r,) in stored} == ids
        status = await led.status(None, None)
        assert status is not None
        assert status["user"].spent_today == pytest.approx(0.031)
        assert status["team"].reserved == 0.0  # offline reservations never reached the database
    finally:
        await led.close()


async def test_a_replay_cut_short_is_finished_without_double_counting(
    team: TeamDb, tmp_path: Path
) -> None:
    spool_path = tmp_path / "spool.sqlite3"
    rows = [row(0.01) for _ in range(6)]
    spool = Ledger(spool_path)  # a process that died while offline left these
    for r in rows:
        await spool.record(r)
    await spool.close()
    pg = await PgLedger.open(team.url("alice"))
    await pg.insert(rows[:4])  # it had replayed four when it died, before clearing its spool
    await pg.close()

    led = await TeamLedger.open(settings(team), spool_path)
    try:
        assert led.state == ONLINE and led.replayed == 6
        assert await led.spool.pending() == []
        status = await led.status(None, None)
        assert status is not None and status["user"].spent_today == pytest.approx(0.06)
        assert team.sql("SELECT count(*) FROM ace.runs") == [(6,)]
    finally:
        await led.close()


async def test_starting_while_the_database_is_away(team: TeamDb, tmp_path: Path) -> None:
    team.cluster.stop()
    try:
        led = await TeamLedger.open(settings(team), tmp_path / "spool.sqlite3")
        try:
            assert led.state == OFFLINE and led.user == "alice"
            led.record_nowait(row(0.002))
            await led.flush()
            team.cluster.start()
            await until(lambda: led.state == ONLINE)
            assert team.sql("SELECT count(*) FROM ace.runs") == [(1,)]
        finally:
            await led.close()
    finally:
        if not team.cluster.running():
            team.cluster.start()


async def test_a_database_lost_before_reading_recent_rows_sends_the_ledger_offline(
    team: TeamDb, tmp_path: Path
) -> None:
    """Issue 13, bug 3: `recent()` (read once, to warm health) let `Unreachable` escape, and
    `Orchestrator.open` then threw the team ledger away for the whole session."""
    led = await TeamLedger.open(settings(team), tmp_path / "spool.sqlite3")
    try:
        assert led.state == ONLINE
        team.cluster.stop()
        assert await led.recent() == []
        assert led.state == OFFLINE and "does not answer" in (led.reason or "")
        led.record_nowait(row(0.002))  # usage goes on, to the spool
        await led.flush()
        assert len(await led.spool.pending()) == 1
        team.cluster.start()
        await until(lambda: led.state == ONLINE)
        assert team.sql("SELECT count(*) FROM ace.runs") == [(1,)]
    finally:
        await led.close()
        if not team.cluster.running():
            team.cluster.start()


async def test_a_database_without_the_schema_is_treated_as_away(
    team: TeamDb, tmp_path: Path
) -> None:
    team.sql("DROP SCHEMA ace CASCADE")
    led = await TeamLedger.open(settings(team), tmp_path / "spool.sqlite3")
    try:
        assert led.state == OFFLINE
        assert "ask the database owner to run `ace team migrate`" in (led.reason or "")
        led.record_nowait(row(0.001))
        await led.flush()
        assert len(await led.spool.pending()) == 1  # kept, to be sent once the schema exists
    finally:
        await led.close()


async def test_team_caps_refuse_with_the_reason(team: TeamDb, tmp_path: Path) -> None:
    admin = await PgLedger.open(team.url(ADMIN))
    await admin.set_budget("", 0.03, None)
    await admin.close()
    led = await TeamLedger.open(settings(team), tmp_path / "spool.sqlite3")
    try:
        await led.reserve("r1", "alice", 0.02, daily=None, monthly=None)
        with pytest.raises(OverBudget) as err:
            await led.reserve("r2", "alice", 0.02, daily=None, monthly=None, model="gpt-4o")
        assert err.value.reason == (
            "gpt-4o's estimate $0.02 would pass the team's daily budget "
            "($0.00 spent, $0.02 reserved, limit $0.03)."
        )
    finally:
        await led.close()


async def test_one_members_failures_open_everyones_circuit(team: TeamDb, tmp_path: Path) -> None:
    bob = await TeamLedger.open(settings(team, "bob"), tmp_path / "bob.sqlite3")
    alice = await TeamLedger.open(settings(team, "alice"), tmp_path / "alice.sqlite3")
    health = Health()
    bob.share_health(health)
    try:
        await asyncio.sleep(0.3)  # bob's follower has its starting point
        for _ in range(3):
            alice.record_nowait(row(0.0, outcome="server_error", model="gpt-4o"))
        await alice.flush()
        await until(lambda: health.state("gpt-4o") == OPEN, timeout=5.0)
        assert health.state("devstral-small") != OPEN
    finally:
        await alice.close()
        await bob.close()


async def test_team_settings_in_the_config_file(tmp_path: Path) -> None:
    from ace_lsp.orchestrator.config import load_config
    from ace_lsp.orchestrator.errors import InputError

    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'ledger_url = "postgresql://alice@db.example/ace"\n[team]\noffline_usd = 0.1\n'
    )
    config = load_config(env={"ACE_HOME": str(home)})
    assert config.ledger_url == "postgresql://alice@db.example/ace"
    assert config.team == {"offline_usd": 0.1}
    env = {"ACE_HOME": str(home), "ACE_LEDGER_URL": "postgresql://bob:pw@db/ace"}
    assert load_config(env=env).ledger_url == "postgresql://bob:pw@db/ace"  # env wins
    (home / "config.toml").write_text('ledger_url = "postgresql://alice:hunter2@db/ace"\n')
    with pytest.raises(InputError, match=r"passwords belong in ~/\.pgpass"):
        load_config(env={"ACE_HOME": str(home)})
    (home / "config.toml").write_text("")
    (tmp_path / "ace.toml").write_text('ledger_url = "postgresql://evil@attacker/ace"\n')
    config = load_config(tmp_path, env={"ACE_HOME": str(home)})
    assert config.ledger_url is None  # a workspace must not choose where usage goes
    assert "`ledger_url` (line 1) chooses where usage is written" in config.notices[0]
