"""Applying LSP TextEdits (UTF-16 positions) to a text, the way an editor does, for assertions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class _Pos(Protocol):
    line: int
    character: int


class _Range(Protocol):
    @property
    def start(self) -> _Pos: ...
    @property
    def end(self) -> _Pos: ...


class _Edit(Protocol):
    @property
    def range(self) -> _Range: ...
    @property
    def new_text(self) -> str: ...


def _offset(text: str, line: int, character: int) -> int:
    """Index into `text` of an LSP position (UTF-16 units); line ends may be \\n or \\r\\n."""
    start = 0
    for _ in range(line):
        nl = text.find("\n", start)
        if nl == -1:
            return len(text)
        start = nl + 1
    end = text.find("\n", start)
    line_text = text[start : len(text) if end == -1 else end].rstrip("\r")
    units = 0
    for i, ch in enumerate(line_text):
        if units >= character:
            return start + i
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(line_text)


def apply_edits(text: str, edits: Iterable[_Edit]) -> str:
    """Apply non-overlapping edits, all positions relative to the original text."""
    spans = sorted(
        (
            (
                _offset(text, e.range.start.line, e.range.start.character),
                _offset(text, e.range.end.line, e.range.end.character),
                e.new_text,
            )
            for e in edits
        ),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text
