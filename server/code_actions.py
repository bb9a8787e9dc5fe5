"""`textDocument/codeAction`, `codeAction/resolve` and the `ace.fix` command: "Fix with ACE".

Listing is instant and calls no model: one quickfix per diagnostic in the request (from any
source) and a `source.fixAll.ace` action when there are several. The work happens on resolve (or
on `ace.fix` for clients that cannot resolve), and the edit is pinned to the document version it
was computed for, so an editor refuses it if the text has moved on.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import converters
from lsprotocol import types as lsp
from pygls.workspace import TextDocument

from orchestrator.ace import AutoFix, ace_auto_fix
from orchestrator.errors import AceError
from orchestrator.types import CodeIssue
from server.app import AceServer, FixFailed
from server.positions import range_from_client, range_to_client

log = logging.getLogger(__name__)

FIX_ALL = "source.fixAll.ace"
COMMAND = "ace.fix"
_converter = converters.get_converter()


def _wants(only: list[str] | None, kind: str) -> bool:
    return not only or any(kind == k or kind.startswith(k + ".") for k in only)


def _can_resolve_edit(ls: AceServer) -> bool:
    caps = ls.client_capabilities.text_document
    resolve = caps.code_action.resolve_support if caps and caps.code_action else None
    return bool(resolve and "edit" in resolve.properties)


def _action(
    ls: AceServer, title: str, kind: str, diagnostics: list[lsp.Diagnostic], data: dict[str, Any]
) -> lsp.CodeAction:
    action = lsp.CodeAction(title=title, kind=kind, diagnostics=diagnostics, data=data)
    if kind == lsp.CodeActionKind.QuickFix and len(diagnostics) == 1:
        action.is_preferred = False  # a linter's own fix, where there is one, should stay first
    if not _can_resolve_edit(ls):
        action.command = lsp.Command(title=title, command=COMMAND, arguments=[data])
    return action


def list_actions(ls: AceServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    diagnostics = [d for d in params.context.diagnostics if d.source != "ace"]
    only = [str(k) for k in params.context.only] if params.context.only else None

    def data(diags: list[lsp.Diagnostic]) -> dict[str, Any]:
        return {
            "uri": doc.uri,
            "version": doc.version,
            "diagnostics": _converter.unstructure(diags),
        }

    actions: list[lsp.CodeAction] = []
    if _wants(only, lsp.CodeActionKind.QuickFix):
        for d in diagnostics:
            actions.append(
                _action(
                    ls, f"Fix with ACE: {d.message}", lsp.CodeActionKind.QuickFix, [d], data([d])
                )
            )
    if len(diagnostics) > 1 and _wants(only, FIX_ALL):
        title = f"Fix all with ACE ({len(diagnostics)} diagnostics)"
        actions.append(_action(ls, title, FIX_ALL, diagnostics, data(diagnostics)))
    return actions


def _issues(ls: AceServer, doc: TextDocument, diagnostics: list[lsp.Diagnostic]) -> list[CodeIssue]:
    lines = doc.lines
    return [
        CodeIssue(
            range=range_from_client(lines, d.range, ls.encoding),
            message=d.message,
            code=None if d.code is None else str(d.code),
            source=d.source,
            severity=None if d.severity is None else int(d.severity),
        )
        for d in diagnostics
    ]


def _workspace_edit(ls: AceServer, doc: TextDocument, fix: AutoFix) -> lsp.WorkspaceEdit:
    lines = doc.lines
    edits = [
        lsp.TextEdit(range=range_to_client(lines, e.range, ls.encoding), new_text=e.new_text)
        for e in fix.patch.edits
    ]
    caps = ls.client_capabilities.workspace
    versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
    if not versioned:
        return lsp.WorkspaceEdit(changes={doc.uri: list(edits)})
    ident = lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(ident, list(edits))])


async def fix(ls: AceServer, data: Any) -> tuple[lsp.WorkspaceEdit, AutoFix]:
    """Run the fix an action describes; raises FixFailed with a one-sentence reason."""
    try:
        uri, version = data["uri"], data["version"]
        diagnostics = _converter.structure(data["diagnostics"], list[lsp.Diagnostic])
    except (KeyError, TypeError, ValueError) as exc:
        raise FixFailed("This ACE action carries no fix data; ask for code actions again.") from exc
    doc = ls.workspace.get_text_document(uri)
    if doc.version != version:
        raise FixFailed("The document changed since ACE offered this fix; ask for it again.")
    settings = ls.settings
    try:
        result = await ace_auto_fix(
            await ls.orchestrator(),
            file_path=doc.path,
            code=doc.source,
            issues=_issues(ls, doc, diagnostics),
            risk_level=settings.risk_level,
            tier=settings.tier,
            user=settings.user_id,
            language=doc.language_id,
        )
    except AceError as exc:
        log.info("fix failed: %s", exc.reason)
        ls.tell(f"ACE: {exc.reason}")
        raise FixFailed(exc.reason) from None
    if ls.workspace.get_text_document(uri).version != version:
        raise FixFailed("The document changed while ACE was fixing it; ask for the fix again.")
    log.info("fixed %s with %s ($%.4f)", doc.uri, result.model, result.cost_usd)
    return _workspace_edit(ls, doc, result), result


def setup(server: AceServer) -> None:
    options = lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, FIX_ALL], resolve_provider=True
    )

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, options)
    def code_action(ls: AceServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        return list_actions(ls, params)

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    async def resolve(ls: AceServer, action: lsp.CodeAction) -> lsp.CodeAction:
        action.edit, _ = await fix(ls, action.data)
        return action

    @server.command(COMMAND)
    async def fix_command(ls: AceServer, *args: Any) -> dict[str, Any]:
        data = args[0] if args else None
        if isinstance(data, list) and data:  # some clients pass the arguments array itself
            data = data[0]
        edit, result = await fix(ls, data)
        applied = await ls.workspace_apply_edit_async(
            lsp.ApplyWorkspaceEditParams(edit=edit, label=f"Fix with ACE ({result.model})")
        )
        if not applied.applied:
            reason = applied.failure_reason or "the editor refused the edit"
            ls.tell(f"ACE: the fix was not applied: {reason}.", lsp.MessageType.Warning)
        return {"applied": applied.applied, "model": result.model, "costUsd": result.cost_usd}
