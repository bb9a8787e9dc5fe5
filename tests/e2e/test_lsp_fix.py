"""End to end: the real `ace serve` process, driven over stdio as Neovim, VS Code and Emacs are."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.e2e.conftest import (
    SERVER,
    read_code_actions_like_editors,
    ruff_diagnostics,
    server_env,
    track_budget,
    until,
)
from tests.edits import apply_edits

BROKEN = """\
import os
import sys


def mean(values):
    if values == None:
        return 0.0
    return sum(values) / len(values)


def greet(name):
    return "Hello, " + name
"""

CLIENTS = ["neovim@v0.11.0", "visual-studio-code@v1.65.2", "emacs@v29.1"]


@pytest_lsp.fixture(
    params=CLIENTS,
    config=ClientServerConfig(server_command=SERVER, server_env=server_env(Path("/tmp/ace-e2e"))),
)
async def client(request: pytest.FixtureRequest, lsp_client: LanguageClient) -> Any:
    applied: list[lsp.ApplyWorkspaceEditParams] = []

    @lsp_client.feature(lsp.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
        applied.append(params)
        return lsp.ApplyWorkspaceEditResult(applied=True)

    read_code_actions_like_editors(lsp_client)
    lsp_client.applied = applied  # type: ignore[attr-defined]
    lsp_client.profile = request.param  # type: ignore[attr-defined]
    budgets = track_budget(lsp_client)
    await lsp_client.initialize_session(
        lsp.InitializeParams(capabilities=client_capabilities(request.param))
    )
    await until(lambda: budgets, "the first ace/budget notification")  # the router is ready
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path, text: str, language: str = "python") -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, language, 1, text))
    )
    return uri


def _diagnostics(path: Path) -> list[lsp.Diagnostic]:
    from lsprotocol.converters import get_converter

    return get_converter().structure(ruff_diagnostics(path), list[lsp.Diagnostic])


async def _fix_edit(client: LanguageClient, action: lsp.CodeAction) -> list[lsp.TextEdit]:
    """Resolve the action (or run its command, as Emacs must) and return the edits it carries."""
    if action.command is not None:
        assert action.edit is None
        result = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(action.command.command, action.command.arguments)
        )
        assert result["applied"] is True
        edit = client.applied[-1].edit  # type: ignore[attr-defined]
    else:
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is not None
        edit = resolved.edit
    if edit.document_changes is not None:
        (change,) = edit.document_changes
        assert isinstance(change, lsp.TextDocumentEdit)
        assert change.text_document.version == 1  # pinned to the version that was fixed
        return list(change.edits)  # type: ignore[arg-type]
    assert edit.changes is not None
    return list(next(iter(edit.changes.values())))


async def test_quickfix_fixes_a_real_ruff_diagnostic(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "stats.py"
    path.write_text(BROKEN)
    diagnostics = _diagnostics(path)
    assert [d.code for d in diagnostics] == ["F401", "F401", "E711"]
    uri = _open(client, path, BROKEN)

    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            lsp.Range(lsp.Position(0, 0), lsp.Position(12, 0)),
            lsp.CodeActionContext(diagnostics=diagnostics),
        )
    )
    assert actions is not None
    titles = [a.title for a in actions if isinstance(a, lsp.CodeAction)]
    assert titles == [
        "Fix with ACE · local · free: `os` imported but unused",
        "Fix with ACE · local · free: `sys` imported but unused",
        "Fix with ACE · local · free: Comparison to `None` should be `cond is None`",
        "Fix all with ACE (3 diagnostics) · local · free",
    ]
    assert all(isinstance(a, lsp.CodeAction) and a.edit is None for a in actions)
    e711 = actions[2]
    assert isinstance(e711, lsp.CodeAction)
    edits = await _fix_edit(client, e711)

    fixed = apply_edits(BROKEN, edits)
    assert "if values is None:" in fixed
    assert "import os" in fixed  # only the chosen diagnostic was fixed
    ast.parse(fixed)
    path.write_text(fixed)
    assert [d.code for d in _diagnostics(path)] == ["F401", "F401"]


async def test_fix_all_fixes_every_diagnostic(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "stats.py"
    path.write_text(BROKEN)
    uri = _open(client, path, BROKEN)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
            lsp.CodeActionContext(diagnostics=_diagnostics(path), only=["source.fixAll"]),
        )
    )
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert isinstance(action, lsp.CodeAction) and action.kind == "source.fixAll.ace"
    fixed = apply_edits(BROKEN, await _fix_edit(client, action))
    ast.parse(fixed)
    path.write_text(fixed)
    assert _diagnostics(path) == []


async def test_unfixable_diagnostic_fails_with_a_reason(
    client: LanguageClient, tmp_path: Path
) -> None:
    path = tmp_path / "app.js"
    text = "function f() {\n  return x\n}\n"
    uri = _open(client, path, text, language="javascript")
    diag = lsp.Diagnostic(
        range=lsp.Range(lsp.Position(1, 9), lsp.Position(1, 10)),
        message="'x' is not defined.",
        code="no-undef",
        source="eslint",
    )
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            diag.range,
            lsp.CodeActionContext(diagnostics=[diag]),
        )
    )
    assert actions is not None and len(actions) == 1
    action = actions[0]
    assert isinstance(action, lsp.CodeAction)
    with pytest.raises(Exception, match="only fixes Python, not javascript") as info:
        if action.command is not None:
            await client.workspace_execute_command_async(
                lsp.ExecuteCommandParams(action.command.command, action.command.arguments)
            )
        else:
            await client.code_action_resolve_async(action)
    assert "Traceback" not in str(info.value)
    assert client.applied == []  # type: ignore[attr-defined]
    for _ in range(100):  # the showMessage notification may trail the error response
        if client.messages:
            break
        await asyncio.sleep(0.01)
    assert any("only fixes Python" in m.message for m in client.messages)


async def test_stale_action_is_refused(client: LanguageClient, tmp_path: Path) -> None:
    path = tmp_path / "stats.py"
    path.write_text(BROKEN)
    uri = _open(client, path, BROKEN)
    diagnostics = _diagnostics(path)
    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            lsp.TextDocumentIdentifier(uri),
            diagnostics[0].range,
            lsp.CodeActionContext(diagnostics=diagnostics[:1]),
        )
    )
    assert actions is not None
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=2, uri=uri),
            [lsp.TextDocumentContentChangeWholeDocument(text="# moved on\n" + BROKEN)],
        )
    )
    action = actions[0]
    assert isinstance(action, lsp.CodeAction)
    with pytest.raises(Exception, match="document changed since ACE offered this fix"):
        if action.command is not None:
            await client.workspace_execute_command_async(
                lsp.ExecuteCommandParams(action.command.command, action.command.arguments)
            )
        else:
            await client.code_action_resolve_async(action)


async def test_a_listing_right_after_start_names_the_model_and_cost(tmp_path: Path) -> None:
    """An editor asks for code actions as soon as a file opens; the orchestrator may still be
    opening then. The first listing waits for it (a moment, once) instead of leaving the model
    and cost out of its titles."""
    from pytest_lsp.client import make_test_lsp_client

    client = make_test_lsp_client()
    read_code_actions_like_editors(client)
    await client.start_io(*SERVER, env=server_env(tmp_path / "home"))
    try:
        await client.initialize_session(
            lsp.InitializeParams(capabilities=client_capabilities("neovim"))
        )
        path = tmp_path / "stats.py"
        path.write_text(BROKEN)
        uri = _open(client, path, BROKEN)  # no wait for ace/budget: straight after initialized
        actions = await client.text_document_code_action_async(
            lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri),
                lsp.Range(lsp.Position(0, 0), lsp.Position(12, 0)),
                lsp.CodeActionContext(diagnostics=_diagnostics(path)),
            )
        )
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 10)
        finally:
            await client.stop()
    titles = [a.title for a in actions or [] if isinstance(a, lsp.CodeAction)]
    assert titles and all(" · local · free" in t for t in titles), titles
