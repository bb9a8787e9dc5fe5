"""JSON-RPC framing on stdin that survives broken frames: the core of ACE's replacement for pygls'
reader (`compat.read_messages` feeds it).

pygls 2.1 (`pygls.io_.run_async`) loses sync for good on a header block without a valid
`Content-Length`, on a lower-case header name, or on a length longer than its body: every later
message is read as garbage and the server stays up but deaf. Here header names are
case-insensitive, as HTTP's are, Content-Type (or any other field) is ignored, and a broken frame
costs one warning in the log, never the stream:

- A header block (the bytes before `\\r\\n\\r\\n`; blank lines between messages are skipped) without
  a valid non-negative integer Content-Length, or one over MAX_CONTENT_LENGTH (refused without
  allocating it), is dropped, with nothing answered: there is no id to answer. The body that
  followed it is of unknown length, so it is junk up to the next header block; in a block, bytes
  that are not header fields are skipped, and a `Content-Length:` that starts mid-line (a body
  without a final newline glued to the next header) still counts.
- A body can never contain a raw `Content-Length: <digits>\\r\\n`: JSON has no bare words and no raw
  CR inside strings. So if one starts inside the declared body (the length was too long, and the
  next message's header is in it), the frame is broken: its bytes up to that header are dropped
  and reading resumes at the header. This is decided as soon as the header line arrives, so an
  overlong frame followed by a request does not wait for bytes that will never come. If the
  declared length ends inside such a header line, the frame waits for the rest of the line; a
  valid JSON body can never end like that, so a good message is never delayed.
- Junk without any header block is kept only up to MAX_HEADER_BYTES while looking for the next one.

`Framer` is the sans-I/O core (bytes in, bodies and drop reports out) and `parse_headers` its pure
header parser; neither imports pygls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

MAX_CONTENT_LENGTH = 64 * 1024 * 1024  # a bigger message is refused, not allocated
MAX_HEADER_BYTES = 8 * 1024  # a header block is ~25 bytes: longer runs are junk

_NAME = b"content-length"
_LINE_MAX = 64  # the longest `Content-Length: <digits>\r\n` line looked for inside a body
# the value: blanks-then-a-non-blank pieces (they split it one way only), then the final blanks;
# `(.*?)[ \t]*` retried every split of a value's inner blanks (8 KB took 0.4 s)
_FIELD = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*((?:[ \t]*[^ \t])*)[ \t]*", re.DOTALL
)
_HEADER_LINE = re.compile(rb"content-length[ \t]*:[ \t]*[0-9]{1,20}[ \t]*\r\n", re.IGNORECASE)
_HEADER_LINE_REST = re.compile(rb"[ \t]*(?::[ \t]*(?:[0-9]{1,20}[ \t]*\r?)?)?")  # after the name
_BLANK_LINES = re.compile(rb"[\r\n]*")
_LETTER_C = re.compile(rb"[cC]")


@dataclass(frozen=True)
class Headers:
    """A parsed header block: the body's length, or None when the block is unusable."""

    length: int | None
    problem: str = ""  # why the block is unusable, or what was skipped in a usable one


@dataclass(frozen=True)
class Dropped:
    """Bytes the framer threw away, and why: one warning's worth."""

    reason: str


def parse_headers(block: bytes) -> Headers:
    """The Content-Length of a header block (without its final `\\r\\n\\r\\n`); the last one wins.

    Names are case-insensitive; other fields are ignored; lines that are not fields are skipped as
    junk, except that a `Content-Length:` after junk on the same line still counts.
    """
    value: bytes | None = None
    junk = 0
    for line in block.splitlines():
        start = line.lower().rfind(_NAME)
        field = _FIELD.fullmatch(line, start) if start > 0 else None  # junk glued before it
        if field is None:
            start, field = 0, _FIELD.fullmatch(line)
        junk += len(line) if field is None else start
        if field is not None and field[1].lower() == _NAME:
            value = field[2]
    if value is None:
        return Headers(None, "no Content-Length header")
    shown = value[:24].decode("ascii", "replace") + ("..." if len(value) > 24 else "")
    if not value.isdigit():  # ASCII digits only; no sign
        return Headers(None, f"Content-Length {shown!r} is not a non-negative integer")
    if len(value) > 20 or int(value) > MAX_CONTENT_LENGTH:
        return Headers(None, f"Content-Length {shown} is over the {MAX_CONTENT_LENGTH} byte limit")
    return Headers(int(value), f"skipped {junk} bytes that are not header fields" if junk else "")


