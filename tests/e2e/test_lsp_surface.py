"""End to end against the real `ace serve`: budget display, settings, progress, cancellation, fixes
without diagnostics, selections, bad input, and the server's life."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
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
from tests.edits import apply_edits
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY as MISTRAL_KEY

VSCODE = "visual-studio-code@v1.65.2"
NEOVIM = "neovim@v0.11.0"
SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
E711 = lsp.Diagnostic(
    range=lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)
GOOD = (
    "```diff\n--- a/mod.py\n+++ b/mod.py\n@@ -5,1 +5,1 @@\n"
    "-    if x == None:\n+    if x is None:\n```\n"
)
DEVSTRAL = "devstral-small-2505"

Start = Callable[..., Awaitable[tuple[LanguageClient, list[dict[str, Any]]]]]


@pytest.fixture(scope="module")
def mistral() -> Iterator[tuple[FakeVendor, dict[str, str]]]:
    vendor = FakeVendor()
    with serve(mistral_app(vendor)) as url:
        yield vendor, {"MISTRAL_API_KEY": MISTRAL_KEY, "ACE_MISTRAL_BASE_URL": f"{url}/v1"}


@pytest_asyncio.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    clients: list[LanguageClient] = []

    async def _start(
        profile: str = VSCODE,
        env: dict[str, str] | None = None,
        init: dict[str, Any] | None = None,
        configuration: dict[str, Any] | None = None,
    ) -> tuple[LanguageClient, list[dict[str, Any]]]:
        client = make_test_lsp_client()
        read_code_actions_like_editors(client)
        budgets = track_budget(client)
        if configuration is not None:
            client.set_configuration(configuration)
        await client.start_io(*SERVER, env={**server_env(tmp_path / "home"), **(env or {})})
        clients.append(client)
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities(profile),
                initialization_options=init,
                process_id=os.getpid(),
            )
        )
        await until(lambda: budgets, "the first ace/budget notification")
        return client, budgets

    yield _start
    for client in clients:
        try:
            await asyncio.wait_for(client.shutdown_session(), 5)
        finally:
            await client.stop()


def _open(client: LanguageClient, path: Path, text: str, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, language, 1, text))
    )
    return uri


def _params(uri: str, rng: lsp.Range, diagnostics: list[lsp.Diagnostic]) -> lsp.CodeActionParams:
    return lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), rng, lsp.CodeActionContext(diagnostics=diagnostics)
    )


async def _actions(client: LanguageClient, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    actions = await client.text_document_code_action_async(params) or []
    return [a for a in actions if isinstance(a, lsp.CodeAction)]


def _edits(edit: lsp.WorkspaceEdit | None) -> list[lsp.TextEdit]:
    assert edit is not None
    if edit.changes is not None:  # a client without documentChanges (Neovim's recorded profile)
        (edits,) = edit.changes.values()
        return list(edits)
    assert edit.document_changes is not None
    (change,) = edit.document_changes
    assert isinstance(change, lsp.TextDocumentEdit)
    return list(change.edits)  # type: ignore[arg-type]


async def test_budget_is_notified_and_answered(start: Start) -> None:
    client, budgets = await start(init={"tier": "pro", "userId": "ana", "dailyBudget": 2})
    first = budgets[0]
    assert first == {
        "tier": "pro",
        "user": "ana",
        "spentToday": 0,
        "dailyLimit": 2.0,
        "spentMonth": 0,
        "monthlyLimit": 50.0,
        "lastCall": None,
        "ledger": "ok",
    }
    answer = await client.workspace_execute_command_async(
        lsp.ExecuteCommandParams("ace.budget", [])
    )
    assert plain(answer) == first


async def test_configuration_wins_and_changes_apply_without_restart(start: Start) -> None:
    client, budgets = await start(
        init={"tier": "pro", "hoverReview": "sideways"},
        configuration={"ace": {"tier": "ultimate", "userId": "bo"}},
    )
    await until(lambda: any(b["tier"] == "ultimate" for b in budgets), "the configured tier")
    warnings = [m.message for m in client.messages if "hoverReview" in m.message]
    assert warnings == [
        "ACE setting 'hoverReview' is invalid (Input should be 'off', 'cached' or 'auto'); using its default."
    ]
    client.set_configuration({"ace": {"tier": "free", "userId": "bo", "apiKey": "sk-nope"}})
    client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings=None))
    latest = await until(
        lambda: budgets[-1] if budgets[-1]["tier"] == "free" else None, "tier free"
    )
    assert latest["user"] == "bo" and latest["dailyLimit"] == 0.5
    await until(lambda: any("apiKey" in m.message for m in client.messages), "the key warning")
    assert all("sk-nope" not in m.message for m in client.messages)
    # reported once: the same invalid init option is not repeated on the change
    assert len([m for m in client.messages if "hoverReview" in m.message]) == 1


async def test_progress_while_a_model_works(
    start: Start, tmp_path: Path, mistral: tuple[FakeVendor, dict[str, str]]
) -> None:
    vendor, env = mistral
    vendor.inject(DEVSTRAL, Fault(text=GOOD, delay_s=0.3))
    client, budgets = await start(env=env)
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    (action, *_) = await _actions(client, _params(uri, E711.range, [E711]))
    assert action.title.startswith("Fix with ACE · devstral-small · ~$0.0")
    resolved = await client.code_action_resolve_async(action)
    assert apply_edits(SOURCE, _edits(resolved.edit)) == SOURCE.replace("x == None", "x is None")
    (reports,) = client.progress_reports.values()
    kinds = [type(r).__name__ for r in reports]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert reports[0].title == "Fix with ACE"
    messages = [getattr(r, "message", "") or "" for r in reports]
    assert any(m.startswith("devstral-small (attempt 1 of ") for m in messages)
    assert reports[-1].message == "done"
    last = await until(lambda: budgets[-1]["lastCall"], "a budget with the last call")
    assert last["model"] == "devstral-small" and last["costUsd"] > 0 and last["latencyMs"] >= 300


@pytest.mark.parametrize("how", ["cancelRequest", "progressCancel"])
async def test_cancelling_a_fix_stops_the_http_call(
    start: Start, tmp_path: Path, mistral: tuple[FakeVendor, dict[str, str]], how: str
) -> None:
    vendor, env = mistral
    vendor.inject(DEVSTRAL, Fault(text=GOOD, delay_s=20))
    seen = len(vendor.requests)
    client, _ = await start(env=env)
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    (action, *_) = await _actions(client, _params(uri, E711.range, [E711]))
    future = asyncio.ensure_future(client.protocol.send_request_async("codeAction/resolve", action))
    await until(lambda: len(vendor.requests) > seen, "the model call to reach the fake")
    t0 = time.perf_counter()
    if how == "cancelRequest":
        (msg_id,) = [k for k, f in client.protocol._request_futures.items() if not f.done()]
        client.protocol.notify("$/cancelRequest", lsp.CancelParams(id=msg_id))
    else:
        token = await until(lambda: next(iter(client.progress_reports), None), "a progress token")
        client.protocol.notify(
            "window/workDoneProgress/cancel", lsp.WorkDoneProgressCancelParams(token=token)
        )
    with pytest.raises(Exception, match="cancel"):
        await future
    elapsed_ms = (time.perf_counter() - t0) * 1000
    print(f"\n{how}: error answer {elapsed_ms:.1f} ms after the cancel")
    assert elapsed_ms < 1000
    home = tmp_path / "home"
    outcomes = await until(lambda: _cancelled_rows(home), "a cancelled row in the ledger")
    assert outcomes == ["cancelled"]


def _cancelled_rows(home: Path) -> list[str]:
    """The ledger's outcomes once a cancelled row is there (the server writes it within ~50 ms)."""
    db = home / "ledger.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = [r[0] for r in conn.execute("SELECT outcome FROM llm_runs")]
    return rows if "cancelled" in rows else []


