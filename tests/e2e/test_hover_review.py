"""End to end: hover review and the `ace.review` command in the real server process, driven as
Neovim, VS Code and Emacs are, with Claude played by the fake Anthropic API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.e2e.conftest import SERVER, server_env
from tests.edits import apply_edits
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.harness import FakeVendor, Fault, serve

SONNET = "claude-3-5-sonnet-20241022"
CLIENTS = ["neovim@v0.11.0", "visual-studio-code@v1.65.2", "emacs@v29.1"]
REQUEST_CANCELLED = -32800

STATS = """\
import os


def mean(values):
    if values == None:
        return 0.0
    return sum(values) / len(values)  # ∅ → 💥


class Greeter:
    def greet(self, name):
        return "Hello, " + name
"""
MEAN = lsp.Position(5, 8)  # inside `mean` (0-based line 5: "return 0.0")
GREET = lsp.Position(11, 10)
PATCH = (
    "--- a/stats.py\n+++ b/stats.py\n@@ -5,1 +5,1 @@\n"
    "-    if values == None:\n+    if values is None:\n"
)
FINDINGS = [
    {"line": 5, "severity": "warning", "message": "Compare to None with `is`.", "patch": PATCH},
    {"line": 7, "severity": "error", "message": "Divides by zero on an empty list."},
    {"line": 4, "end_line": 7, "severity": "info", "message": "Add a docstring."},
    {"line": 4, "severity": "hint", "message": "`average` would say more."},
]
REVIEW = "Two problems.\n```json\n" + json.dumps({"findings": FINDINGS}) + "\n```\n"
# (0-based start line, end line, LSP severity, message) of the published diagnostics
EXPECTED = {
    (4, 4, lsp.DiagnosticSeverity.Warning, "Compare to None with `is`."),
    (6, 6, lsp.DiagnosticSeverity.Error, "Divides by zero on an empty list."),
    (3, 6, lsp.DiagnosticSeverity.Information, "Add a docstring."),
    (3, 3, lsp.DiagnosticSeverity.Hint, "`average` would say more."),
}


class DisconnectWatch:
    """ASGI middleware: notes when a client hangs up before its response is complete."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.disconnects: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: list[Any] = []
        while True:
            message = await receive()
            body.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        done = False

        async def replay() -> Any:
            return body.pop(0) if body else await receive()

        async def sending(message: Any) -> None:
            nonlocal done
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done = True
            await send(message)

        async def watch() -> None:
            # after the body, uvicorn's receive() returns only on hang-up or a complete response
            if (await receive())["type"] == "http.disconnect" and not done:
                self.disconnects.append(time.monotonic())

        watcher = asyncio.ensure_future(watch())
        try:
            await self.app(scope, replay, sending)
        finally:
            watcher.cancel()


@dataclass
class Fake:
    app: Any
    watch: DisconnectWatch
    url: str

    @property
    def vendor(self) -> FakeVendor:
        vendor: FakeVendor = self.app.state.vendor
        return vendor


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    app = fake_anthropic.create_app()
    watch = DisconnectWatch(app)
    with serve(watch) as url:  # type: ignore[arg-type]
        yield Fake(app, watch, url)


@dataclass
class Session:
    client: LanguageClient
    fake: Fake
    home: Path
    encoding: str
    profile: str


Start = Callable[..., Awaitable[Session]]


@pytest.fixture(params=CLIENTS)
async def start(request: pytest.FixtureRequest, fake: Fake, tmp_path: Path) -> AsyncIterator[Start]:
    """Start the real server as one editor, with `ace` settings given as initializationOptions."""
    fake.app.state.vendor = FakeVendor()
    fake.watch.disconnects.clear()
    clients: list[LanguageClient] = []

    async def launch(**settings: Any) -> Session:
        home = tmp_path / "home"
        env = {
            **server_env(home),
            "ANTHROPIC_API_KEY": fake_anthropic.API_KEY,
            "ACE_ANTHROPIC_BASE_URL": fake.url,
        }
        client = await ClientServerConfig(server_command=SERVER, server_env=env).start()
        clients.append(client)
        applied: list[lsp.ApplyWorkspaceEditParams] = []

        @client.feature(lsp.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            applied.append(params)
            return lsp.ApplyWorkspaceEditResult(applied=True)

        # As in test_lsp_fix: tell a CodeAction carrying a command from a bare Command by the
        # type of `command`, as editors do (lsprotocol 2025.0.0 reads both as Command).
        converter = client.protocol._converter

        def code_action_or_command(obj: Any, _: type) -> lsp.Command | lsp.CodeAction:
            if isinstance(obj.get("command"), str):
                return converter.structure(obj, lsp.Command)
            return converter.structure(obj, lsp.CodeAction)

        converter.register_structure_hook(lsp.Command | lsp.CodeAction, code_action_or_command)
        result = await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities(request.param),
                initialization_options={"tier": "pro", **settings},
            )
        )
        encoding = str(result.capabilities.position_encoding or "utf-16")
        return Session(client, fake, home, encoding, request.param)

    yield launch
    for client in clients:
        await client.shutdown_session()
        await client.stop()


