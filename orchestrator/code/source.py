"""A text with its UTF-8 bytes and line index, converting LSP positions to tree-sitter points.

LSP counts `character` in UTF-16 code units; tree-sitter counts columns in UTF-8 bytes. A Source is
built once per document version and answers conversions without re-scanning the text.
"""

from __future__ import annotations

from bisect import bisect_right

from ace_lsp.orchestrator.types import Position


def utf16_len(s: str) -> int:
    """Length of `s` in UTF-16 code units."""
    if s.isascii():
        return len(s)
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def utf16_to_index(s: str, units: int) -> int:
    """Index into `s` of the character that starts at UTF-16 offset `units` (clamped to len(s))."""
    if s.isascii():
        return min(max(units, 0), len(s))
    count = 0
    for i, ch in enumerate(s):
        if count >= units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
    return len(s)


class Source:
    """Immutable text plus a byte-offset index of its line starts."""

    __slots__ = ("_line_starts", "data", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8")
        starts = [0]
        find = self.data.find
        i = find(b"\n")
        while i != -1:
            starts.append(i + 1)
            i = find(b"\n", i + 1)
        self._line_starts = starts

    @property
    def line_count(self) -> int:
        """Number of lines; a final newline does not start a new line."""
        n = len(self._line_starts)
        if n > 1 and self._line_starts[-1] == len(self.data):
            return n - 1
        return n

    def line_bytes(self, line: int) -> bytes:
        """The bytes of `line` without its line ending ("" beyond the end)."""
        if line < 0 or line >= len(self._line_starts):
            return b""
        start = self._line_starts[line]
        end = self._line_starts[line + 1] if line + 1 < len(self._line_starts) else len(self.data)
        chunk = self.data[start:end]
        if chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        return chunk

    def line_text(self, line: int) -> str:
        """The text of `line` without its line ending ("" beyond the end)."""
        return self.line_bytes(line).decode("utf-8")

    def line_start_byte(self, line: int) -> int:
        """The byte offset where `line` starts, clamped into the text."""
        if line >= len(self._line_starts):
            return len(self.data)
        return self._line_starts[max(line, 0)]

    def to_point(self, pos: Position) -> tuple[int, int]:
        """LSP position -> tree-sitter point (row, byte column); clamped into the text."""
        if pos.line >= len(self._line_starts):
            last = len(self._line_starts) - 1
            return last, len(self.line_bytes(last))
        raw = self.line_bytes(pos.line)
        if raw.isascii():
            return pos.line, min(max(pos.character, 0), len(raw))
        text = raw.decode("utf-8")
        idx = utf16_to_index(text, pos.character)
        return pos.line, len(text[:idx].encode("utf-8"))

    def to_byte(self, pos: Position) -> int:
        """LSP position -> byte offset into `data`; clamped into the text."""
        row, col = self.to_point(pos)
        return self._line_starts[row] + col

    def to_position(self, row: int, byte_col: int) -> Position:
        """tree-sitter point -> LSP position."""
        raw = self.line_bytes(row)
        if raw.isascii():
            return Position(row, min(byte_col, len(raw)))
        return Position(row, utf16_len(raw[:byte_col].decode("utf-8", errors="ignore")))

    def line_of_byte(self, offset: int) -> int:
        """The 0-based line holding byte `offset`."""
        return bisect_right(self._line_starts, offset) - 1
