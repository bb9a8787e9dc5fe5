"""JSON-RPC framing on stdin: the header parser, and the framer's resynchronisation on broken
frames, whatever the chunks the bytes arrive in."""

from __future__ import annotations

import json

import pytest

from ace_lsp.server.framing import (
    MAX_CONTENT_LENGTH,
    MAX_HEADER_BYTES,
    Dropped,
    Framer,
    Headers,
    parse_headers,
)

ONE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}).encode()
TWO = json.dumps({"jsonrpc": "2.0", "method": "exit"}).encode()


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param(b"Content-Length: 12", Headers(12), id="plain"),
        pytest.param(b"content-length: 12", Headers(12), id="lower-case"),
        pytest.param(b"CONTENT-LENGTH:12", Headers(12), id="upper-case-no-space"),
        pytest.param(b"Content-Length : 12 \t", Headers(12), id="spaces-around"),
        pytest.param(
            b"Content-Length: 12\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8",
            Headers(12),
            id="content-type-after",
        ),
        pytest.param(
            b"Content-Type: text/plain\r\nContent-Length: 12", Headers(12), id="type-first"
        ),
        pytest.param(b"X-Other: 1\r\nContent-Length: 12", Headers(12), id="unknown-field"),
        pytest.param(b"Content-Length: 5\r\nContent-Length: 12", Headers(12), id="last-wins"),
        pytest.param(b"Content-Length: 0", Headers(0), id="zero"),
        pytest.param(
            b"Content-Length: %d" % MAX_CONTENT_LENGTH, Headers(MAX_CONTENT_LENGTH), id="at-limit"
        ),
        pytest.param(
            b"garbage line\r\nContent-Length: 12",
            Headers(12, "skipped 12 bytes that are not header fields"),
            id="garbage-line-before",
        ),
        pytest.param(
            b"garbage\nContent-Length: 12",
            Headers(12, "skipped 7 bytes that are not header fields"),
            id="bare-newline",
        ),
        pytest.param(
            b'{"jsonrpc": "2.0"}Content-Length: 12',
            Headers(12, "skipped 18 bytes that are not header fields"),
            id="body-glued-to-header",
        ),
        pytest.param(
            b"xyz42Content-Length: 12",
            Headers(12, "skipped 5 bytes that are not header fields"),
            id="glued-junk-of-name-characters",
        ),
        pytest.param(
            b'{"text": "Content-Length: 5"}Content-Length: 12',
            Headers(12, "skipped 29 bytes that are not header fields"),
            id="glued-body-quoting-a-header",
        ),
        pytest.param(b"", Headers(None, "no Content-Length header"), id="empty"),
        pytest.param(
            b"Content-Type: text/plain", Headers(None, "no Content-Length header"), id="no-length"
        ),
        pytest.param(
            b"Content-Length 12", Headers(None, "no Content-Length header"), id="no-colon"
        ),
        pytest.param(
            b"Content-Length: abc",
            Headers(None, "Content-Length 'abc' is not a non-negative integer"),
            id="not-a-number",
        ),
        pytest.param(
            b"Content-Length: -5",
            Headers(None, "Content-Length '-5' is not a non-negative integer"),
            id="negative",
        ),
        pytest.param(
            b"Content-Length: +5",
            Headers(None, "Content-Length '+5' is not a non-negative integer"),
            id="plus-sign",
        ),
        pytest.param(
            b"Content-Length: 1.5",
            Headers(None, "Content-Length '1.5' is not a non-negative integer"),
            id="fraction",
        ),
        pytest.param(
            "Content-Length: ١٢".encode(),
            Headers(
                None, "Content-Length '\ufffd\ufffd\ufffd\ufffd' is not a non-negative integer"
            ),
            id="arabic-digits",
        ),
        pytest.param(
            b"Content-Length:",
            Headers(None, "Content-Length '' is not a non-negative integer"),
            id="no-value",
        ),
        pytest.param(
            b"Content-Length: %d" % (MAX_CONTENT_LENGTH + 1),
            Headers(
                None, f"Content-Length {MAX_CONTENT_LENGTH + 1} is over the 67108864 byte limit"
            ),
            id="over-limit",
        ),
        pytest.param(
            b"Content-Length: " + b"9" * 5000,
            Headers(None, f"Content-Length {'9' * 24}... is over the 67108864 byte limit"),
            id="five-thousand-digits",
        ),
    ],
)
def test_parse_headers(block: bytes, expected: Headers) -> None:
    assert parse_headers(block) == expected