async def test_fix_on_a_line_without_diagnostics(start: Start, tmp_path: Path) -> None:
    """Emacs eglot and Neovim send only their own diagnostics: ACE still offers a fix."""
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["F", "E7"]\n')  # the project's rules
    client, _ = await start(profile=NEOVIM)
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    line = lsp.Range(lsp.Position(4, 0), lsp.Position(4, 0))
    (action,) = await _actions(client, _params(uri, line, []))
    assert action.title == "Fix with ACE · local · free: line 5"
    resolved = await client.code_action_resolve_async(action)
    assert apply_edits(SOURCE, _edits(resolved.edit)) == SOURCE.replace("x == None", "x is None")


async def test_selection_offers_improve_and_review_when_a_model_can(
    start: Start, tmp_path: Path, mistral: tuple[FakeVendor, dict[str, str]]
) -> None:
    selection = lsp.Range(lsp.Position(3, 0), lsp.Position(6, 12))
    offline, _ = await start()
    uri = _open(offline, tmp_path / "mod.py", SOURCE)
    kinds = {a.kind for a in await _actions(offline, _params(uri, selection, []))}
    assert kinds == {"quickfix"}  # offline no model can refactor or review: not offered
    _, env = mistral
    client, _ = await start(env=env, init={"tier": "pro"})
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    by_kind = {a.kind: a for a in await _actions(client, _params(uri, selection, []))}
    assert by_kind["refactor.rewrite"].title.startswith("Improve with ACE · devstral-small · ~$")
    review = by_kind["refactor.review.ace"]
    assert review.title.startswith("Review with ACE · codestral · ~$")
    assert review.command is not None and review.command.command == "ace.review"


