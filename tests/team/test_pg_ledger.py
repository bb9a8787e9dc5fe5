"""The PostgreSQL ledger against a real server: migrations, row level security, reservations."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from ace_lsp.orchestrator.errors import Unreachable
from ace_lsp.orchestrator.ledger import LedgerError, LedgerRow
from ace_lsp.orchestrator.team import schema
from ace_lsp.orchestrator.team.pg import PgLedger, display_url
from tests.team.conftest import ADMIN, TeamDb

Opener = Callable[[str], "asyncio.Future[PgLedger]"]


def row(cost: float = 0.01, *, reservation: str | None = None, **kw: object) -> LedgerRow:
    fields: dict[str, object] = {
        "ts": time.time(),
        "request_id": uuid.uuid4().hex,
        "user": "ignored: the database role is the user",
        "task": "AUTO_FIX",
        "tier": "pro",
        "model": "devstral-small",
        "provider": "devstral",
        "input_tokens": 100,
        "output_tokens": 50,
        "cost_usd": cost,
        "latency_ms": 120.0,
        "outcome": "ok",
        "chain_position": 0,
        "attempt": 1,
        "reservation_id": reservation,
    }
    fields.update(kw)
    return LedgerRow(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def ledgers(team: TeamDb) -> AsyncIterator[dict[str, PgLedger]]:
    opened: dict[str, PgLedger] = {}
    for user in ("alice", "bob", ADMIN):
        opened[user] = await PgLedger.open(team.url(user))
    yield opened
    for led in opened.values():
        await led.close()


# -- migrations ---------------------------------------------------------------------------------


async def test_migrations_are_idempotent_and_safe_side_by_side(team: TeamDb) -> None:
    team.sql("DROP SCHEMA ace CASCADE")
    conns = [
        await psycopg.AsyncConnection.connect(team.url("owner"), autocommit=True) for _ in range(4)
    ]
    try:
        applied = await asyncio.gather(*(schema.migrate(c) for c in conns))
        # four servers starting at once: applied once
        assert sorted(applied) == [0, 0, 0, schema.SCHEMA_VERSION]
        assert await schema.migrate(conns[0]) == 0
        assert await schema.current_version(conns[0]) == schema.SCHEMA_VERSION
    finally:
        for c in conns:
            await c.close()
    assert team.sql("SELECT version FROM ace.schema_version ORDER BY 1") == [
        (v,) for v in range(1, schema.SCHEMA_VERSION + 1)
    ]


async def test_a_member_cannot_create_the_schema_and_is_told_who_can(team: TeamDb) -> None:
    team.sql("DROP SCHEMA ace CASCADE")
    with pytest.raises(LedgerError) as err:
        await PgLedger.open(team.url("alice"))
    assert "ask the database owner to run `ace team migrate`" in err.value.reason
    assert "\n" not in err.value.reason


async def test_an_unreachable_server_is_one_sentence_without_the_password(team: TeamDb) -> None:
    url = f"postgresql://alice:s3cret-pw@127.0.0.1:{team.cluster.port + 1}/{team.name}"
    with pytest.raises(Unreachable) as err:
        await PgLedger.open(url, timeout_s=1.0)
    assert "does not answer" in err.value.reason
    assert "s3cret-pw" not in err.value.reason
    assert display_url(url) == f"postgresql://alice@127.0.0.1:{team.cluster.port + 1}/{team.name}"


# -- row level security -------------------------------------------------------------------------


async def test_members_write_and_read_only_their_own_rows(
    team: TeamDb, ledgers: dict[str, PgLedger]
) -> None:
    alice, bob, carol = ledgers["alice"], ledgers["bob"], ledgers[ADMIN]
    await alice.insert([row(0.01), row(0.02)])
    await bob.insert([row(0.04)])
    assert sum(line.calls for line in await alice.usage(0)) == 2
    assert sum(line.calls for line in await bob.usage(0)) == 1
    by_user = await carol.usage(0, by_user=True)  # the admin sees everyone
    assert {(line.user, line.calls) for line in by_user} == {("alice", 2), ("bob", 1)}
    assert carol.admin and not alice.admin
    # alice cannot write a row in bob's name, even by hand
    with psycopg.connect(team.url("alice"), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO ace.runs (row_id, user_name, ts, request_id, task, tier, model, "
                "provider, input_tokens, output_tokens, cost_usd, latency_ms, outcome, "
                "chain_position, attempt) VALUES ('x', 'bob', 0, 'r', 't', 't', 'm', 'p', 0, 0, "
                "0, 0, 'ok', 0, 1)"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE ace.totals SET spent = 0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM ace.reservations")
        assert conn.execute("SELECT count(*) FROM ace.runs").fetchone() == (2,)


async def test_only_the_admin_sets_budgets(ledgers: dict[str, PgLedger]) -> None:
    with pytest.raises(LedgerError) as err:
        await ledgers["alice"].set_budget("", 1.0, None)
    assert "ace_team_admin" in err.value.reason
    await ledgers[ADMIN].set_budget("", 1.0, 10.0)
    team_scope = (await ledgers["alice"].status(None, None))["team"]
    assert (team_scope.daily_limit, team_scope.monthly_limit) == (1.0, 10.0)


# -- reservations -------------------------------------------------------------------------------


async def test_reservations_hold_user_and_team_caps(ledgers: dict[str, PgLedger]) -> None:
    alice, bob, carol = ledgers["alice"], ledgers["bob"], ledgers[ADMIN]
    await carol.set_budget("", 0.10, None)  # the team: $0.10 a day
    await carol.set_budget("*", 0.06, None)  # each member: $0.06 a day
    assert await alice.reserve("a1", 0.05, daily=None, monthly=None, ttl_s=60) is None
    refused = await alice.reserve("a2", 0.02, daily=None, monthly=None, ttl_s=60)
    assert refused is not None and (refused.scope, refused.period) == ("user", "daily")
    assert "alice's daily budget ($0.00 spent, $0.05 reserved, limit $0.06)" in (
        refused.sentence("alice", 0.02)
    )
    assert await bob.reserve("b1", 0.04, daily=None, monthly=None, ttl_s=60) is None
    refused = await bob.reserve("b2", 0.02, daily=None, monthly=None, ttl_s=60)
    assert refused is not None and refused.scope == "team"
    # the caller's own (tier) cap applies too, whichever is smaller
    refused = await bob.reserve("b3", 0.005, daily=0.04, monthly=None, ttl_s=60)
    assert refused is not None and (refused.scope, refused.cap) == ("user", 0.04)
    # alice's call ends costing less than reserved: the rest is free again
    await alice.insert([row(0.01, reservation="a1")])
    status = await alice.status(None, None)
    assert status["user"].reserved == 0.0 and status["user"].spent_today == pytest.approx(0.01)
    assert status["team"].reserved == pytest.approx(0.04)
    assert await bob.reserve("b4", 0.02, daily=None, monthly=None, ttl_s=60) is None


async def test_a_dead_process_reservation_expires(ledgers: dict[str, PgLedger]) -> None:
    alice, carol = ledgers["alice"], ledgers[ADMIN]
    await carol.set_budget("", 0.05, None)
    assert await alice.reserve("dies", 0.05, daily=None, monthly=None, ttl_s=0.3) is None
    assert await alice.reserve("x", 0.01, daily=None, monthly=None, ttl_s=60) is not None
    await asyncio.sleep(0.4)
    assert await alice.reserve("y", 0.01, daily=None, monthly=None, ttl_s=60) is None


async def test_a_row_sent_twice_counts_once(team: TeamDb, ledgers: dict[str, PgLedger]) -> None:
    alice = ledgers["alice"]
    r = row(0.03)
    await alice.insert([r])
    await alice.insert([r, row(0.01)])
    status = await alice.status(None, None)
    assert status["user"].spent_today == pytest.approx(0.04)
    assert status["team"].spent_today == pytest.approx(0.04)
    assert team.sql("SELECT count(*) FROM ace.runs") == [(2,)]


async def test_recent_and_others_since_share_figures_without_names(
    ledgers: dict[str, PgLedger],
) -> None:
    alice, bob = ledgers["alice"], ledgers["bob"]
    start = await bob.last_row()
    await alice.insert([row(outcome="server_error", model="gpt-4o") for _ in range(3)])
    await bob.insert([row()])
    after, rows = await bob.others_since(start)
    assert [r.outcome for r in rows] == ["server_error"] * 3  # alice's, not bob's own
    assert {r.user for r in rows} == {""}
    assert (await bob.others_since(after))[1] == []
    assert {r.model for r in await bob.recent()} == {"gpt-4o", "devstral-small"}