def _could_start_header_line(tail: bytes) -> bool:
    """Whether more bytes could make `tail` a `Content-Length: <digits>\\r\\n` line."""
    low = tail.lower()
    if len(low) <= len(_NAME):
        return _NAME.startswith(low)
    return low.startswith(_NAME) and _HEADER_LINE_REST.fullmatch(low, len(_NAME)) is not None


class Framer:
    """Bytes from the client in, message bodies (and reports of dropped bytes) out; no I/O."""

    def __init__(self) -> None:
        self._buf = bytearray()  # unconsumed input; deleting its front is cheap in CPython
        self._length: int | None = None  # the declared length of the body at _buf[0], if any
        self._scanned = 0  # _buf[:_scanned] was searched already (for a block end, a header line)
        self._resyncing = False  # after a drop: more junk is expected and not reported again

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a message (non-zero at EOF: a message was cut)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | Dropped]:
        """The bodies (in order) that `data` completes, with a Dropped for each broken frame."""
        self._buf += data
        out: list[bytes | Dropped] = []
        while self._headers(out) if self._length is None else self._body(out, self._length):
            pass
        return out

    def _headers(self, out: list[bytes | Dropped]) -> bool:
        buf = self._buf
        blank = _BLANK_LINES.match(buf)
        if blank is not None and blank.end():
            del buf[: blank.end()]
            self._scanned = 0
        end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
        block = len(buf) if end < 0 else end
        if block > MAX_HEADER_BYTES:  # junk: keep only what may be a header block's start
            self._drop(out, f"over {MAX_HEADER_BYTES} bytes without a header block")
            del buf[: block - MAX_HEADER_BYTES]
            end = min(end, MAX_HEADER_BYTES)
        if end < 0:
            self._scanned = len(buf)
            return False
        headers = parse_headers(bytes(buf[:end]))
        del buf[: end + 4]
        self._scanned = 0
        if headers.length is None:
            self._drop(out, f"dropped a header block ({headers.problem}) and its body, if any")
            return True
        if headers.problem:
            self._drop(out, headers.problem)
        self._resyncing = False
        if headers.length == 0:
            out.append(Dropped("an empty message (Content-Length: 0)"))
        else:
            self._length = headers.length
        return True

    def _body(self, out: list[bytes | Dropped], length: int) -> bool:
        buf = self._buf
        header = self._header_line_inside(length)
        if header is not None:
            out.append(
                Dropped(
                    f"a message said Content-Length {length}, but the next header starts after "
                    f"{header} bytes: they are skipped"
                )
            )
            del buf[:header]
        elif len(buf) < length or self._header_line_cut(length):
            return False
        else:
            with memoryview(buf) as view:
                out.append(bytes(view[:length]))  # one copy, not two
            del buf[:length]
        self._length = None
        self._scanned = 0
        return True

    def _header_line_inside(self, length: int) -> int | None:
        """Where a `Content-Length: N\\r\\n` line starts inside the declared body, if anywhere."""
        buf = self._buf
        limit = min(len(buf), length + _LINE_MAX)
        cr = buf.find(13, self._scanned, limit)  # one byte: memchr, not a two-byte search
        while 0 <= cr < limit - 1:  # compact JSON has no raw CR: these are the next frame's
            line = _HEADER_LINE.search(buf, max(0, cr - _LINE_MAX), cr + 2)
            if line is not None and line.start() < length:
                return line.start()
            cr = buf.find(13, cr + 1, limit)
        self._scanned = limit if cr < 0 else cr  # a CR last: look at it again with its LF
        return None

    def _header_line_cut(self, length: int) -> bool:
        """Whether the body ends inside what may become a header line once more bytes arrive."""
        buf = self._buf
        if len(buf) >= length + _LINE_MAX:
            return False
        return any(
            _could_start_header_line(bytes(buf[c.start() :]))
            for c in _LETTER_C.finditer(buf, max(0, length - _LINE_MAX), length)
        )

    def _drop(self, out: list[bytes | Dropped], reason: str) -> None:
        if not self._resyncing:
            out.append(Dropped(reason))
        self._resyncing = True


class ByteSource(Protocol):
    """What `read_messages` reads from: `sys.stdin.buffer`, or any buffered binary stream."""

    def read1(self, size: int, /) -> bytes: ...
