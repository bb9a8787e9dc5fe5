"""Server-sent events decoded line by line, as the WHATWG spec says; all four vendors stream SSE.

`SSELines` cuts the stream's text into lines and `SSEDecoder` turns lines into events; both say
how much they hold unfinished (`pending`), so a reader can refuse a line or an event that never
ends instead of buffering it without bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched server-sent event: its type and its data lines joined by newlines."""

    event: str  # "message" when the server names none
    data: str


class SSELines:
    """Feed it the stream's text as it arrives; it returns the lines completed, without their
    terminators (CRLF, LF or CR, as the SSE spec says)."""

    def __init__(self) -> None:
        self._parts: list[str] = []  # the unfinished line
        self.pending = 0  # its length in characters
        self._after_cr = False  # the last text ended in "\r": a "\n" next ends nothing more

    def feed(self, text: str) -> list[str]:
        """The lines `text` completes; the rest is held until the next feed or `end()`."""
        if not text:
            return []
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        lines: list[str] = []
        start = 0
        for m in _EOL.finditer(text):
            self._parts.append(text[start : m.start()])
            lines.append("".join(self._parts))
            self._parts, self.pending = [], 0
            start = m.end()
        if start < len(text):
            self._parts.append(text[start:])
            self.pending += len(text) - start
        return lines

    def end(self) -> list[str]:
        """The stream ended: an unfinished last line is still a line."""
        rest, self._parts, self.pending = "".join(self._parts), [], 0
        return [rest] if rest else []


class SSEDecoder:
    """Feed it lines without their terminators; it returns an event at each blank line."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self.pending = 0  # characters of data held for the event not yet dispatched

    def feed(self, line: str) -> SSEEvent | None:
        """The event a blank line dispatches, else None; fields are held until then."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data, self.pending = "", [], 0
            return event
        if line.startswith(":"):
            return None  # a comment, e.g. llama.cpp's `: ping - <time>` keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self.pending += len(value) + 1
        elif name == "event":
            self._event = value
        return None  # `id` and `retry` do not matter to a single request

    def end(self) -> SSEEvent | None:
        """The stream ended: an event not closed by a blank line is still dispatched."""
        return self.feed("") if self._data else None
