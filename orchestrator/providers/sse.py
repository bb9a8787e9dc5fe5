"""Server-sent events decoded line by line, as the WHATWG spec says; all four vendors stream SSE."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    event: str  # "message" when the server names none
    data: str


class SSEDecoder:
    """Feed it lines without their terminators; it returns an event at each blank line."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None  # a comment, e.g. llama.cpp's `: ping - <time>` keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None  # `id` and `retry` do not matter to a single request

    def end(self) -> SSEEvent | None:
        """The stream ended: an event not closed by a blank line is still dispatched."""
        return self.feed("") if self._data else None
