"""Team mode through the real `ace serve`: two members' servers share one cap; the database goes
away mid-run and comes back, and nothing is lost or counted twice."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from ace_lsp.orchestrator import budget as budgeting
from ace_lsp.orchestrator.team.pg import PgLedger
from ace_lsp.orchestrator.types import Message
from tests.e2e.conftest import (
    SERVER,
    plain,
    read_code_actions_like_editors,
    server_env,
    track_budget,
    until,
)
from tests.e2e.test_load import E711, GOOD, MODEL, SOURCE, _estimate
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY as MISTRAL_KEY
from tests.team.conftest import ADMIN, TeamDb

DEVSTRAL = "devstral-small-2505"


@pytest.fixture
def vendor() -> Iterator[tuple[FakeVendor, str]]:
    fake = FakeVendor()
    with serve(mistral_app(fake)) as url:
        yield fake, url


@dataclass
class Member:
    client: LanguageClient
    budgets: list[dict[str, Any]]
    root: Path


PASSWORD = "pg-SeCrEt-7f3a9"  # trust auth ignores it; it must never show in a log or message


async def start(team: TeamDb, user: str, tmp_path: Path, vendor_url: str) -> Member:
    home = tmp_path / f"home_{user}"
    home.mkdir()
    (home / "config.toml").write_text(
        "[team]\nreconnect_s = 0.3\nconnect_timeout_s = 1\nhealth_refresh_s = 0.5\n"
        "offline_usd = 0.05\n"
    )
    root = tmp_path / f"ws_{user[0]}"  # equal path lengths: equal prompts, equal estimates
    root.mkdir()
    (root / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    (root / "ace.toml").write_text("[models.local]\nenabled = false\n")
    env = {
        **server_env(home),
        "MISTRAL_API_KEY": MISTRAL_KEY,
        "ACE_MISTRAL_BASE_URL": f"{vendor_url}/v1",
        "ACE_LEDGER_URL": team.url(user).replace(f"{user}@", f"{user}:{PASSWORD}@"),
    }
    client = make_test_lsp_client()
    read_code_actions_like_editors(client)
    budgets = track_budget(client)
    log = tmp_path / f"{user}.log"
    await client.start_io(*SERVER, "serve", "-v", "--log-file", str(log), env=env)
    await client.initialize_session(
        lsp.InitializeParams(
            capabilities=client_capabilities("visual-studio-code@v1.65.2"),
            # the editor's user id is not who pays: the database role is
            initialization_options={"tier": "pro", "userId": "someone-else"},
            process_id=os.getpid(),
            root_uri=root.as_uri(),
        )
    )
    await until(lambda: budgets, "the first ace/budget notification")
    return Member(client, budgets, root)


async def stop(member: Member) -> None:
    try:
        await asyncio.wait_for(member.client.shutdown_session(), 10)
    finally:
        await member.client.stop()


async def fix(member: Member, name: str) -> Any:
    """Open `name` (mod.py with an E711) and resolve "Fix with ACE"; the edit or the exception."""
    path = member.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SOURCE)
    uri = path.as_uri()
    member.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
    )
    actions = await member.client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri), E711.range, lsp.CodeActionContext(diagnostics=[E711])
        )
    )
    (action,) = [a for a in actions or [] if isinstance(a, lsp.CodeAction)][:1]
    try:
        return await member.client.code_action_resolve_async(action)
    except Exception as exc:  # the server's JSON-RPC error, as an editor would show it
        return exc


async def budget(member: Member) -> dict[str, Any]:
    got = await member.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams(command="ace.budget")
    )
    return dict(plain(got))


@pytest.mark.timeout(90)
async def test_two_members_servers_share_the_team_cap(
    team: TeamDb, tmp_path: Path, vendor: tuple[FakeVendor, str]
) -> None:
    fake, url = vendor
    alice = await start(team, "alice", tmp_path, url)
    bob = await start(team, "bob", tmp_path, url)
    try:
        (alice.root / "0").mkdir()
        (alice.root / "0" / "mod.py").write_text(SOURCE)
        _, _, estimate = await _estimate(alice.root / "0" / "mod.py")
        admin = await PgLedger.open(team.url(ADMIN))
        await admin.set_budget("", 2.5 * estimate, None)  # two calls fit, not three
        await admin.close()
        # every call is in flight before any ends
        fake.inject(DEVSTRAL, *(Fault(text=GOOD, delay_s=0.8) for _ in range(4)))
        results = await asyncio.gather(
            fix(alice, "0/mod.py"),
            fix(alice, "1/mod.py"),
            fix(bob, "0/mod.py"),
            fix(bob, "1/mod.py"),
        )
        refused = [r for r in results if isinstance(r, Exception)]
        fixed = [r for r in results if not isinstance(r, Exception)]
        assert len(fixed) == 2 and len(refused) == 2, results
        for exc in refused:
            assert "would pass the team's daily budget" in str(exc), str(exc)
        q = "SELECT user_name, outcome, reservation_id IS NOT NULL FROM ace.runs"
        rows = await until(lambda: len(team.sql(q)) == 2 and team.sql(q), "two rows")
        assert sorted(r[1:] for r in rows) == [("ok", True), ("ok", True)]
        assert {r[0] for r in rows} <= {"alice", "bob"}
        assert team.sql("SELECT count(*) FROM ace.reservations") == [(0,)]
        seen = await budget(alice)
        assert seen["ledger"] == "ok" and seen["ledgerKind"] == "team"
        assert seen["user"] == "alice"
        assert seen["team"]["dailyLimit"] == pytest.approx(2.5 * estimate)
        (spent,) = team.sql("SELECT spent FROM ace.totals WHERE subject = ''")[0]
        assert seen["team"]["spentToday"] == pytest.approx(spent, abs=1e-6)
        assert 0 < spent <= 2.5 * estimate
    finally:
        await stop(alice)
        await stop(bob)


@pytest.mark.timeout(90)
async def test_losing_the_database_mid_run(
    team: TeamDb, tmp_path: Path, vendor: tuple[FakeVendor, str]
) -> None:
    fake, url = vendor
    alice = await start(team, "alice", tmp_path, url)
    try:
        fake.inject(DEVSTRAL, *(Fault(text=GOOD) for _ in range(3)))
        assert not isinstance(await fix(alice, "0/mod.py"), Exception)
        await until(lambda: team.sql("SELECT count(*) FROM ace.runs") == [(1,)], "the first row")

        team.cluster.stop()
        seen = await budget(alice)
        assert seen["ledger"] == "offline" and seen["offline"]["allowanceUsd"] > 0
        assert "does not answer" in seen["offline"]["reason"]
        await until(
            lambda: any("offline allowance" in m.message for m in alice.client.messages),
            "the warning that the ledger is offline",
        )
        # fixes go on, within the offline allowance, and their rows wait in the spool
        assert not isinstance(await fix(alice, "1/mod.py"), Exception)
        assert not isinstance(await fix(alice, "2/mod.py"), Exception)

        team.cluster.start()
        await until(
            lambda: team.sql("SELECT count(*) FROM ace.runs") == [(3,)],
            "the spooled rows replayed",
            timeout=20,
        )
        await until(
            lambda: any("answers again" in m.message for m in alice.client.messages),
            "the message that the ledger is back",
        )
        await until(lambda: alice.budgets[-1].get("ledger") == "ok", "ace/budget back to ok")
        log = (tmp_path / "alice.log").read_text()
        assert "does not answer" in log  # the outage is in the log, verbose and all...
        assert PASSWORD not in log  # ...the password is not
        assert not any(PASSWORD in m.message for m in alice.client.messages)
        assert PASSWORD not in str(alice.budgets)
        assert team.sql("SELECT count(DISTINCT row_id) FROM ace.runs") == [(3,)]
        mine = (await budget(alice))["spentToday"]
        (total,) = team.sql("SELECT sum(cost_usd) FROM ace.runs")[0]
        assert mine == pytest.approx(total, abs=1e-6)
    finally:
        if not team.cluster.running():
            team.cluster.start()
        await stop(alice)


@pytest.mark.timeout(90)
async def test_titles_name_the_model_the_team_account_can_pay_for(
    team: TeamDb, tmp_path: Path, vendor: tuple[FakeVendor, str]
) -> None:
    """Bug: titles were routed and priced for the editor's `userId` while the call is made for
    the database role. Alice's daily budget holds one fix; after it, a title offering devstral
    (what "someone-else", who spent nothing, could still pay for) promises a call that is refused."""
    fake, url = vendor
    alice = await start(team, "alice", tmp_path, url)
    try:
        (alice.root / "0").mkdir()
        (alice.root / "0" / "mod.py").write_text(SOURCE)
        prompt, allowance, estimate = await _estimate(alice.root / "0" / "mod.py")
        # what a title's routing reserves: no code in its prompt yet, the same output allowance
        title_estimate = budgeting.estimate_cost(
            MODEL, budgeting.count_tokens((Message("user", ""),)), allowance
        )
        daily = estimate + title_estimate / 2  # one fix fits; after it, not even a title's
        alice.client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(
                settings={"ace": {"tier": "pro", "userId": "someone-else", "dailyBudget": daily}}
            )
        )
        await until(lambda: alice.budgets[-1].get("dailyLimit") == daily, "the new budget")
        fake.inject(DEVSTRAL, Fault(text=GOOD, usage=(prompt, allowance)))
        assert not isinstance(await fix(alice, "0/mod.py"), Exception)

        uri = (alice.root / "1" / "mod.py").as_uri()
        alice.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
        )
        actions = await alice.client.text_document_code_action_async(
            lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri),
                E711.range,
                lsp.CodeActionContext(diagnostics=[E711]),
            )
        )
        (action,) = [a for a in actions or [] if isinstance(a, lsp.CodeAction)]
        assert "devstral" not in action.title, action.title
        assert action.data["model"] is None and action.data["costUsd"] is None
        with pytest.raises(Exception, match="would pass alice's daily budget"):
            await alice.client.code_action_resolve_async(action)
    finally:
        await stop(alice)