async def test_the_prompt_carries_what_the_diagnostic_knows_and_actions_are_marked(
    start: Start, tmp_path: Path, mistral: tuple[FakeVendor, dict[str, str]]
) -> None:
    """Issue 14 §5: code, rule page, related places (lines quoted from this file only) and data
    reach the model; every ACE action is tagged LLM-generated and none is preferred."""
    vendor, env = mistral
    vendor.inject(DEVSTRAL, Fault(text=GOOD))
    client, _ = await start(env=env, init={"tier": "pro"})
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    other = (tmp_path / "other.py").as_uri()
    first_line = lsp.Range(lsp.Position(0, 0), lsp.Position(0, 9))
    href = "https://docs.astral.sh/ruff/rules/none-comparison"
    rich = lsp.Diagnostic(
        range=E711.range,
        message=E711.message,
        code="E711",
        source="Ruff",
        code_description=lsp.CodeDescription(href),
        related_information=[
            lsp.DiagnosticRelatedInformation(lsp.Location(uri, first_line), "`os` imported here"),
            lsp.DiagnosticRelatedInformation(lsp.Location(other, first_line), "compared there"),
        ],
        data={"noqa_row": 5, "fix": {"applicability": "unsafe"}},
    )
    unused = lsp.Diagnostic(first_line, "`os` imported but unused", code="F401", source="Ruff")
    listed = await _actions(client, _params(uri, E711.range, [rich, unused]))
    selection = lsp.Range(lsp.Position(3, 0), lsp.Position(6, 12))
    listed += await _actions(client, _params(uri, selection, []))
    assert sorted({str(a.kind) for a in listed}) == [
        "quickfix",
        "refactor.review.ace",
        "refactor.rewrite",
        "source.fixAll.ace",
    ]
    for action in listed:
        assert list(action.tags or ()) == [lsp.CodeActionTag.LlmGenerated], action.title
        assert action.is_preferred is not True, action.title

    before = len(vendor.requests)
    resolved = await client.code_action_resolve_async(listed[0])  # "Fix with ACE" on `rich`
    assert apply_edits(SOURCE, _edits(resolved.edit)) == SOURCE.replace("x == None", "x is None")
    assert len(vendor.requests) == before + 1
    prompt = vendor.requests[-1].body["messages"][-1]["content"]
    listing = prompt.split("Diagnostics to fix:\n", 1)[1].split("\nYou may change", 1)[0]
    assert listing.splitlines() == [
        "- line 5: [Ruff E711] Comparison to `None` should be `cond is None`",
        f"  rule documentation: {href}",
        "  related, line 1: `os` imported here",
        "    1 | import os",  # the line, quoted from this file
        "  related, other.py line 1: compared there",  # another file's: named, not quoted
        '  data: {"noqa_row":5,"fix":{"applicability":"unsafe"}}',
    ]


