"""`ace team …` and `ace usage --team` against a real PostgreSQL server, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ace_lsp.orchestrator.team import schema
from ace_lsp.orchestrator.team.pg import PgLedger
from tests.e2e.conftest import server_env
from tests.team.conftest import ADMIN, TeamDb
from tests.team.test_pg_ledger import row


def ace(home: Path, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(home)
    env.pop("ACE_LEDGER_URL", None)
    if url is not None:
        env["ACE_LEDGER_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def test_migrate_from_nothing_then_up_to_date(team: TeamDb, tmp_path: Path) -> None:
    team.sql("DROP SCHEMA ace CASCADE")
    member = ace(tmp_path, team.url("alice"), "team", "migrate")
    assert member.returncode == 1
    assert member.stderr.strip().startswith("ace: This role may not create ACE's schema")
    assert "Traceback" not in member.stderr
    done = ace(tmp_path, team.url("owner"), "team", "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith(f"version 0 -> {schema.SCHEMA_VERSION}.")
    again = ace(tmp_path, None, "team", "--url", team.url("owner"), "--json", "migrate")
    assert json.loads(again.stdout)["applied"] == 0


async def test_budgets_are_set_by_admins_only(team: TeamDb, tmp_path: Path) -> None:
    refused = ace(tmp_path, team.url("alice"), "team", "budget", "--team", "--daily", "5")
    assert refused.returncode == 1
    assert f"needs the ace_team_admin_{team.name} role, which alice does not have" in (
        refused.stderr
    )
    done = ace(
        tmp_path, team.url(ADMIN), "team", "budget", "--team", "--daily", "5", "--monthly", "80"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Caps for the team: daily $5.00, monthly $80.00."
    done = ace(tmp_path, team.url(ADMIN), "team", "budget", "--user", "bob", "--daily", "0.5")
    assert done.stdout.strip() == "Caps for bob: daily $0.50, monthly no cap."
    bad = ace(tmp_path, team.url(ADMIN), "team", "budget", "--everyone", "--daily", "lots")
    assert bad.returncode == 2 and "A cap must be dollars" in bad.stderr
    status = json.loads(ace(tmp_path, team.url("bob"), "team", "--json", "status").stdout)
    assert status["role"] == "bob" and not status["admin"]
    assert status["you"]["daily_limit"] == 0.5 and status["team"]["daily_limit"] == 5.0
    text = ace(tmp_path, team.url("bob"), "team", "status").stdout
    assert "you are bob (member)" in text and "Team today $0.00 of $5.00" in text


async def test_usage_team_view_for_the_admin_and_refused_to_members(
    team: TeamDb, tmp_path: Path
) -> None:
    for user, costs in (("alice", [0.01, 0.02]), ("bob", [0.04])):
        led = await PgLedger.open(team.url(user))
        await led.insert([row(c) for c in costs])
        await led.close()
    view = ace(tmp_path, team.url(ADMIN), "usage", "--team", "--json")
    assert view.returncode == 0, view.stderr
    data = json.loads(view.stdout)
    assert {u: v["calls"] for u, v in data["users"].items()} == {"alice": 2, "bob": 1}
    assert abs(data["users"]["alice"]["cost_usd"] - 0.03) < 1e-9
    assert abs(data["team"]["spent_today"] - 0.07) < 1e-9
    table = ace(tmp_path, team.url(ADMIN), "usage", "--team")
    assert "alice" in table.stdout and "bob" in table.stdout
    refused = ace(tmp_path, team.url("alice"), "usage", "--team")
    assert refused.returncode == 1
    assert refused.stdout.strip() == (
        "ace: The team view needs the ace_team_admin role, which alice does not have; ask your "
        "team admin, or run `ace usage` for your own."
    )
    mine = json.loads(ace(tmp_path, team.url("alice"), "usage", "--json").stdout)
    assert mine["user"] == "alice" and mine["calls_today"] == 2  # alice sees only her rows
    assert abs(mine["today"]["spent_usd"] - 0.03) < 1e-9
    assert mine["ledger"] == f"postgresql://alice@127.0.0.1:{team.cluster.port}/{team.name}"
    alone = ace(tmp_path, None, "usage", "--team")
    assert alone.returncode == 1 and "There is no team ledger" in alone.stdout


async def test_doctor_names_the_team_ledger_and_its_state(team: TeamDb, tmp_path: Path) -> None:
    done = ace(tmp_path, team.url("alice"), "doctor")
    where = f"postgresql://alice@127.0.0.1:{team.cluster.port}/{team.name}"
    assert f"ledger: {where}, as alice (member)" in " ".join(done.stdout.split()), done.stdout
    team.cluster.stop()
    try:
        away = ace(tmp_path, team.url("alice"), "doctor")
    finally:
        team.cluster.start()
    text = " ".join(away.stdout.split())
    assert f"ledger: {where} is offline. The team ledger at {where} does not answer" in text, text
    assert "Usage waits in" in text
    assert str(tmp_path / "team-spool.sqlite3") in "".join(away.stdout.split())  # rich wraps
