"""Converting positions between the client's negotiated encoding and ACE's UTF-16.

The orchestrator counts characters in UTF-16 code units, as LSP does by default; a client that
negotiated UTF-8 or UTF-32 gets its positions converted at the server's edge, here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from lsprotocol import types as lsp

from ace_lsp.orchestrator.code.source import Source, utf16_len, utf16_to_index
from ace_lsp.orchestrator.types import Position, TextRange

UTF16 = lsp.PositionEncodingKind.Utf16


def _line(lines: Sequence[str], n: int) -> str:
    return lines[n].rstrip("\r\n") if 0 <= n < len(lines) else ""


def _client_to_index(line: str, character: int, encoding: str) -> int:
    if encoding == lsp.PositionEncodingKind.Utf8:
        return len(line.encode("utf-8")[:character].decode("utf-8", errors="ignore"))
    if encoding == lsp.PositionEncodingKind.Utf32:
        return min(character, len(line))
    return utf16_to_index(line, character)


def _index_to_client(line: str, index: int, encoding: str) -> int:
    if encoding == lsp.PositionEncodingKind.Utf8:
        return len(line[:index].encode("utf-8"))
    if encoding == lsp.PositionEncodingKind.Utf32:
        return index
    return utf16_len(line[:index])


def from_client(lines: Sequence[str], pos: lsp.Position, encoding: str) -> Position:
    if encoding == UTF16:
        return Position(pos.line, pos.character)
    line = _line(lines, pos.line)
    return Position(pos.line, utf16_len(line[: _client_to_index(line, pos.character, encoding)]))


def to_client(lines: Sequence[str], pos: Position, encoding: str) -> lsp.Position:
    if encoding == UTF16:
        return lsp.Position(pos.line, pos.character)
    line = _line(lines, pos.line)
    return lsp.Position(
        pos.line, _index_to_client(line, utf16_to_index(line, pos.character), encoding)
    )


def range_from_client(lines: Sequence[str], rng: lsp.Range, encoding: str) -> TextRange:
    return TextRange(from_client(lines, rng.start, encoding), from_client(lines, rng.end, encoding))


def range_to_client(lines: Sequence[str], rng: TextRange, encoding: str) -> lsp.Range:
    return lsp.Range(to_client(lines, rng.start, encoding), to_client(lines, rng.end, encoding))


class SourceLines(Sequence[str]):
    """A Source's lines, as the sequence `server.positions` converts with, without a copy."""

    def __init__(self, source: Source) -> None:
        self._source = source

    def __len__(self) -> int:
        return self._source.line_count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self._source.line_text(n) for n in range(len(self))[index]]
        n = index + len(self) if index < 0 else index
        if not 0 <= n < len(self):
            raise IndexError(index)
        return self._source.line_text(n)

    def __iter__(self) -> Iterator[str]:
        return (self._source.line_text(n) for n in range(len(self)))
