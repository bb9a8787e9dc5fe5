"""Hostile replies and inputs cannot stall or bloat ACE (issue 12 §3).

Every regex over model or user text is linear, every size has a cap with a clear refusal, and the
CPU-heavy checks (masking, the patch gate) run off the event loop within a time limit. The time
bounds are generous: they catch quadratic behaviour, not a slow machine. Each timed case runs under
a SIGALRM deadline (Python's regex engine checks for signals), so a regression fails in seconds
instead of running for the hours a quadratic pattern takes on a megabyte.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ace_lsp.orchestrator import caps
from ace_lsp.orchestrator.ace import FixContext, ace_auto_fix
from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.code import (
    diff_text,
    edit_formats,
    patches,
    prompts,
    review,
    review_text,
    text_edit,
)
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import BadResponse, CheckTimeout, PatchError, ServerError
from ace_lsp.orchestrator.ledger import Ledger
from ace_lsp.orchestrator.providers import anthropic, gemini, local, openai
from ace_lsp.orchestrator.providers.http import HttpProvider
from ace_lsp.orchestrator.providers.sse import SSEDecoder, SSELines
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.team import pg
from ace_lsp.orchestrator.types import (
    CodeIssue,
    LineRange,
    LLMRequest,
    Message,
    Position,
    ProviderReply,
    TaskType,
    TextRange,
)
from ace_lsp.server import code_actions, fixing, framing
from ace_lsp.server.app import create_server
from ace_lsp.server.base import AceServer
from ace_lsp.server.documents import Documents
from tests.e2e.conftest import until
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.openai import KEY, openai_app
from tests.features import find
from tests.scripted import Scripted, model

pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM")

MB = 1_000_000
# for a megabyte: a linear regex takes milliseconds, a quadratic one hours (the rows that run the
# whole diff scanner, Python code, read a fifth of that: 33,000 lines, quadratic for minutes)
BOUND_S = 2.0


class TooSlow(Exception):
    pass


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """By how many bytes the process's peak RSS grew while the block ran (Linux: the peak is
    reset through /proc/self/clear_refs); 0 where that cannot be measured."""
    grown = [0]

    def status(field: str) -> int:
        with open("/proc/self/status") as f:
            line = next(ln for ln in f if ln.startswith(field))
        return int(line.split()[1]) * 1024

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        yield grown
        return
    before = status("VmRSS:")
    yield grown
    grown[0] = status("VmHWM:") - before


@contextmanager
def deadline(seconds: float = BOUND_S) -> Iterator[None]:
    """Fail (TooSlow) once `seconds` have passed, even inside one long regex match."""

    def expire(signum: int, frame: object) -> None:
        raise TooSlow(f"took over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - t0 < seconds


def _quietly(fn: Callable[[Any], object]) -> Callable[[Any], object]:
    """`fn`, with the refusals a hostile input may earn counted as an answer."""

    def run(arg: Any) -> object:
        try:
            return fn(arg)
        except (PatchError, diff_text.DiffFormatError, review.InvalidReview) as exc:
            return exc

    return run


def _text_findings(text: str) -> object:
    return list(review_text.findings(text))


def _other_format(reply: str) -> object:
    """A search/replace or span reply read against a file of many alike lines (worst for search)."""
    try:
        return edit_formats.read(reply, "x = 1\n" * 30_000, [LineRange(0, 29_999)], target="f.py")
    except PatchError as exc:
        return exc


def _header_path(line: str) -> str:
    return diff_text._header_path(line)


# -- every regex over model or user text, against its worst inputs -------------------------------

SPACES = " " * MB
DIGITS = "1" * MB
REGEXES = [
    # diff_text: the reply's fences, hunk headers and file headers
    pytest.param(diff_text._fence_at, "```" + SPACES + "`", id="fence-blanks-then-backtick"),
    pytest.param(diff_text._fence_at, "~~~" + "a " * (MB // 2) + "`", id="fence-words-backtick"),
    pytest.param(diff_text._fence_at, "`" * MB + "x`", id="fence-all-backticks"),
    pytest.param(diff_text._NUMBERS.match, "@" * MB, id="numbers-all-at"),
    pytest.param(diff_text._NUMBERS.match, "@@ -" + DIGITS + "x", id="numbers-long-digits"),
    pytest.param(diff_text._NUMBERS.match, "@@ -1,1" + SPACES + "x", id="numbers-blanks"),
    pytest.param(_header_path, SPACES, id="timestamp-blanks"),
    pytest.param(_header_path, "f" + "\t " * (MB // 2), id="timestamp-tabs-blanks"),
    pytest.param(_header_path, " 2020-01-01 00:00" + SPACES + "x", id="timestamp-date-blanks"),
    pytest.param(_header_path, " 2020-01-01 00:00x" * (MB // 18), id="timestamp-many-dates"),
    pytest.param(_header_path, " 2020-01-01 00:00" + "x" * MB + " ", id="timestamp-long-tail"),
    pytest.param(_quietly(diff_text.parse_reply), "```" + SPACES + "`", id="reply-fence-line"),
    pytest.param(
        _quietly(diff_text.parse_reply),
        "--- a/f.py" + SPACES + "x\n+++ b/f.py" + SPACES + "x\n@@ -1 +1 @@\n-a\n+b\n",
        id="reply-header-blanks",
    ),
    pytest.param(
        _quietly(diff_text.parse_reply),
        "@@ -1,1000000 +1,1000000 @@\n" + "--- x\n" * (MB // 30),  # 33,000 lines
        id="reply-many-dash-lines",
    ),
    pytest.param(_quietly(diff_text.parse_reply), "```\n" * (MB // 20), id="reply-many-fences"),
    pytest.param(diff_text.base_name, "a/" * (MB // 2), id="base-name-slashes"),
    # edit_formats: search/replace blocks and a rewritten span, read when a reply has no diff
    pytest.param(_other_format, "<" * MB, id="edit-marker-all-angles"),
    pytest.param(_other_format, "<<<<<<< SEARCH" + SPACES + "x", id="edit-marker-blanks"),
    pytest.param(_other_format, "<<<<<<< SEARCH\n" * (MB // 15), id="edit-many-openings"),
    pytest.param(
        _other_format,
        "<<<<<<< SEARCH\n" + "x = 1\n" * (MB // 6) + "=======\ny\n>>>>>>> REPLACE\n",
        id="edit-huge-search",
    ),
    pytest.param(_other_format, ("x = 1\n" + "=" * 7 + "\n") * (MB // 14), id="edit-dividers"),
    pytest.param(
        _other_format,
        "<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n" * (MB // 40),
        id="edit-many-blocks",
    ),
    pytest.param(_other_format, "f.py" + SPACES + "\n<<<<<<< SEARCH\n", id="edit-name-blanks"),
    pytest.param(_other_format, "```" + SPACES + "\nx\n```\n", id="edit-fence-blanks"),
    pytest.param(_other_format, "```python\n" + "x = 2\n" * (MB // 6), id="edit-span-unclosed"),
    pytest.param(_other_format, "```\n" * (MB // 4), id="edit-many-fences"),
    pytest.param(_other_format, "```\n" + "@@\n" * (MB // 3) + "```\n", id="edit-span-at-lines"),
    # review: the JSON findings in a reply
    pytest.param(review._FENCE.search, "```json\n" + "a" * MB, id="review-fence-unclosed"),
    pytest.param(review._FENCE.search, "```" + "\t" * MB, id="review-fence-blanks"),
    pytest.param(review._FENCE.search, "``` \t" * (MB // 5), id="review-many-openings"),
    pytest.param(
        _quietly(lambda s: review.parse_review(s, "x = 1\n", LineRange(0, 0), path="f.py")),
        "{" * MB,
        id="review-braces",
    ),
    # review_text: a review written as prose (the fallback when no JSON is readable); the rows
    # of many lines read 33,000, as the diff scanner's do
    pytest.param(_text_findings, "- Line 1: " + "x" * MB, id="text-review-one-long-item"),
    pytest.param(_text_findings, "- Line 1: a\n" + "a\n" * (MB // 30), id="text-review-run-on"),
    pytest.param(_text_findings, "- Line 1: x\n" * (MB // 30), id="text-review-many-items"),
    pytest.param(_text_findings, "Line" + SPACES + "1: x", id="text-review-line-blanks"),
    pytest.param(_text_findings, "L" + DIGITS + ": x", id="text-review-long-number"),
    pytest.param(_text_findings, "Lines 1" + "-" * MB + "2: x", id="text-review-dashes"),
    pytest.param(_text_findings, "**`_" * (MB // 4) + "Line 1: x", id="text-review-emphasis"),
    pytest.param(_text_findings, "- Line 1: " + "`**" * (MB // 3), id="text-review-ticks-bold"),
    pytest.param(_text_findings, "- Line 1: " + "(" * MB, id="text-review-open-labels"),
    pytest.param(_text_findings, "- " * (MB // 2), id="text-review-markers"),
    pytest.param(_text_findings, "1. " * (MB // 3), id="text-review-numbers"),
    pytest.param(_text_findings, "```\n- Line 1: x\n" * (MB // 60), id="text-review-fences"),
    pytest.param(review_text.says_nothing_to_report, "no " * (MB // 3), id="text-review-noes"),
    pytest.param(
        review_text.says_nothing_to_report, "LGTM\n" * (MB // 5), id="text-review-lgtm-lines"
    ),
    pytest.param(
        _quietly(lambda s: review.parse_review(s, "x = 1\n", LineRange(0, 0), path="f.py")),
        "- Line 1: bug\n" * (MB // 30),
        id="review-text-list",
    ),
    pytest.param(
        _quietly(lambda s: review.parse_review(s, "x = 1\n", LineRange(0, 0), path="f.py")),
        "- Line 2: out of range\n" * (MB // 30),
        id="review-text-all-outside",
    ),
    # providers: vendor error messages and headers
    pytest.param(
        openai.CONTEXT_MESSAGE.search,
        "too large for model with " + DIGITS,
        id="context-message-digits",
    ),
    pytest.param(openai.parse_duration, DIGITS, id="openai-duration-digits"),
    pytest.param(openai.parse_duration, "1." * (MB // 2), id="openai-duration-dots"),
    pytest.param(openai.parse_duration, "1m" * (MB // 2), id="openai-duration-valid"),
    pytest.param(openai.parse_duration, "1m" * (MB // 2) + "x", id="openai-duration-then-junk"),
    pytest.param(openai.parse_duration, "1.5" * (MB // 3), id="openai-duration-no-unit"),
    pytest.param(anthropic.brief, "a." + SPACES + "x", id="anthropic-brief-blanks"),
    pytest.param(anthropic.brief, ". " * (MB // 2), id="anthropic-brief-stops"),
    pytest.param(gemini.brief, "a!" + "\t" * MB, id="gemini-brief-blanks"),
    pytest.param(gemini.parse_duration, "1" + SPACES + "x", id="gemini-duration-blanks"),
    pytest.param(gemini.parse_duration, "1." + DIGITS + "x", id="gemini-duration-digits"),
    pytest.param(local._RULE_CODE.match, "A" * MB, id="rule-code"),
    pytest.param(text_edit._SURROGATE.search, "a" * MB, id="surrogate"),
    pytest.param(pg.scrub, "://a:" + "b" * MB, id="pg-scrub-no-at"),
    pytest.param(pg.scrub, "://a:b/" * (MB // 7), id="pg-scrub-many-urls"),
    # the LSP framing: header fields from the client
    pytest.param(framing.parse_headers, b"a: x" + b" " * MB + b"x", id="frame-field-blanks"),
    pytest.param(framing.parse_headers, b"a: " + b" x" * (MB // 2), id="frame-field-words"),
    pytest.param(framing.parse_headers, b"content-length" * (MB // 14), id="frame-field-names"),
    pytest.param(
        lambda b: framing._HEADER_LINE.search(b), b"content-length:" + b" " * MB, id="frame-line"
    ),
]


@pytest.mark.parametrize(("apply", "text"), REGEXES)
def test_every_regex_is_linear_on_hostile_input(apply: Callable[[Any], object], text: Any) -> None:
    with deadline():
        apply(text)


# The patterns as they were before they were made linear: the new ones must agree with them on
# every input (these ran in quadratic time on long blank runs and digit runs; short inputs here).
OLD_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")
OLD_NUMBERS = re.compile(r"^@@+\s*-(\d+)(?:,(\d+))?(?:\s+\+(\d+)(?:,(\d+))?)?")
OLD_TIMESTAMP = re.compile(r"\s+\d{4}-\d\d-\d\d[ T]\d\d:\d\d\S*(?:\s+[-+]\d{4})?\s*$")
OLD_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
OLD_FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*:[ \t]*(.*?)[ \t]*", re.DOTALL)


def _old_duration(text: str) -> float | None:
    text = text.strip()
    if not text or OLD_DURATION.sub("", text):
        return None
    return sum(float(n) * openai._UNIT_S[u] for n, u in OLD_DURATION.findall(text))


def _same_match(a: re.Match[Any] | None, b: re.Match[Any] | None) -> bool:
    return (a and (a.span(), a.groups())) == (b and (b.span(), b.groups()))


def _strings(alphabet: str, n: int, longest: int, prefixes: tuple[str, ...] = ("",)) -> list[str]:
    rng = random.Random(12)
    return [
        rng.choice(prefixes) + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))
        for _ in range(n)
    ]


def test_the_linear_patterns_match_what_the_old_ones_matched() -> None:
    for s in _strings(" `~\tax\n", 30_000, 10):
        old, new = OLD_FENCE.match(s), diff_text._fence_at(s)
        assert (old and old.groups()) == (new and new.groups()), s
    for s in _strings("@ -+,0123\t", 30_000, 14):
        assert _same_match(OLD_NUMBERS.match(s), diff_text._NUMBERS.match(s)), s
    dates = ("", "a", " 2020-01-02 03:04", "\t2020-01-02T03:04:05 +0100", "f 2020-01-02 03:04")
    for s in _strings(" \t0123-T:+x\n", 30_000, 20, dates):
        assert OLD_TIMESTAMP.sub("", s) == diff_text._TIMESTAMP.sub("", s), s
    for s in _strings("01.mhs x", 30_000, 9):
        assert _old_duration(s) == openai.parse_duration(s), s
    for s in _strings("ab :\t\r\n-", 30_000, 10):
        raw = s.encode()
        assert _same_match(OLD_FIELD.fullmatch(raw), framing._FIELD.fullmatch(raw)), raw


# -- the patch gate's caps: lines added, hunk headers ---------------------------------------------

ONE_LINE = "x = 1\n"


def _validate(reply: str) -> patches.Patch:
    return patches.validate(ONE_LINE, reply, LineRange(0, 0), path="f.py", language="python")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            "--- a/f.py\n+++ b/f.py\n@@ -1,1 +1,1000001 @@\n x = 1\n" + "+y = 2\n" * 1_000_000,
            id="header-claims-a-million",
        ),
        pytest.param("```diff\n x = 1\n" + "+y = 2\n" * 1_000_000 + "```\n", id="bare-million"),
        pytest.param(
            "@@ -1 +1 @@\n x = 1\n" + "+y\n" * (caps.MAX_ADDED_LINES + 1), id="one-over-the-cap"
        ),
        pytest.param(
            "".join(f"@@ -1 +1 @@\n x = 1\n+{n}\n" for n in range(caps.MAX_ADDED_LINES + 1)),
            id="over-the-cap-in-many-hunks",
        ),
    ],
)
def test_a_patch_adding_too_many_lines_is_refused_cheaply(reply: str) -> None:
    with deadline(), pytest.raises(patches.TooLarge, match="too large") as refused:
        _validate(reply)
    assert f"{caps.MAX_ADDED_LINES:,} lines, the most" in str(refused.value) or (
        f"1,000,000 lines, over the {caps.MAX_ADDED_LINES:,} a patch may add" in str(refused.value)
    )
    tracemalloc.start()  # (slows allocation down several times: not under the deadline)
    try:
        with pytest.raises(patches.TooLarge):
            _validate(reply)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20  # the lines past the cap are never read (before: 1.2 GB)


def test_a_patch_at_the_cap_is_still_checked() -> None:
    reply = "@@ -1 +1,10001 @@\n x = 1\n" + "+y = 2\n" * caps.MAX_ADDED_LINES
    with deadline():
        patch = _validate(reply)
    assert patch.new_text.count("y = 2\n") == caps.MAX_ADDED_LINES


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("@@ -" + "9" * 5000 + " +1 @@", id="start-past-int-limit"),
        pytest.param("@@ -1,1 +1," + "9" * 20 + " @@", id="count-of-20-digits"),
    ],
)
def test_an_impossible_hunk_header_is_a_malformed_diff(header: str) -> None:
    with deadline(), pytest.raises(patches.MalformedDiff, match="impossible line number"):
        _validate(f"{header}\n-x = 1\n+x = 2\n")


# -- diagnostics: message length in prompts and titles, diagnostics per request ---------------------

LONG_MESSAGE = "pwd_" * 16_384  # 64 KB: blocked an unrelated request for 30.7 s


def _issue(message: str, line: int = 0) -> CodeIssue:
    return CodeIssue(TextRange(Position(line, 0), Position(line, 3)), message, "E1", "ruff", 1)


def test_a_long_diagnostic_message_is_clipped_in_the_prompt() -> None:
    source = Source("def f():\n    return 1\n")
    with deadline():
        _, user = prompts.fix_messages(
            "f.py", "python", source, [_issue(LONG_MESSAGE)], [LineRange(0, 1)]
        )
    (line,) = [ln for ln in user.content.splitlines() if ln.startswith("- line 1:")]
    assert line.endswith("…")
    assert len(line) < caps.MAX_MESSAGE_CHARS + 40  # "- line 1: error [ruff E1] " + message


URI = "file:///tmp/adversarial.py"


def _server() -> AceServer:
    """A server in process, initialized, with one document open at URI."""
    ls = create_server()
    proto = ls.protocol

    class Writer:
        def write(self, data: bytes) -> None:
            pass

    proto.set_writer(Writer())  # type: ignore[arg-type]
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    proto.handle_message(json.loads(json.dumps(init), object_hook=proto.structure_message))
    find(ls, Documents).store.open(URI, "python", 1, "import os\n" * 600)
    return ls


def _listing(diagnostics: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    ls = _server()
    uri = URI
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri),
        lsp.Range(lsp.Position(0, 0), lsp.Position(600, 0)),
        lsp.CodeActionContext(diagnostics=diagnostics),
    )
    return find(ls, code_actions.CodeActions).list_actions(params)


def _diagnostic(line: int, message: str = "`os` imported but unused") -> lsp.Diagnostic:
    return lsp.Diagnostic(
        lsp.Range(lsp.Position(line, 7), lsp.Position(line, 9)), message, code="F401", source="Ruff"
    )


def test_a_long_diagnostic_message_is_clipped_in_the_title() -> None:
    (action,) = [a for a in _listing([_diagnostic(0, LONG_MESSAGE)]) if a.kind == "quickfix"]
    assert action.title.startswith("Fix with ACE: pwd_pwd_")
    assert action.title.endswith("…")
    assert len(action.title) == len("Fix with ACE: ") + caps.MAX_TITLE_CHARS


def test_a_listing_offers_fixes_for_the_first_diagnostics_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    many = [_diagnostic(n) for n in range(caps.MAX_DIAGNOSTICS + 300)]
    with caplog.at_level(logging.WARNING), deadline():
        actions = _listing(many)
    fixes = [a for a in actions if a.kind == "quickfix"]
    (fix_all,) = [a for a in actions if a.kind == code_actions.FIX_ALL_KIND]
    assert len(fixes) == caps.MAX_DIAGNOSTICS
    assert f"({caps.MAX_DIAGNOSTICS} diagnostics)" in fix_all.title
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"A code action request carried {caps.MAX_DIAGNOSTICS + 300} diagnostics; "
        f"ACE offers fixes for the first {caps.MAX_DIAGNOSTICS}."
    ]


def test_a_fix_request_keeps_the_first_diagnostics_only(caplog: pytest.LogCaptureFixture) -> None:
    ls = _server()
    doc = find(ls, Documents).get(URI)
    assert doc is not None
    many = [_diagnostic(n) for n in range(caps.MAX_DIAGNOSTICS + 1)]
    with caplog.at_level(logging.WARNING):
        issues = fixing.to_issues(
            doc, [*many, lsp.Diagnostic(many[0].range, "x", source="ace")], ls.encoding
        )
    assert [i.range.start.line for i in issues] == list(range(caps.MAX_DIAGNOSTICS))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


# -- replies: cut off while they stream in, refused, memory flat ----------------------------------

REPLY_MB = 50
CHUNK = 64 * 1024


def _body(head: bytes, filler: bytes, tail: bytes, sent: list[int]) -> Iterator[bytes]:
    """`head`, then `filler` repeated to REPLY_MB megabytes, then `tail`, made as it is sent."""
    total = REPLY_MB * 2**20
    yield head
    sent[0] += len(head)
    piece = filler * max(CHUNK // len(filler), 1)
    while sent[0] < total:
        yield piece
        sent[0] += len(piece)
    yield tail


def _sse(event: bytes) -> bytes:
    return event + b"\n\n"


OPENAI_CHUNK = _sse(
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"' + b"x" * 900 + b'"},"finish_reason":null}]}'
)
ANTHROPIC_CHUNK = _sse(
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"' + b"x" * 900 + b'"}}'
)
GEMINI_CHUNK = _sse(
    b'data: {"candidates":[{"content":{"parts":[{"text":"'
    + b"x" * 900
    + b'"}],"role":"model"},"index":0}],"modelVersion":"gemini-1.5-flash"}'
)

# (provider kind, streamed, head, filler, tail, status, what the refusal names)
HUGE = [
    pytest.param(
        "openai",
        False,
        b'{"id":"c","object":"chat.completion","choices":[{"index":0,"message":'
        b'{"role":"assistant","content":"',
        b"x",
        b'"},"finish_reason":"stop"}]}',
        200,
        "a reply over 256 KB",
        id="openai-json-50MB",
    ),
    pytest.param(
        "openai", True, b"", OPENAI_CHUNK, b"", 200, "a reply over 64 KB", id="openai-sse"
    ),
    pytest.param(
        "openai",
        True,
        b'data: {"choices":[{"index":0,"delta":{"content":"',
        b"x",
        b'"}}]}\n\n',
        200,
        "one event over 256 KB",
        id="openai-sse-one-endless-line",
    ),
    pytest.param(
        "openai", True, b"", b": ping\n\n", b"", 200, "a stream over 4 MB", id="openai-keepalives"
    ),
    pytest.param(
        "openai",
        True,
        b"",
        b"data: " + b"x" * 100 + b"\n",
        b"",
        200,
        "one event over 256 KB",
        id="openai-sse-event-never-ends",
    ),
    pytest.param(
        "anthropic", True, b"", ANTHROPIC_CHUNK, b"", 200, "a reply over 64 KB", id="anthropic-sse"
    ),
    pytest.param(
        "anthropic",
        False,
        b'{"type":"message","content":[{"type":"text","text":"',
        b"x",
        b'"}]}',
        200,
        "a reply over 256 KB",
        id="anthropic-json-50MB",
    ),
    pytest.param(
        "gemini", True, b"", GEMINI_CHUNK, b"", 200, "a reply over 64 KB", id="gemini-sse"
    ),
    pytest.param(
        "gemini",
        False,
        b'{"candidates":[{"content":{"parts":[{"text":"',
        b"x",
        b'"}]}}]}',
        200,
        "a reply over 256 KB",
        id="gemini-json-50MB",
    ),
]


class HugeFake:
    """A vendor endpoint that answers every POST with the body the test sets, made lazily."""

    def __init__(self) -> None:
        self.body: Callable[[list[int]], Iterator[bytes]] = lambda sent: iter(())
        self.status = 200
        self.sent = [0]

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            await request.body()
            self.sent = [0]
            return StreamingResponse(
                self.body(self.sent), status_code=self.status, media_type="application/json"
            )

        return Starlette(routes=[Route("/{path:path}", handle, methods=["POST"])])


@pytest.fixture(scope="module")
def huge() -> Iterator[tuple[HugeFake, str]]:
    fake = HugeFake()
    with serve(fake.app()) as url:
        yield fake, url


MODEL = ModelSpec(
    id="m",
    provider="p",
    wire_name="gemini-1.5-flash",
    input_per_1k=0.0,
    output_per_1k=0.0,
    context_window=128_000,
    max_output=8192,
)
REQUEST = LLMRequest(TaskType.AUTO_FIX, (Message("user", "fix it"),), max_output_tokens=2048)


def _provider(kind: str, url: str) -> HttpProvider:
    classes: dict[str, type[HttpProvider]] = {
        "openai": openai.OpenAIProvider,
        "anthropic": anthropic.AnthropicProvider,
        "gemini": gemini.GeminiProvider,
    }
    settings = ProviderSettings(name=kind, kind=kind, base_url=url, api_key="k", read_timeout_s=30)
    return classes[kind](settings)


async def _ask(provider: HttpProvider, streamed: bool) -> str:
    if streamed:
        return "".join([c.text async for c in provider.stream(MODEL, REQUEST)])  # type: ignore[attr-defined]
    reply: ProviderReply = await provider.complete(MODEL, REQUEST)  # type: ignore[attr-defined]
    return reply.text


@pytest.mark.parametrize(("kind", "streamed", "head", "filler", "tail", "status", "said"), HUGE)
async def test_a_huge_reply_is_cut_off_early_and_refused(
    huge: tuple[HugeFake, str],
    kind: str,
    streamed: bool,
    head: bytes,
    filler: bytes,
    tail: bytes,
    status: int,
    said: str,
) -> None:
    fake, url = huge
    fake.status = status
    fake.body = lambda sent: _body(head, filler, tail, sent)
    provider = _provider(kind, url)
    t0 = time.perf_counter()
    try:
        with peak_rss() as grown, pytest.raises(BadResponse) as refused:
            await _ask(provider, streamed)
    finally:
        await provider.aclose()
    elapsed = time.perf_counter() - t0
    assert said in str(refused.value)
    assert str(refused.value).endswith("ACE stopped reading it.")
    assert elapsed < 5.0
    # memory stays flat (before: the whole body, then its decoded copy: 200 MB of RSS)
    assert grown[0] < 40 * 2**20, f"the peak RSS grew by {grown[0] / 2**20:.0f} MB"
    # the fake stops being read long before its end (only socket buffers fill up)
    await asyncio.sleep(0.05)
    assert fake.sent[0] < REPLY_MB * 2**20 // 2


async def test_a_huge_error_body_is_read_only_in_part(huge: tuple[HugeFake, str]) -> None:
    fake, url = huge
    fake.status = 500
    fake.body = lambda sent: _body(b'{"error": {"message": "', b"boom ", b'"}}', sent)
    provider = _provider("openai", url)
    try:
        with pytest.raises(ServerError, match=r"HTTP 500"):
            await _ask(provider, False)
    finally:
        await provider.aclose()
    assert fake.sent[0] < REPLY_MB * 2**20 // 2


@pytest.fixture(scope="module")
def normal_fake() -> Iterator[tuple[FakeVendor, str]]:
    vendor = FakeVendor()
    with serve(openai_app(vendor)) as url:
        yield vendor, f"{url}/v1"


@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
async def test_a_long_reply_within_the_cap_is_read_whole(
    normal_fake: tuple[FakeVendor, str], streamed: bool
) -> None:
    vendor, url = normal_fake
    text = ("+    value = compute(value)  # é\n" * 2000)[: caps.reply_bytes(2048) - 4096]
    vendor.inject("*", Fault(text=text))
    settings = ProviderSettings(name="openai", kind="openai", base_url=url, api_key=KEY)
    provider = openai.OpenAIProvider(settings)
    try:
        assert await _ask(provider, streamed) == text
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    ("feeds", "lines"),
    [
        pytest.param(["a\r", "\nb\n"], ["a", "b"], id="crlf-split-across-reads"),
        pytest.param(["a\r", "", "\nb\r"], ["a", "b"], id="crlf-split-by-an-empty-read"),
        pytest.param(["a\rb\n\nc"], ["a", "b", "", "c"], id="cr-lf-blank-and-unfinished"),
        pytest.param(["da", "ta: x", "yz\r\n\r\n"], ["data: xyz", ""], id="line-in-pieces"),
    ],
)
def test_stream_lines_end_as_the_sse_spec_says(feeds: list[str], lines: list[str]) -> None:
    reader = SSELines()
    got = [line for text in feeds for line in reader.feed(text)]
    assert got + reader.end() == lines


def test_stream_readers_say_how_much_they_hold() -> None:
    reader, decoder = SSELines(), SSEDecoder()
    reader.feed("data: " + "x" * 10)
    reader.feed("x" * 10)
    assert reader.pending == 26
    decoder.feed("data: abc")
    decoder.feed("data: de")
    assert decoder.pending == 7
    assert decoder.feed("") is not None and decoder.pending == 0


def test_sse_line_reading_is_linear() -> None:
    reader = SSELines()
    with deadline():
        for _ in range(100):
            reader.feed("\r" * 10_000 + "x" * 10_000)
        reader.feed("\n" * MB)


# -- masking and the patch gate run off the event loop, within a time limit ------------------------


ONLY_A = CallOptions(models=("a",))


class Ticker:
    """Counts how often the event loop gets to run a task while something else works."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def __enter__(self) -> Ticker:
        self._task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def _busy(seconds: float) -> None:
    """Python work holding the CPU (the GIL is still handed over, as for any Python code)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _slow_check(seconds: float) -> Callable[[ProviderReply], str]:
    def check(reply: ProviderReply) -> str:
        if reply.text == "slow":
            _busy(seconds)
        return reply.text

    return check


async def test_the_patch_gate_runs_off_the_event_loop() -> None:
    orch = Orchestrator(Registry([model("a")]), {"a": Scripted("a", ["slow"])})  # type: ignore[dict-item]
    with Ticker() as ticker:
        called = await orch.call(REQUEST, _slow_check(0.6), ONLY_A)
    assert called.value == "slow"
    assert ticker.ticks >= 10  # on the loop, the check would have let it run 0 times


async def test_a_check_past_the_time_limit_refuses_the_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caps, "CHECK_TIMEOUT_S", 0.2)
    scripts = {"a": Scripted("a", ["slow"]), "b": Scripted("b", ["fast"])}
    orch = Orchestrator(Registry([model("a"), model("b")]), scripts)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    called = await orch.call(REQUEST, _slow_check(1.0), CallOptions(models=("a", "b")))
    assert time.perf_counter() - t0 < 0.9
    assert called.value == "fast"
    first = called.result.attempts[0]
    assert (first.outcome, first.reason) == (
        "check_timeout",
        "Checking a's reply took over 0.2 s; ACE refused it.",
    )


def _slow_mask(seconds: float) -> Callable[[str], Any]:
    real = prompts.mask

    def mask(text: str) -> Any:
        _busy(seconds)
        return real(text)

    return mask


async def test_masking_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "mask", _slow_mask(0.3))
    orch = Orchestrator(
        Registry([model("a")]),
        {"a": Scripted("a", ["@@ -1 +1 @@\n-x == None\n+x is None\n"])},  # type: ignore[dict-item]
    )
    with Ticker() as ticker:
        fix = await ace_auto_fix(
            orch,
            FixContext("f.py", "x == None\n", language="python", options=ONLY_A),
            [_issue("E711")],
        )
    assert fix.patch.new_text == "x is None\n"
    assert ticker.ticks >= 10


async def test_masking_past_the_time_limit_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prompts, "mask", _slow_mask(1.0))
    monkeypatch.setattr(caps, "CHECK_TIMEOUT_S", 0.2)
    provider = Scripted("a", [])
    orch = Orchestrator(Registry([model("a")]), {"a": provider})  # type: ignore[dict-item]
    with pytest.raises(CheckTimeout) as refused:
        await ace_auto_fix(orch, FixContext("f.py", "x = 1\n", options=ONLY_A), [_issue("E1")])
    assert str(refused.value) == (
        "Masking secrets in f.py took over 0.2 s; ACE sent nothing to a model."
    )
    assert provider.calls == []


async def test_a_fix_cancelled_during_its_check_stops_at_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    orch = Orchestrator(Registry([model("a")]), {"a": Scripted("a", ["slow"])}, ledger=ledger)  # type: ignore[dict-item]
    started = threading.Event()

    def check(reply: ProviderReply) -> str:
        started.set()
        _busy(1.0)
        return reply.text

    task = asyncio.ensure_future(orch.call(REQUEST, check, ONLY_A))
    await until(started.is_set, "the check to start")
    t0 = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - t0 < 0.5  # the check goes on in its thread; nobody waits for it
    await ledger.flush()
    (row,) = await ledger.recent()
    assert row.outcome == "cancelled"
    await ledger.close()
