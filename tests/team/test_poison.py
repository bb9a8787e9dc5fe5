"""The team database refuses poison: bad costs, dated rows, endless reservations, other teams."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from ace_lsp.orchestrator.ledger import LedgerError
from ace_lsp.orchestrator.team import schema
from ace_lsp.orchestrator.team.pg import PgLedger, migrate_schema
from tests.team.conftest import ADMIN, TeamDb
from tests.team.test_cli_team import ace
from tests.team.test_pg_ledger import row

_COLUMNS = (
    "row_id, request_id, task, tier, model, provider, input_tokens, output_tokens, cost_usd, "
    "latency_ms, outcome, chain_position, attempt"
)
_VALUES = "'r', 'AUTO_FIX', 'pro', 'm', 'p', 1, 1, %s, 1, 'ok', 0, 1"


def insert_by_hand(url: str, row_id: str, cost: object, ts: float | None = None) -> None:
    """What a member can do with psql: one row, straight into ace.runs."""
    columns, values, params = _COLUMNS, f"%s, {_VALUES}", [row_id, cost]
    if ts is not None:
        columns, values, params = f"{columns}, ts", f"{values}, %s", [*params, ts]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO ace.runs ({columns}) VALUES ({values})".encode(),
            params,
        )


def roles(db: TeamDb) -> tuple[str, str]:
    """The roles that make a login a member, or an admin, of this team."""
    (member, admin) = db.sql("SELECT member_role, admin_role FROM ace.team_roles")[0]
    return str(member), str(admin)


@pytest.fixture
async def alice(team: TeamDb) -> AsyncIterator[PgLedger]:
    led = await PgLedger.open(team.url("alice"))
    yield led
    await led.close()


# -- costs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cost",
    [
        pytest.param(-5.0, id="negative"),
        pytest.param(float("nan"), id="NaN"),
        pytest.param(float("inf"), id="Infinity"),
        pytest.param(1e9, id="a billion"),
        pytest.param(1000.0, id="1000"),
    ],
)
async def test_a_poison_cost_is_refused(team: TeamDb, alice: PgLedger, cost: float) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_by_hand(team.url("alice"), "by-hand", cost)
    with pytest.raises(LedgerError) as err:
        await alice.insert([row(0.01), row(cost)])
    assert err.value.reason == (
        f"The team ledger at {alice.where} refused 2 usage rows: a row's cost must be a "
        "number of dollars from 0 up to 1000."
    )
    assert team.sql("SELECT count(*) FROM ace.runs") == [(0,)]
    assert team.sql("SELECT count(*) FROM ace.totals") == [(0,)]  # nothing counted
    await alice.insert([row(999.99)])  # the largest cost a row may have is still fine


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [pytest.param(-365, id="a year ago"), pytest.param(2, id="ahead")])
async def test_a_member_cannot_date_a_row(team: TeamDb, alice: PgLedger, days: int) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        insert_by_hand(team.url("alice"), "dated", 0.5, ts=time.time() + days * 86400)
    # ACE's own rows are stamped by the database when they land, whatever the row says
    await alice.insert([row(0.5, ts=time.time() + days * 86400)])
    ((ts,),) = team.sql("SELECT ts FROM ace.runs")
    assert abs(ts - time.time()) < 60
    assert (await alice.status(None, None))["user"].spent_today == pytest.approx(0.5)


async def test_a_member_cannot_write_rows_as_a_group_role(team: TeamDb) -> None:
    member, _admin = roles(team)
    with psycopg.connect(team.url("alice"), autocommit=True) as conn:
        conn.execute(f'SET ROLE "{member}"'.encode())
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                f"INSERT INTO ace.runs ({_COLUMNS}, user_name) VALUES ('g', {_VALUES}, %s)".encode(),
                (0.5, member),
            )
        conn.execute(f"INSERT INTO ace.runs ({_COLUMNS}) VALUES ('g', {_VALUES})".encode(), (0.5,))
    assert team.sql("SELECT user_name FROM ace.runs") == [("alice",)]  # who logged in


# -- reservations -------------------------------------------------------------------------------


async def test_a_reservation_lasts_an_hour_at_most(team: TeamDb, alice: PgLedger) -> None:
    ten_years = 10 * 365 * 86400.0
    assert await alice.reserve("decade", 0.5, daily=None, monthly=None, ttl_s=ten_years) is None
    assert await alice.reserve("nan", 0.5, daily=None, monthly=None, ttl_s=float("nan")) is None
    for rid in ("decade", "nan"):
        ((left,),) = team.sql(
            "SELECT extract(epoch FROM expires_at - now()) FROM ace.reservations WHERE id = %s",
            (rid,),
        )
        assert 3500 < left <= 3600
    for amount in (float("nan"), float("inf"), 1e9, -1.0):
        with pytest.raises(LedgerError) as err:
            await alice.reserve("bad", amount, daily=None, monthly=None, ttl_s=60)
        assert "amount must be a number of dollars from 0 up to 1000" in err.value.reason
        assert "\n" not in err.value.reason


# -- voiding ------------------------------------------------------------------------------------


async def test_the_admin_voids_a_run_and_a_reservation(team: TeamDb, alice: PgLedger) -> None:
    carol = await PgLedger.open(team.url(ADMIN))
    try:
        await carol.set_budget("", 1.0, None)
        big, small = row(0.9), row(0.05)
        await alice.insert([big, small])
        assert await alice.reserve("stuck", 0.05, daily=None, monthly=None, ttl_s=3600) is None
        refused = await alice.reserve("more", 0.1, daily=None, monthly=None, ttl_s=60)
        assert refused is not None and refused.scope == "team"
        with pytest.raises(LedgerError) as err:
            await alice.void_run(big.row_id)
        assert err.value.reason.startswith("Voiding needs the ace_team_admin")
        with (
            psycopg.connect(team.url("alice"), autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute("SELECT ace.void_run(%s)", (big.row_id,))

        voided = await carol.void_run(big.row_id)
        assert (voided.user, voided.cost_usd, voided.voided_by, voided.newly) == (
            "alice",
            0.9,
            ADMIN,
            True,
        )
        again = await carol.void_run(str(voided.id))  # by its number too; voided once
        assert (again.id, again.newly) == (voided.id, False)
        assert (await carol.void_reservation("stuck")) == ("alice", 0.05)
        assert await carol.void_reservation("stuck") is None
        with pytest.raises(LedgerError) as err:
            await carol.void_run("no-such-row")
        assert err.value.reason == f"The team ledger at {carol.where} has no run no-such-row."

        status = await alice.status(None, None)
        assert status["user"].spent_today == pytest.approx(0.05)
        assert status["team"].spent_today == pytest.approx(0.05)
        assert status["team"].reserved == 0.0
        assert await alice.reserve("more", 0.1, daily=None, monthly=None, ttl_s=60) is None
        assert [line.calls for line in await carol.usage(0)] == [1]  # voided: not in usage
        assert team.sql("SELECT count(*) FROM ace.runs") == [(2,)]  # but kept, marked
    finally:
        await carol.close()


# -- one team per database ----------------------------------------------------------------------


async def test_a_member_or_admin_of_one_team_cannot_reach_another(team: TeamDb) -> None:
    other = TeamDb(team.cluster, f"{team.name}_b")
    await team.cluster.create_team(other.name)
    mallory, trent = f"mallory_{team.name}", f"trent_{team.name}"
    member, admin = roles(team)
    team.cluster.sql(
        f"CREATE ROLE {mallory} LOGIN IN ROLE {member}",
        f"CREATE ROLE {trent} LOGIN IN ROLE {admin}",
    )
    bob = await PgLedger.open(other.url("bob"))
    await bob.insert([row(0.25)])
    await bob.close()
    for who in (mallory, trent):
        led = await PgLedger.open(team.url(who))  # their own team's database: fine
        await led.insert([row(0.01)])
        await led.close()
        with pytest.raises(psycopg.OperationalError) as raw:
            psycopg.connect(other.url(who)).close()
        assert "permission denied for database" in str(raw.value)
        with pytest.raises(LedgerError) as err:
            await PgLedger.open(other.url(who))
        assert err.value.reason == (
            f"The team ledger at postgresql://{who}@127.0.0.1:{team.cluster.port}/{other.name} "
            f"refused {who}: this role is not a member of that team (it may not connect to "
            f"database {other.name}); ask its admin to grant it {roles(other)[0]}."
        )
    assert other.sql("SELECT user_name FROM ace.runs") == [("bob",)]


@pytest.mark.parametrize(
    "suffix", [pytest.param("-Big", id="mixed case"), pytest.param("_" + "x" * 50, id="long")]
)
async def test_the_team_roles_of_any_database_name(team: TeamDb, suffix: str) -> None:
    name = team.name + suffix
    team.cluster.sql(f'CREATE DATABASE "{name}" OWNER owner')
    done = await migrate_schema(team.cluster.url("owner", name))
    assert (done.member_role, done.admin_role) == schema.team_roles(name)  # the names agree
    assert all(len(role.encode()) <= 63 for role in schema.team_roles(name))
    quoted = schema.sql_name(done.member_role)
    team.cluster.sql(f"CREATE ROLE rolefor_{team.name}{len(suffix)} LOGIN IN ROLE {quoted}")
    led = await PgLedger.open(team.cluster.url(f"rolefor_{team.name}{len(suffix)}", name))
    await led.close()


# -- upgrading a database of version 1 ----------------------------------------------------------


async def test_an_upgrade_voids_the_poison_and_keeps_the_shared_roles_working(
    team: TeamDb, tmp_path: Path
) -> None:
    """A version 1 team (the shared roles ace_member and ace_team_admin) with poison in it."""
    old = TeamDb(team.cluster, f"{team.name}_v1")
    member, admin = f"olduser_{team.name}", f"oldadmin_{team.name}"
    team.cluster.sql(
        f"CREATE DATABASE {old.name} OWNER owner",
        f"CREATE ROLE {member} LOGIN IN ROLE ace_member",
        f"CREATE ROLE {admin} LOGIN IN ROLE ace_team_admin",
    )
    async with await psycopg.AsyncConnection.connect(old.url("owner"), autocommit=True) as conn:
        assert await schema.migrate(conn, upto=1) == 1
    now = time.time()
    with psycopg.connect(old.url(member), autocommit=True) as conn:
        for row_id, cost, ts in (
            ("fine", 0.5, now),
            ("nan", float("nan"), now),
            ("huge", 1e9, now),
            ("ahead", 0.5, now + 365 * 86400),
            ("old", 0.25, now - 365 * 86400),
        ):
            conn.execute(
                f"INSERT INTO ace.runs ({_COLUMNS}, ts) VALUES (%s, {_VALUES}, %s)".encode(),
                (row_id, cost, ts),
            )
        conn.execute("SELECT * FROM ace.reserve('decade', 0.5, NULL, NULL, 315360000)")
        conn.execute("SELECT * FROM ace.reserve('nan', 'NaN', NULL, NULL, 60)")
    today = "(now() AT TIME ZONE 'UTC')::date"
    # NaN, and NaN sorts above every cap: each reservation against a cap would now be refused
    assert old.sql(
        f"SELECT spent = 'NaN' FROM ace.totals WHERE subject = '' AND day = {today}"
    ) == [(True,)]

    done = ace(tmp_path, old.url("owner"), "team", "migrate")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].endswith(f"version 1 -> {schema.SCHEMA_VERSION}.")
    assert lines[1] == (
        f"Members connect through role ace_member_{old.name}, admins through "
        f"ace_team_admin_{old.name}: GRANT ace_member_{old.name} TO alice; "
        f"GRANT ace_team_admin_{old.name} TO carol;"
    )
    assert f"REVOKE ace_member_{old.name} FROM ace_member;" in lines[2]
    again = json.loads(ace(tmp_path, old.url("owner"), "team", "--json", "migrate").stdout)
    assert (again["applied"], again["shared_roles"]) == (0, True)

    voided = old.sql("SELECT row_id, voided_by FROM ace.runs WHERE voided_at IS NOT NULL")
    assert sorted(voided) == [("ahead", "ace team migrate"), ("huge", "ace team migrate"),
                              ("nan", "ace team migrate")]  # fmt: skip
    assert old.sql(f"SELECT count(*) FROM ace.totals WHERE day > {today}") == [(0,)]
    assert old.sql("SELECT id FROM ace.reservations") == [("decade",)]
    ((left,),) = old.sql("SELECT extract(epoch FROM expires_at - now()) FROM ace.reservations")
    assert left <= 3600
    assert old.sql(  # CONNECT: for no one but the team (and the owner)
        "SELECT a.grantee::regrole::text FROM pg_database d, aclexplode(d.datacl) a "
        "WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' ORDER BY 1"
    ) == [(f"ace_member_{old.name}",), (f"ace_team_admin_{old.name}",), ("owner",)]

    # the members of the shared roles go on as before, with the totals put right
    led = await PgLedger.open(old.url(member))
    try:
        status = await led.status(None, None)
        assert status["user"].spent_today == pytest.approx(0.5)  # "fine" only
        await led.insert([row(0.1)])
        assert (await led.status(None, None))["team"].spent_today == pytest.approx(0.6)
    finally:
        await led.close()
    boss = await PgLedger.open(old.url(admin))
    try:
        assert boss.admin
        assert (await boss.void_run("fine")).newly
    finally:
        await boss.close()
    # and still reach no database migrated afresh (there the shared roles have no rights)
    with pytest.raises(LedgerError) as err:
        await PgLedger.open(team.url(member))
    assert "this role is not a member of that team" in err.value.reason


# -- the CLI ------------------------------------------------------------------------------------


async def test_ace_team_void_and_its_refusals(team: TeamDb, tmp_path: Path) -> None:
    alice = await PgLedger.open(team.url("alice"))
    bad = row(0.75)
    await alice.insert([bad, row(0.05)])
    await alice.reserve("stuck", 0.3, daily=None, monthly=None, ttl_s=600)
    await alice.close()
    (run_id,) = team.sql("SELECT id FROM ace.runs WHERE row_id = %s", (bad.row_id,))[0]

    refused = ace(tmp_path, team.url("alice"), "team", "void", "--run", str(run_id))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        f"ace: Voiding needs the ace_team_admin_{team.name} role, which alice does not have; "
        "ask your team admin."
    )
    done = ace(tmp_path, team.url(ADMIN), "team", "void", "--run", str(run_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Voided run {run_id} (alice, $0.75 on ")
    again = ace(tmp_path, team.url(ADMIN), "team", "void", "--run", bad.row_id)
    assert (
        f"Run {run_id} (alice, " in again.stdout and "was voided already, by carol" in again.stdout
    )
    ended = ace(tmp_path, team.url(ADMIN), "team", "--json", "void", "--reservation", "stuck")
    assert json.loads(ended.stdout) == {"reservation": "stuck", "user": "alice", "amount": 0.3}
    gone = ace(tmp_path, team.url(ADMIN), "team", "void", "--reservation", "stuck")
    assert gone.returncode == 1
    assert gone.stderr.strip().endswith("has no reservation stuck (it may have ended or expired).")
    status = json.loads(ace(tmp_path, team.url("alice"), "team", "--json", "status").stdout)
    assert status["you"]["spent_today"] == pytest.approx(0.05)
    assert status["team"]["reserved"] == 0.0

    team.cluster.sql(f"CREATE ROLE stranger_{team.name} LOGIN")
    outside = ace(tmp_path, team.url(f"stranger_{team.name}"), "team", "status")
    assert outside.returncode == 1 and "Traceback" not in outside.stderr
    assert outside.stderr.strip().endswith(
        f"refused stranger_{team.name}: this role is not a member of that team (it may not "
        f"connect to database {team.name}); ask its admin to grant it ace_member_{team.name}."
    )
