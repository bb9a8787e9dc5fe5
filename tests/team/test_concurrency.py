"""20 ACE processes x 20 concurrent calls against one team's caps: nobody overspends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ace_lsp.orchestrator.team.pg import PgLedger
from tests.team.conftest import ADMIN, MEMBERS, TeamDb

TEAM_DAILY = 1.00
MEMBER_DAILY = 0.30
PROCESSES = 20
CONCURRENT = 20


@pytest.mark.timeout(180)
async def test_20_processes_x_20_concurrent_never_overspend(team: TeamDb, tmp_path: Path) -> None:
    admin = await PgLedger.open(team.url(ADMIN))
    await admin.set_budget("", TEAM_DAILY, None)
    await admin.set_budget("*", MEMBER_DAILY, None)
    await admin.close()
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.team.reserve_worker",
                team.url(MEMBERS[i % len(MEMBERS)]),
                str(tmp_path / f"spool{i}.sqlite3"),
                str(CONCURRENT),
                str(i),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=150)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert all(r["state"] == "online" for r in results)
    granted = sum(r["granted"] for r in results)
    refused = sum(r["refused"] for r in results)
    assert granted + refused == PROCESSES * CONCURRENT
    assert refused > 0, "the caps never bit: the test proves nothing"
    (team_spent,) = team.sql("SELECT spent FROM ace.totals WHERE subject = ''")[0]
    per_user = dict(team.sql("SELECT subject, spent FROM ace.totals WHERE subject <> ''"))
    rows = team.sql("SELECT user_name, count(*), sum(cost_usd) FROM ace.runs GROUP BY user_name")
    overspend = max(0.0, float(team_spent) - TEAM_DAILY)
    user_overspend = max(max(0.0, float(s) - MEMBER_DAILY) for s in per_user.values())
    latencies = sorted(ms for r in results for ms in r["reserve_ms"])
    print(
        f"\n20x20: {granted} granted, {refused} refused; team spent ${float(team_spent):.4f} of "
        f"${TEAM_DAILY:.2f} (overspend ${overspend:.4f}); worst member overspend "
        f"${user_overspend:.4f}; reserve p50 {latencies[len(latencies) // 2]:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms"
    )
    assert overspend == 0.0 and user_overspend == 0.0
    # every granted call has its row; the totals are the rows' sum; nothing is left reserved
    assert sum(int(n) for _, n, _ in rows) == granted
    assert float(team_spent) == pytest.approx(sum(float(c) for _, _, c in rows))
    assert float(team_spent) == pytest.approx(sum(r["spent"] for r in results))
    assert team.sql("SELECT count(*) FROM ace.reservations") == [(0,)]
