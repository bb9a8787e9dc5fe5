"""End to end: while the real server checks a fix (the patch gate, here made slow on purpose), it
goes on answering other requests and `$/cancelRequest`; a check past its time limit is refused
with a clear reason (issue 12 §3). The model is the offline `local` fixer: no keys, no fakes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from tests.e2e.conftest import read_code_actions_like_editors, server_env, track_budget, until
from tests.edits import apply_edits

SLOW_SERVER = [sys.executable, "-m", "tests.e2e.slow_gate"]
VSCODE = "visual-studio-code@v1.65.2"
SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
E711 = lsp.Diagnostic(
    range=lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)
GATE_S = 4.0  # how long each check keeps the CPU busy
PROMPT_S = 1.0  # "promptly": a listing takes milliseconds; on the event loop it would wait GATE_S

Start = Callable[..., Awaitable[LanguageClient]]


@pytest_asyncio.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    clients: list[LanguageClient] = []

    async def _start(**env: str) -> LanguageClient:
        client = make_test_lsp_client()
        read_code_actions_like_editors(client)
        budgets = track_budget(client)
        (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
        environment = {
            **server_env(tmp_path / "home"),
            "ACE_TEST_GATE_S": str(GATE_S),
            "ACE_TEST_GATE_MARK": str(tmp_path / "gate-started"),
            **env,
        }
        await client.start_io(*SLOW_SERVER, env=environment)
        clients.append(client)
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities(VSCODE),
                root_uri=tmp_path.as_uri(),
                process_id=os.getpid(),
            )
        )
        await until(lambda: budgets, "the first ace/budget notification")
        return client

    yield _start
    for client in clients:
        try:
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await client.stop()


def _open(client: LanguageClient, path: Path) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
    )
    return uri


async def _fix_action(client: LanguageClient, uri: str) -> lsp.CodeAction:
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), E711.range, lsp.CodeActionContext(diagnostics=[E711])
    )
    actions = await client.text_document_code_action_async(params) or []
    return next(a for a in actions if isinstance(a, lsp.CodeAction) and a.kind == "quickfix")


async def test_other_requests_are_answered_while_a_fix_is_checked(
    start: Start, tmp_path: Path
) -> None:
    client = await start()
    uri = _open(client, tmp_path / "mod.py")
    other = _open(client, tmp_path / "other.py")
    fix = asyncio.ensure_future(client.code_action_resolve_async(await _fix_action(client, uri)))
    await until((tmp_path / "gate-started").exists, "the patch check to begin")
    t0 = time.perf_counter()
    listed = await _fix_action(client, other)
    answered_s = time.perf_counter() - t0
    print(f"\ncodeAction on another document answered in {answered_s * 1000:.0f} ms mid-check")
    assert listed.title.startswith("Fix with ACE")
    assert answered_s < PROMPT_S
    assert not fix.done()  # the check was still running
    resolved = await fix
    assert resolved.edit is not None and resolved.edit.document_changes is not None
    (change,) = resolved.edit.document_changes
    assert isinstance(change, lsp.TextDocumentEdit)
    fixed = apply_edits(SOURCE, list(change.edits))  # type: ignore[arg-type]
    assert fixed == SOURCE.replace("x == None", "x is None")


async def test_a_fix_is_cancelled_at_once_while_it_is_checked(start: Start, tmp_path: Path) -> None:
    client = await start()
    uri = _open(client, tmp_path / "mod.py")
    action = await _fix_action(client, uri)
    future = asyncio.ensure_future(client.protocol.send_request_async("codeAction/resolve", action))
    await until((tmp_path / "gate-started").exists, "the patch check to begin")
    (msg_id,) = [k for k, f in client.protocol._request_futures.items() if not f.done()]
    t0 = time.perf_counter()
    client.protocol.notify("$/cancelRequest", lsp.CancelParams(id=msg_id))
    with pytest.raises(Exception, match="cancel"):
        await future
    answered_s = time.perf_counter() - t0
    print(f"\n$/cancelRequest answered in {answered_s * 1000:.0f} ms mid-check")
    assert answered_s < PROMPT_S


async def test_a_check_past_its_time_limit_is_refused(start: Start, tmp_path: Path) -> None:
    client = await start(ACE_TEST_CHECK_LIMIT_S="0.5")
    uri = _open(client, tmp_path / "mod.py")
    action = await _fix_action(client, uri)
    t0 = time.perf_counter()
    with pytest.raises(Exception, match=r"reply took over 0\.5 s; ACE refused it") as refused:
        await client.code_action_resolve_async(action)
    print(f"\nrefused after {(time.perf_counter() - t0) * 1000:.0f} ms: {refused.value}")
    assert time.perf_counter() - t0 < GATE_S
