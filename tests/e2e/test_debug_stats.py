"""End to end against the real `ace serve`: `ace/debugStats` answers sane figures, and a burst of
fixes leaves no asyncio task, request future or file descriptor behind once it is answered."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from tests.e2e.conftest import (
    SERVER,
    plain,
    read_code_actions_like_editors,
    server_env,
    track_budget,
    until,
)

SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
E711 = lsp.Diagnostic(
    range=lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)
BURST = 24


@pytest_asyncio.fixture
async def client(tmp_path: Path) -> AsyncIterator[LanguageClient]:
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E7"]\n')
    client = make_test_lsp_client()
    read_code_actions_like_editors(client)
    budgets = track_budget(client)
    await client.start_io(*SERVER, env=server_env(tmp_path / "home"))
    try:
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities("visual-studio-code@v1.65.2"),
                process_id=os.getpid(),  # the parent watch: one long-lived task, counted at idle
            )
        )
        # `initialized` has pulled the settings and published the budget: startup work is done
        await until(lambda: budgets, "the first ace/budget notification")
        yield client
        await asyncio.wait_for(client.shutdown_session(), 5)
    finally:
        await client.stop()


async def _stats(client: LanguageClient) -> dict[str, Any]:
    got = plain(await client.protocol.send_request_async("ace/debugStats", None))
    assert isinstance(got, dict)
    return got


async def _fix(client: LanguageClient, path: Path) -> None:
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
    )
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), E711.range, lsp.CodeActionContext(diagnostics=[E711])
    )
    actions = await client.text_document_code_action_async(params) or []
    (action, *_) = [a for a in actions if isinstance(a, lsp.CodeAction)]
    resolved = await client.code_action_resolve_async(action)
    assert resolved.edit is not None


async def _settled(client: LanguageClient) -> dict[str, Any]:
    """The stats once two answers in a row agree on tasks, futures and fds (work has drained)."""
    keys = ("tasks_pending", "request_futures", "open_fds")
    last: dict[str, Any] = {}

    async def same() -> dict[str, Any] | None:
        nonlocal last
        now = await _stats(client)
        agreed = all(now[k] == last.get(k) for k in keys)
        last = now
        return now if agreed else None

    deadline = asyncio.get_running_loop().time() + 10
    while (got := await same()) is None:
        assert asyncio.get_running_loop().time() < deadline, f"never settled: {last}"
        await asyncio.sleep(0.05)
    return got


async def test_debug_stats_are_sane(client: LanguageClient) -> None:
    stats = await _settled(client)
    assert set(stats) == {"rss_bytes", "open_fds", "tasks_pending", "request_futures", "threads"}
    assert 10 * 2**20 < stats["rss_bytes"] < 2 * 2**30
    assert 3 <= stats["open_fds"] < 200  # stdio at least
    assert stats["tasks_pending"] >= 1  # pygls' reader, at least; this request's own not counted
    assert stats["request_futures"] == 0  # this request's own not counted, `initialized`'s gone
    assert stats["threads"] >= 1


async def test_a_burst_of_fixes_leaves_nothing_pending(
    client: LanguageClient, tmp_path: Path
) -> None:
    await _fix(client, tmp_path / "warm.py")  # the orchestrator, ledger and their own tasks
    idle = await _settled(client)
    budget = lsp.ExecuteCommandParams("ace.budget", [])
    await asyncio.gather(
        *(_fix(client, tmp_path / f"mod{n}.py") for n in range(BURST)),
        *(client.workspace_execute_command_async(budget) for _ in range(BURST)),
    )
    # the ledger writes its rows a moment after the answers: poll until back to the idle level
    deadline = asyncio.get_running_loop().time() + 10
    while (after := await _settled(client))["tasks_pending"] != idle["tasks_pending"]:
        assert asyncio.get_running_loop().time() < deadline, f"idle {idle}, after {after}"
        await asyncio.sleep(0.05)
    # pygls kept each command's task (and its result) here for ever, before AceProtocol's repair
    assert after["request_futures"] == 0
    assert after["open_fds"] <= idle["open_fds"], f"idle {idle}, after {after}"
    print(f"\nidle {idle}\nafter {BURST} fixes and {BURST} commands {after}")