def _open(s: Session, path: Path, text: str = STATS) -> str:
    path.write_text(text)
    uri = path.as_uri()
    s.client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text))
    )
    return uri


def _change(s: Session, uri: str, version: int, text: str) -> None:
    s.client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


async def _hover(s: Session, uri: str, pos: lsp.Position) -> lsp.Hover | None:
    return await s.client.text_document_hover_async(
        lsp.HoverParams(lsp.TextDocumentIdentifier(uri), pos)
    )


async def _review(s: Session, uri: str, pos: lsp.Position) -> Any:
    at = {"line": pos.line, "character": pos.character}
    arg = {"uri": uri, "range": {"start": at, "end": at}}
    return await s.client.workspace_execute_command_async(
        lsp.ExecuteCommandParams("ace.review", [arg])
    )


async def _until(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


async def _diagnostics(s: Session, uri: str, expected: int) -> list[lsp.Diagnostic]:
    found = await _until(
        lambda: (d := s.client.diagnostics.get(uri)) is not None and len(d) == expected and d,
        f"{expected} diagnostics for {uri}",
    )
    return list(found)


def _seen(diagnostics: list[lsp.Diagnostic], shift: int = 0) -> set[tuple[Any, ...]]:
    return {
        (d.range.start.line - shift, d.range.end.line - shift, d.severity, d.message)
        for d in diagnostics
    }


def _line_length(line: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(line.encode("utf-8"))
    if encoding == "utf-32":
        return len(line)
    return len(line.encode("utf-16-le")) // 2


def _ledger(home: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(home / "ledger.sqlite3") as db:
            return db.execute("SELECT model, outcome FROM llm_runs ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []


async def test_hover_off_shows_nothing(start: Start, tmp_path: Path) -> None:
    s = await start(hoverReview="off")
    uri = _open(s, tmp_path / "stats.py")
    assert await _hover(s, uri, MEAN) is None
    assert s.fake.vendor.requests == []


async def test_review_command_publishes_then_cached_hover_shows_it(
    start: Start, tmp_path: Path
) -> None:
    s = await start()  # hoverReview defaults to "cached"
    s.fake.vendor.inject(SONNET, Fault(text=REVIEW))
    uri = _open(s, tmp_path / "stats.py")

    assert await _hover(s, uri, MEAN) is None  # nothing cached yet, and no model asked
    assert s.fake.vendor.requests == []

    summary = await _review(s, uri, MEAN)
    assert summary["model"] == "claude-3-5-sonnet"
    assert summary["costUsd"] > 0
    assert summary["cached"] is False
    assert [
        (f["line"], f["endLine"], f["severity"], f["hasPatch"]) for f in summary["findings"]
    ] == [
        (5, 5, "warning", True),
        (7, 7, "error", False),
        (4, 7, "info", False),
        (4, 4, "hint", False),
    ]
    assert len(s.fake.vendor.requests) == 1

    diagnostics = await _diagnostics(s, uri, 4)
    assert _seen(diagnostics) == EXPECTED
    assert {(d.source, d.code) for d in diagnostics} == {("ace", "ace-review")}
    error = next(d for d in diagnostics if d.severity == lsp.DiagnosticSeverity.Error)
    line = STATS.splitlines()[6]
    assert error.range.start.character == 4  # the first non-blank character
    assert error.range.end.character == _line_length(line, s.encoding)

    hover = await _hover(s, uri, MEAN)
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    text = hover.contents.value
    assert text.startswith("### ACE review: function `mean`")
    assert "- **error** line 7: Divides by zero on an empty list." in text
    assert "- **info** line 4\N{EN DASH}7: Add a docstring." in text
    assert "_claude-3-5-sonnet · $" in text
    assert hover.range is not None
    assert (hover.range.start.line, hover.range.end.line) == (3, 6)
    assert len(s.fake.vendor.requests) == 1  # the hover called no model

    # The finding's patch is a quick fix carrying its edit, pinned to version 1.
    fixed = await _review_fix(s, uri, 4, version=1)
    assert fixed is not None and apply_edits(STATS, fixed) == STATS.replace("== None", "is None")

    # Two lines above move the function: the same review follows it, no model call.
    moved = "# stats\n# helpers\n" + STATS
    _change(s, uri, 2, moved)
    assert await _review_fix(s, uri, 6, version=2) is None  # made for version 1: not offered
    hover = await _hover(s, uri, lsp.Position(MEAN.line + 2, MEAN.character))
    assert hover is not None and hover.range is not None and hover.range.start.line == 5
    assert isinstance(hover.contents, lsp.MarkupContent)
    assert "- **error** line 9: Divides by zero" in hover.contents.value
    assert _seen(await _until(lambda: _shifted(s, uri), "shifted diagnostics"), 2) == EXPECTED
    assert len(s.fake.vendor.requests) == 1
    fixed = await _review_fix(s, uri, 6, version=2)  # checked again for version 2 by the hover
    assert fixed is not None and apply_edits(moved, fixed) == moved.replace("== None", "is None")

    # Editing the function drops its diagnostics; its hover has nothing cached any more.
    edited = moved.replace("return 0.0", "return float('nan')")
    _change(s, uri, 3, edited)
    assert await _hover(s, uri, lsp.Position(MEAN.line + 2, MEAN.character)) is None
    await _until(
        lambda: (d := s.client.diagnostics.get(uri)) is not None and len(d) == 0,
        "the review's diagnostics cleared",
    )
    assert len(s.fake.vendor.requests) == 1


async def _review_fix(s: Session, uri: str, line: int, version: int) -> list[Any] | None:
    """The edits of the one "Apply ACE review fix" action on `line`, checked to be pinned to
    `version` when the client takes versioned edits; None when no such action is offered."""
    actions = await s.client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            lsp.Range(lsp.Position(line, 0), lsp.Position(line, 0)),
            lsp.CodeActionContext(diagnostics=[]),
        )
    )
    fixes = [
        a for a in actions or [] if isinstance(a, lsp.CodeAction) and a.title.startswith("Apply")
    ]
    if not fixes:
        return None
    assert [a.title for a in fixes] == ["Apply ACE review fix: Compare to None with `is`."]
    assert fixes[0].kind == lsp.CodeActionKind.QuickFix
    assert list(fixes[0].tags or ()) == [lsp.CodeActionTag.LlmGenerated]  # a model wrote it
    assert fixes[0].is_preferred is not True
    edit = fixes[0].edit
    assert edit is not None
    if edit.document_changes is not None:
        (change,) = edit.document_changes
        assert isinstance(change, lsp.TextDocumentEdit)
        assert change.text_document.version == version
        return list(change.edits)
    assert edit.changes is not None
    return list(edit.changes[uri])


def _shifted(s: Session, uri: str) -> list[lsp.Diagnostic] | None:
    found = s.client.diagnostics.get(uri)
    if found and all(d.range.start.line >= 5 for d in found):
        return list(found)
    return None


async def test_auto_hover_reviews_once_and_caches(start: Start, tmp_path: Path) -> None:
    s = await start(hoverReview="auto")
    s.fake.vendor.inject(SONNET, Fault(text=REVIEW))
    uri = _open(s, tmp_path / "stats.py")

    hover = await _hover(s, uri, MEAN)
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    assert "- **warning** line 5: Compare to None with `is`." in hover.contents.value
    assert len(s.fake.vendor.requests) == 1
    assert _seen(await _diagnostics(s, uri, 4)) == EXPECTED

    again = await _hover(s, uri, lsp.Position(4, 6))  # elsewhere in the same function
    assert again is not None and again.contents == hover.contents
    assert len(s.fake.vendor.requests) == 1

    assert await _hover(s, uri, lsp.Position(1, 0)) is None  # outside any function: no review
    assert len(s.fake.vendor.requests) == 1

    # The fake's default reply is no review: the hover says why, in one sentence.
    failed = await _hover(s, uri, GREET)
    assert failed is not None and isinstance(failed.contents, lsp.MarkupContent)
    assert failed.contents.value.startswith("ACE review failed: ")
    assert failed.contents.value.endswith(".") and "Traceback" not in failed.contents.value
    assert s.fake.vendor.requests[1].body["model"] == SONNET  # then the chain's fallbacks


# A review as models often write it when they ignore the JSON asked for: a Markdown list.
MARKDOWN_REVIEW = """\
Here is what I found in `mean`:

- **Line 5**: Compare to `None` with `is`; `==` might be overridden.
- Line 7: Crashes with ZeroDivisionError when `values` is empty.
- L11: `greet` is outside this function.

Otherwise it looks fine.
"""


async def test_a_markdown_list_review_shows_its_findings(start: Start, tmp_path: Path) -> None:
    s = await start(hoverReview="auto")
    s.fake.vendor.inject(SONNET, Fault(text=MARKDOWN_REVIEW))
    uri = _open(s, tmp_path / "stats.py")

    hover = await _hover(s, uri, MEAN)
    assert hover is not None and isinstance(hover.contents, lsp.MarkupContent)
    text = hover.contents.value
    assert text.startswith("### ACE review: function `mean`")
    assert "- **warning** line 5: Compare to `None` with `is`; `==` might be overridden." in text
    assert "- **error** line 7: Crashes with ZeroDivisionError when `values` is empty." in text
    assert "greet" not in text  # line 11 is not in the reviewed function
    assert "failed" not in text
    assert len(s.fake.vendor.requests) == 1  # the first model's reply was taken
    assert _seen(await _diagnostics(s, uri, 2)) == {
        (
            4,
            4,
            lsp.DiagnosticSeverity.Warning,
            "Compare to `None` with `is`; `==` might be overridden.",
        ),
        (
            6,
            6,
            lsp.DiagnosticSeverity.Error,
            "Crashes with ZeroDivisionError when `values` is empty.",
        ),
    }


async def test_cancelled_hover_stops_the_model_call(start: Start, tmp_path: Path) -> None:
    s = await start(hoverReview="auto")
    s.fake.vendor.inject(SONNET, Fault(text=REVIEW, delay_s=5))
    uri = _open(s, tmp_path / "stats.py")

    params = lsp.HoverParams(lsp.TextDocumentIdentifier(uri), GREET)
    pending = asyncio.ensure_future(
        s.client.protocol.send_request_async(
            lsp.TEXT_DOCUMENT_HOVER, params, msg_id="hover-to-cancel"
        )
    )
    await _until(lambda: s.fake.vendor.requests, "the model request")
    cancelled_at = time.monotonic()
    s.client.protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id="hover-to-cancel"))

    with pytest.raises(JsonRpcException) as info:
        await asyncio.wait_for(pending, 2)
    assert info.value.code == REQUEST_CANCELLED
    await _until(lambda: s.fake.watch.disconnects, "the HTTP call to be closed", timeout=1.0)
    assert s.fake.watch.disconnects[0] - cancelled_at < 1.0
    rows = await _until(
        lambda: ("claude-3-5-sonnet", "cancelled") in _ledger(s.home) and _ledger(s.home),
        "the ledger's cancelled row",
        timeout=1.0,
    )
    assert rows == [("claude-3-5-sonnet", "cancelled")]
    # A round trip after the cancel: anything the server sent before it has arrived.
    await s.client.workspace_execute_command_async(lsp.ExecuteCommandParams("ace.budget"))
    assert uri not in s.client.diagnostics  # nothing was published
    assert len(s.fake.vendor.requests) == 1


async def test_review_failure_is_one_sentence(start: Start, tmp_path: Path) -> None:
    s = await start()
    s.fake.vendor.inject(SONNET, *[Fault(text="I would rewrite this.")] * 3)
    uri = _open(s, tmp_path / "stats.py")
    with pytest.raises(JsonRpcException) as info:
        await _review(s, uri, MEAN)
    message = info.value.message
    assert "Traceback" not in message and message.endswith(".")
    await _until(lambda: s.client.messages, "the showMessage")
    assert any(m.message.startswith("ACE: ") for m in s.client.messages)
    assert uri not in s.client.diagnostics