async def test_bad_input_gets_errors_and_the_server_stays_up(start: Start, tmp_path: Path) -> None:
    client, _ = await start(profile=NEOVIM)
    big = _open(client, tmp_path / "big.py", "x = 1\n" * 600_000)  # 3.6 MB
    binary = _open(client, tmp_path / "bin.py", "a = 1\x00\n")
    odd = _open(client, tmp_path / "notes.xyz", "some text\n", language="plaintext")
    far = lsp.Range(lsp.Position(99_999, 5), lsp.Position(100_000, 0))
    for uri, reason in (
        (big, "larger than 2 MB"),
        (binary, "looks binary"),
        (odd, "only fixes Python"),
    ):
        diag = lsp.Diagnostic(
            range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 1)), message="m", code="E1"
        )
        (action,) = await _actions(client, _params(uri, diag.range, [diag]))
        with pytest.raises(Exception, match=reason):
            await client.code_action_resolve_async(action)
    assert await _actions(client, _params(odd, far, [])) is not None  # clamped, no crash
    with pytest.raises(Exception, match="cannot read the params of textDocument/codeAction"):
        await _raw(client, "textDocument/codeAction", {"textDocument": 5, "range": "here"})
    with pytest.raises(Exception, match=r"not found|Method"):
        await _raw(client, "ace/nonsense", {})
    good = _open(client, tmp_path / "mod.py", SOURCE)
    (action, *_) = await _actions(client, _params(good, E711.range, [E711]))
    assert (await client.code_action_resolve_async(action)).edit is not None  # still serving


async def _raw(client: LanguageClient, method: str, params: Any) -> Any:
    """Send a request the typed client would refuse to serialize; wait for the answer."""
    from concurrent.futures import Future

    msg_id = f"raw-{time.monotonic_ns()}"
    future: Future[Any] = Future()
    client.protocol._request_futures[msg_id] = future
    client.protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 10)


def test_exits_by_itself_when_the_editor_dies(tmp_path: Path) -> None:
    editor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    server = subprocess.Popen(
        SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=server_env(tmp_path / "home")
    )
    assert server.stdin is not None

    def send(obj: dict[str, Any]) -> None:
        import json

        body = json.dumps(obj).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # type: ignore[union-attr]
        server.stdin.flush()  # type: ignore[union-attr]

    send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"processId": editor.pid, "capabilities": {}},
        }
    )
    send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    time.sleep(0.5)
    assert server.poll() is None
    editor.kill()
    editor.wait()
    t0 = time.monotonic()
    try:
        code = server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    print(f"\nexited {time.monotonic() - t0:.1f} s after the editor died")
    assert code == 0


async def test_prefetch_makes_picking_the_fix_instant(
    start: Start, tmp_path: Path, mistral: tuple[FakeVendor, dict[str, str]]
) -> None:
    vendor, env = mistral
    vendor.inject(DEVSTRAL, Fault(text=GOOD, delay_s=0.2))
    client, budgets = await start(env=env, init={"prefetch": True, "tier": "pro"})
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    before = len(vendor.requests)
    (action, *_) = await _actions(client, _params(uri, E711.range, [E711]))
    await until(lambda: budgets[-1]["lastCall"], "the prefetch to finish")
    assert len(vendor.requests) == before + 1
    assert vendor.requests[-1].body["model"] == DEVSTRAL
    t0 = time.perf_counter()
    resolved = await client.code_action_resolve_async(action)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    assert apply_edits(SOURCE, _edits(resolved.edit)) == SOURCE.replace("x == None", "x is None")
    assert len(vendor.requests) == before + 1  # served by the prefetch, no second call
    print(f"\nresolve after prefetch: {elapsed_ms:.1f} ms (the model took >= 200 ms)")
    assert elapsed_ms < 200


async def test_models_and_usage_commands(start: Start, tmp_path: Path) -> None:
    client, _ = await start(init={"userId": "ana"})
    models = plain(
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams("ace.models", []))
    )
    by_id = {m["id"]: m for m in models}
    assert len(by_id) == 14 and by_id["local"]["available"] and not by_id["gpt-4o"]["available"]
    uri = _open(client, tmp_path / "mod.py", SOURCE)
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E7"]\n')
    (action, *_) = await _actions(client, _params(uri, E711.range, [E711]))
    await client.code_action_resolve_async(action)
    usage = plain(
        await client.workspace_execute_command_async(lsp.ExecuteCommandParams("ace.usage", []))
    )
    assert usage["user"] == "ana" and usage["today"]["limit_usd"] == 0.5
    (line,) = usage["by_model_task"]
    assert (line["model"], line["task"], line["calls"], line["ok"]) == ("local", "AUTO_FIX", 1, 1)
