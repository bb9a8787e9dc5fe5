"""The document store: text, line index and an incrementally edited tree follow didChange exactly.

After every notification the store's text must equal a plain reference application of the
changes, and its tree must equal a parse from scratch of that text, node for node with positions.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import pytest
from lsprotocol import types as lsp
from pygls.workspace import Workspace
from tree_sitter import Node, Tree

from ace_lsp.orchestrator.code import languages
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.code.text_edit import normalize_encoding, splice, to_byte
from ace_lsp.server.base import AceServer
from ace_lsp.server.documents import MAX_BYTES, DocState, Documents, DocumentStore
from tests.features import find

URI = "file:///work/example.py"
U8, U16, U32 = "utf-8", "utf-16", "utf-32"
Change = lsp.TextDocumentContentChangeEvent


# -- a plain reference: positions to string indexes by walking characters --------------------


def _ref_index(text: str, line: int, character: int, encoding: str) -> int:
    lines = text.split("\n")
    if line >= len(lines):
        return len(text)
    offset = sum(len(x) + 1 for x in lines[:line])
    content = lines[line][:-1] if lines[line].endswith("\r") else lines[line]
    count = 0
    for i, ch in enumerate(content):
        size = {U8: len(ch.encode()), U16: 2 if ord(ch) > 0xFFFF else 1, U32: 1}[encoding]
        if encoding == U8 and count + size > character:  # inside a character: its start
            return offset + i
        if encoding != U8 and count >= character:
            return offset + i
        count += size
    return offset + len(content)


def _ref_apply(text: str, changes: Sequence[Change], encoding: str) -> str:
    for c in changes:
        if isinstance(c, lsp.TextDocumentContentChangeWholeDocument):
            text = c.text
            continue
        start = _ref_index(text, c.range.start.line, c.range.start.character, encoding)
        end = _ref_index(text, c.range.end.line, c.range.end.character, encoding)
        start, end = min(start, end), max(start, end)
        text = text[:start] + c.text + text[end:]
    return text


def _nodes(tree: Tree) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    stack: list[Node] = [tree.root_node]
    while stack:
        n = stack.pop()
        out.append((n.type, n.start_byte, n.end_byte, tuple(n.start_point), tuple(n.end_point)))
        stack.extend(reversed(n.children))
    return out


def _check(state: DocState, expected: str, language: str | None = "python") -> None:
    assert state.source.text == expected
    assert state.source.data == expected.encode()
    assert state.source._line_starts == Source(expected)._line_starts
    spec = languages.resolve(language)
    if spec is None:
        assert state.tree is None
        return
    assert state.tree is not None
    fresh = languages.parser(spec).parse(expected.encode())
    assert str(state.tree.root_node) == str(fresh.root_node)
    assert _nodes(state.tree) == _nodes(fresh)


def ins(line: int, ch: int, text: str) -> Change:
    pos = lsp.Position(line, ch)
    return lsp.TextDocumentContentChangePartial(range=lsp.Range(pos, pos), text=text)


def rep(l1: int, c1: int, l2: int, c2: int, text: str = "") -> Change:
    rng = lsp.Range(lsp.Position(l1, c1), lsp.Position(l2, c2))
    return lsp.TextDocumentContentChangePartial(range=rng, text=text)


def whole(text: str) -> Change:
    return lsp.TextDocumentContentChangeWholeDocument(text=text)


PY = "import os\n\n\ndef f(x):\n    if x == None:\n        return 1\n    return x\n"
CRLF = "def f(x):\r\n    return x\r\n\r\nclass A:\r\n    pass\r\n"
UNI = 's = "é😀x"\nt = "naïve"  # 😀 é\ndef g():\n    return "日本"\n'

CASES = [
    pytest.param(PY, U16, [[ins(4, 9, "x")]], id="insert-char"),
    pytest.param(PY, U16, [[ins(0, 0, "#")], [ins(0, 1, " ")], [ins(0, 2, "c")]], id="typing"),
    pytest.param(PY, U16, [[rep(4, 9, 4, 11)]], id="delete-chars"),
    pytest.param(PY, U16, [[rep(4, 16, 4, 17)], [rep(4, 15, 4, 16)]], id="backspaces"),
    pytest.param(PY, U16, [[ins(5, 16, "\n        ")]], id="enter-with-indent"),
    pytest.param(PY, U16, [[rep(3, 0, 6, 12, "def g():\n    pass")]], id="multiline-replace"),
    pytest.param(PY, U16, [[rep(1, 0, 3, 0, "x = [\n1,\n2,\n]\n")]], id="more-lines"),
    pytest.param(PY, U16, [[rep(0, 0, 7, 0)]], id="delete-all"),
    pytest.param("", U16, [[ins(0, 0, "x = 1\n")], [ins(1, 0, "y = 2\n")]], id="from-empty"),
    pytest.param(
        PY,
        U16,
        [[ins(6, 12, " + 1"), ins(4, 9, "y"), rep(0, 7, 0, 9, "sys")]],
        id="several-bottom-up",
    ),
    pytest.param(
        PY,
        U16,
        [[ins(0, 0, "a = 1\n"), ins(1, 0, "b = 2\n"), rep(0, 0, 1, 0), ins(5, 4, "z = 0\n    ")]],
        id="several-dependent",
    ),
    pytest.param(CRLF, U16, [[ins(1, 12, " + 1")]], id="crlf-line-end"),
    pytest.param(CRLF, U16, [[ins(1, 99, "!")]], id="crlf-clamped-before-cr"),
    pytest.param(CRLF, U16, [[ins(1, 4, "y = 1\r\n    ")]], id="crlf-insert-lines"),
    pytest.param(CRLF, U16, [[rep(0, 9, 1, 4, " ")]], id="crlf-join-lines"),
    pytest.param(CRLF, U16, [[rep(2, 0, 3, 0)]], id="crlf-delete-blank"),
    pytest.param(UNI, U16, [[ins(0, 8, "y")]], id="utf16-after-emoji"),
    pytest.param(UNI, U16, [[rep(0, 6, 0, 8)]], id="utf16-delete-emoji"),
    pytest.param(UNI, U16, [[rep(0, 5, 0, 6, "e")], [ins(1, 5, "é")]], id="utf16-e-acute"),
    pytest.param(UNI, U16, [[ins(0, 7, "z")]], id="utf16-inside-surrogate-pair"),
    pytest.param(UNI, U16, [[rep(1, 18, 3, 12, "😀\n日")]], id="utf16-multiline"),
    pytest.param(UNI, U8, [[ins(0, 11, "y")]], id="utf8-after-emoji"),
    pytest.param(UNI, U8, [[rep(0, 7, 0, 11)]], id="utf8-delete-emoji"),
    pytest.param(UNI, U8, [[ins(0, 9, "y")]], id="utf8-inside-emoji"),
    pytest.param(UNI, U8, [[rep(3, 12, 3, 18, "Japan")]], id="utf8-cjk"),
    pytest.param(UNI, U32, [[ins(0, 7, "y")], [rep(0, 5, 0, 7)]], id="utf32"),
    pytest.param(PY, U16, [[whole("x = 1\n")]], id="whole"),
    pytest.param(PY, U16, [[whole("x = 1\n"), ins(1, 0, "y = 2\n")]], id="whole-then-partial"),
    pytest.param(PY, U16, [[ins(4, 9, "x")], [whole(UNI)], [ins(0, 8, "y")]], id="whole-between"),
    pytest.param(PY, U16, [[ins(99, 99, "z = 3\n")]], id="past-the-end"),
    pytest.param(PY, U16, [[ins(2, 99, "pass")]], id="past-the-line"),
    pytest.param(PY, U16, [[rep(5, 0, 99, 0, "")]], id="range-past-the-end"),
    pytest.param(PY, U16, [[rep(4, 11, 4, 8, "is")]], id="reversed-range"),
    pytest.param(PY, U16, [[ins(0, 0, "def broken(:\n")]], id="syntax-error"),
]


@pytest.mark.parametrize(("text", "encoding", "notifications"), CASES)
def test_changes(text: str, encoding: str, notifications: list[list[Change]]) -> None:
    store = DocumentStore()
    _check(store.open(URI, "python", 1, text), text)
    expected = text
    for version, changes in enumerate(notifications, start=2):
        expected = _ref_apply(expected, changes, encoding)
        state = store.change(URI, version, changes, encoding)
        assert state is not None
        assert state.version == version
        assert state.problem is None
        _check(state, expected)
        assert store.get(URI) is state


@pytest.mark.parametrize("encoding", [U8, U16, U32])
@pytest.mark.parametrize("language", ["python", "javascript", "plaintext"])
def test_random_edits(encoding: str, language: str) -> None:
    rng = random.Random(f"{encoding}{language}")
    pieces = ["x", "é", "😀", "\n", "\r\n", "    ", "(", ")", ":", "def ", "{", "}", '"', "日"]
    text = PY if language == "python" else "function f(a) {\n  return a + 1;\n}\n"
    uri = f"file:///work/example.{ {'python': 'py', 'javascript': 'js'}.get(language, 'txt') }"
    store = DocumentStore()
    store.open(uri, language, 0, text)
    for version in range(1, 120):
        changes: list[Change] = []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            lines = max(1, text.count("\n") + 1)

            def pos() -> tuple[int, int]:
                return rng.randrange(lines + 1), rng.randrange(12)  # noqa: B023

            (l1, c1), (l2, c2) = pos(), pos()
            new = "".join(rng.choice(pieces) for _ in range(rng.choice([0, 1, 1, 2, 5])))
            changes.append(rep(l1, c1, l2, c2, new))
        text = _ref_apply(text, changes, encoding)
        state = store.change(uri, version, changes, encoding)
        assert state is not None
        _check(state, text, language)


def test_old_state_keeps_its_tree() -> None:
    store = DocumentStore()
    old = store.open(URI, "python", 1, PY)
    assert old.tree is not None
    before = _nodes(old.tree)
    new = store.change(URI, 2, [ins(0, 0, "import sys\n")], U16)
    assert new is not None
    assert _nodes(old.tree) == before
    assert old.source.text == PY
    _check(new, "import sys\n" + PY)


def test_versions_follow_notifications() -> None:
    store = DocumentStore()
    assert store.open(URI, "python", 7, PY).version == 7
    state = store.change(URI, 9, [ins(0, 0, "#\n")], U16)
    assert state is not None
    assert state.version == 9


def test_too_large() -> None:
    store = DocumentStore()
    uri = "file:///work/big.py"
    big = "x = 1\n" * (MAX_BYTES // 6 + 1)
    state = store.open(uri, "python", 1, big)
    assert state.tree is None
    assert state.problem == "big.py is larger than 2 MB; ACE does not fix files this large."
    assert state.source.text == big
    state2 = store.change(uri, 2, [ins(0, 0, "y")], U16)
    assert state2 is not None
    assert state2.tree is None
    assert state2.source.text == "y" + big
    shrunk = store.change(uri, 3, [rep(1, 0, 10**9, 0)], U16)  # back under the limit: parsed
    assert shrunk is not None
    assert shrunk.problem is None
    _check(shrunk, "yx = 1\n")


def test_limit_is_configurable() -> None:
    store = DocumentStore(max_bytes=512 * 1024)
    state = store.open(URI, "python", 1, "#" * (600 * 1024))
    assert state.problem == "example.py is larger than 0.5 MB; ACE does not fix files this large."


def test_binary() -> None:
    store = DocumentStore()
    state: DocState | None = store.open(URI, "python", 1, "x = 1\x00\n")
    assert state is not None
    assert state.tree is None
    assert state.problem is not None
    assert "binary" in state.problem
    state = store.change(URI, 2, [rep(0, 5, 0, 6)], U16)  # the NUL goes: a tree again
    assert state is not None
    assert state.problem is None
    _check(state, "x = 1\n")
    state = store.change(URI, 3, [ins(0, 0, "\x00")], U16)
    assert state is not None
    assert state.tree is None
    assert state.problem is not None


def test_unknown_language_has_no_tree_and_no_problem() -> None:
    store = DocumentStore()
    state = store.open("file:///work/notes.txt", "plaintext", 1, "hello\n")
    assert (state.tree, state.problem) == (None, None)
    state2 = store.change("file:///work/notes.txt", 2, [ins(0, 5, " world")], U16)
    assert state2 is not None
    _check(state2, "hello world\n", None)


def test_language_from_extension_when_id_unknown() -> None:
    store = DocumentStore()
    state = store.open("file:///work/a.rs", "some-editor-id", 1, "fn main() {}\n")
    assert state.tree is not None
    assert state.language == "some-editor-id"


def test_unknown_uri_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    store = DocumentStore()
    with caplog.at_level(logging.WARNING, logger="ace_lsp.server.documents"):
        assert store.change("file:///nowhere.py", 2, [ins(0, 0, "x")], U16) is None
    assert "not open" in caplog.text
    assert len(store) == 0


def test_open_close_get() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, PY)
    store.open("file:///work/a%20b.py", "python", 1, PY)
    assert len(store) == 2
    assert store.get("file:///work/a b.py") is store.get("file:///work/a%20b.py")
    assert "file:///work/a%20b.py" in store
    store.close(URI)
    store.close(URI)  # twice: no error
    assert store.get(URI) is None
    assert len(store) == 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (lsp.PositionEncodingKind.Utf8, U8),
        (lsp.PositionEncodingKind.Utf16, U16),
        (lsp.PositionEncodingKind.Utf32, U32),
        ("PositionEncodingKind.Utf8", U8),  # str() of the enum on Python 3.11
        ("utf-32", U32),
        ("", U16),
    ],
)
def test_normalize_encoding(raw: object, expected: str) -> None:
    assert normalize_encoding(raw) == expected


def test_splice_reports_tree_sitter_edit() -> None:
    src = Source("ab\ncd\n")
    data, starts = src.data, src._line_starts
    start, end = to_byte(data, starts, 0, 1, U16), to_byte(data, starts, 1, 1, U16)
    text, new_data, new_starts, edit = splice(src.text, data, starts, start, end, "X\nYY\nZ")
    assert text == "aX\nYY\nZd\n"
    assert new_data == text.encode()
    assert new_starts == [0, 3, 6, 9]
    assert (edit.start_byte, edit.old_end_byte, edit.new_end_byte) == (1, 4, 7)
    assert (edit.start_point, edit.old_end_point, edit.new_end_point) == ((0, 1), (1, 1), (2, 1))


def test_lone_surrogate_does_not_crash() -> None:
    store = DocumentStore()
    store.open(URI, "python", 1, "x = 1\n")
    state = store.change(URI, 2, [ins(0, 0, "\ud83d")], U16)
    assert state is not None
    assert state.source.text == "\ufffdx = 1\n"
    _check(state, "\ufffdx = 1\n")


# -- the handlers, called as pygls calls them after updating its own copy ----------------------


def _server() -> AceServer:
    server = AceServer()
    server.add(Documents(server))
    server.protocol._workspace = Workspace(None)
    return server


def _store(server: AceServer) -> DocumentStore:
    return find(server, Documents).store


def _notify(server: AceServer, method: str, params: Any) -> None:
    ws = server.workspace
    if method == lsp.TEXT_DOCUMENT_DID_OPEN:
        ws.put_text_document(params.text_document)
    elif method == lsp.TEXT_DOCUMENT_DID_CHANGE:
        for change in params.content_changes:
            ws.update_text_document(params.text_document, change)
    elif method == lsp.TEXT_DOCUMENT_DID_CLOSE:
        ws.remove_text_document(params.text_document.uri)
    server.protocol.fm.features[method](params)


def test_handlers_track_documents() -> None:
    server = _server()
    item = lsp.TextDocumentItem(URI, "python", 1, PY)
    _notify(server, lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(item))
    ident = lsp.VersionedTextDocumentIdentifier(version=2, uri=URI)
    change = lsp.DidChangeTextDocumentParams(ident, [ins(0, 0, "import sys\n")])
    _notify(server, lsp.TEXT_DOCUMENT_DID_CHANGE, change)
    state = _store(server).get(URI)
    assert state is not None
    assert state.version == 2
    _check(state, server.workspace.get_text_document(URI).source)
    unknown = lsp.VersionedTextDocumentIdentifier(version=2, uri="file:///other.py")
    server.protocol.fm.features[lsp.TEXT_DOCUMENT_DID_CHANGE](
        lsp.DidChangeTextDocumentParams(unknown, [ins(0, 0, "x")])
    )
    closing = lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(URI))
    _notify(server, lsp.TEXT_DOCUMENT_DID_CLOSE, closing)
    assert len(_store(server)) == 0


def test_handler_failure_is_logged_and_resynced(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    server = _server()
    item = lsp.TextDocumentItem(URI, "python", 1, PY)
    _notify(server, lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(item))

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(_store(server), "change", boom)
    ident = lsp.VersionedTextDocumentIdentifier(version=2, uri=URI)
    with caplog.at_level(logging.ERROR, logger="ace_lsp.server.documents"):
        _notify(
            server,
            lsp.TEXT_DOCUMENT_DID_CHANGE,
            lsp.DidChangeTextDocumentParams(ident, [ins(0, 0, "import sys\n")]),
        )
    assert "didChange" in caplog.text
    state = _store(server).get(URI)
    assert state is not None
    assert state.version == 2
    _check(state, "import sys\n" + PY)