PRETTY = b'{\r\n  "jsonrpc": "2.0",\r\n\r\n  "method": "exit"\r\n}'
QUOTING = json.dumps({"jsonrpc": "2.0", "method": "x", "params": "Content-Length: 5\r\n"}).encode()
JUNK = b"x" * (MAX_HEADER_BYTES + 10)
RESYNC = f"the next header starts after {len(ONE)} bytes"

# (stream, what comes out: a body, or a word of a Dropped reason)
STREAMS = [
    pytest.param(frame(ONE), [ONE], id="one"),
    pytest.param(frame(ONE) + frame(TWO), [ONE, TWO], id="two"),
    pytest.param(b"\r\n\r\n" + frame(ONE) + b"\n" + frame(TWO), [ONE, TWO], id="blank-lines"),
    pytest.param(
        b"content-length: %d\r\ncontent-type: x\r\n\r\n%s" % (len(ONE), ONE) + frame(TWO),
        [ONE, TWO],
        id="lower-case-and-type",
    ),
    pytest.param(frame(PRETTY) + frame(TWO), [PRETTY, TWO], id="body-with-crlfs"),
    pytest.param(frame(QUOTING) + frame(TWO), [QUOTING, TWO], id="body-quoting-a-header"),
    pytest.param(b"Content-Length: 0\r\n\r\n" + frame(TWO), ["empty", TWO], id="zero-length"),
    pytest.param(b"garbage line\r\n" + frame(TWO), ["skipped 12 bytes", TWO], id="garbage-line"),
    pytest.param(
        b"Content-Type: text/plain\r\n\r\n" + ONE + frame(TWO),
        ["no Content-Length", TWO],
        id="no-length",
    ),
    pytest.param(
        b"Content-Length: -5\r\n\r\n" + ONE + frame(TWO),
        ["is not a non-negative integer", TWO],
        id="negative",
    ),
    pytest.param(
        b"Content-Length: abc\r\n\r\n" + PRETTY + frame(TWO),
        ["is not a non-negative integer", TWO],  # the junk's own blank line is no second report
        id="not-a-number-then-junk-with-blank-line",
    ),
    pytest.param(
        b"Content-Length: 99999999999\r\n\r\n" + ONE + frame(TWO),
        ["over the", TWO],
        id="huge",
    ),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(ONE) + 40, ONE) + frame(TWO),
        [RESYNC, TWO],
        id="too-long",
    ),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(ONE) + 5, ONE) + frame(TWO),
        [RESYNC, TWO],
        id="too-long-ending-in-the-next-header-name",
    ),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(ONE) + 19, ONE) + frame(TWO),
        [RESYNC, TWO],
        id="too-long-ending-in-the-next-header-line",
    ),
    pytest.param(
        b"Content-Length: 100000\r\n\r\n" + ONE + frame(TWO),
        [RESYNC, TWO],
        id="too-long-for-all-that-follows",
    ),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(ONE) - 3, ONE) + frame(TWO),
        [ONE[:-3], "skipped 3 bytes", TWO],  # the cut body gets its parse error downstream
        id="too-short",
    ),
    pytest.param(JUNK + frame(TWO), ["without a header block", TWO], id="long-junk"),
]


def run(stream: bytes, chunk: int) -> list[bytes | str]:
    framer = Framer()
    out: list[bytes | Dropped] = []
    for i in range(0, len(stream), chunk):
        out += framer.feed(stream[i : i + chunk])
    assert framer.pending == 0
    return [f if isinstance(f, bytes) else f.reason for f in out]


@pytest.mark.parametrize(("stream", "expected"), STREAMS)
@pytest.mark.parametrize("chunk", [1, 3, 17, 1 << 20])
def test_framer(stream: bytes, expected: list[bytes | str], chunk: int) -> None:
    got = run(stream, chunk)
    assert len(got) == len(expected), got
    for item, want in zip(got, expected, strict=True):
        if isinstance(want, bytes):
            assert item == want
        else:
            assert isinstance(item, str) and want in item, got


def test_framer_waits_for_a_body_and_keeps_no_junk() -> None:
    framer = Framer()
    assert framer.feed(b"Content-Length: 10\r\n\r\n12345") == []
    assert framer.feed(b"67890") == [b"1234567890"]
    framer.feed(JUNK * 4)
    assert framer.pending == MAX_HEADER_BYTES  # junk is not hoarded while looking for a header
