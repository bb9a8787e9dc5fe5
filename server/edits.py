"""ACE's edits as the client's `WorkspaceEdit`: sorted, in the negotiated position encoding, and
pinned to the document version they were computed for when the client takes versioned edits."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types as lsp

from ace_lsp.orchestrator.types import TextEdit
from ace_lsp.server.base import AceServer
from ace_lsp.server.documents import DocState
from ace_lsp.server.positions import SourceLines, range_to_client


def workspace_edit(
    server: AceServer, doc: DocState, edits: Sequence[TextEdit]
) -> lsp.WorkspaceEdit:
    lines = SourceLines(doc.source)
    lsp_edits: list[lsp.TextEdit | lsp.AnnotatedTextEdit | lsp.SnippetTextEdit] = [
        lsp.TextEdit(range=range_to_client(lines, e.range, server.encoding), new_text=e.new_text)
        for e in sorted(edits, key=lambda e: (e.range.start, e.range.end))
    ]
    caps = server.client_capabilities.workspace
    if not (caps and caps.workspace_edit and caps.workspace_edit.document_changes):
        return lsp.WorkspaceEdit(changes={doc.uri: lsp_edits})  # type: ignore[dict-item]
    ident = lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(ident, lsp_edits)])
