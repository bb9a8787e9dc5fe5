"""Review as an LSP feature, its pure parts: cache keys and bounds, findings as diagnostics,
hover Markdown, the command's summary, and following a reviewed span through edits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from lsprotocol import types as lsp

from ace_lsp.orchestrator.ace import Review
from ace_lsp.orchestrator.code import patches, spans
from ace_lsp.orchestrator.code.review import Finding
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import LineRange, Position, TextRange, Tier
from ace_lsp.server.base import FixFailed
from ace_lsp.server.documents import DocState
from ace_lsp.server.hover import lines_label, render
from ace_lsp.server.positions import SourceLines
from ace_lsp.server.review import (
    Cached,
    ReviewCache,
    Shown,
    _arguments,
    rebase,
    relocate,
    review_key,
    span_text,
    summary,
    to_diagnostic,
)
from tests.edits import apply_edits

CODE = """\
import os


def mean(values):
    if values == None:
        return 0.0
    return sum(values) / len(values)  # ∅ → 💥


class Greeter:
    def greet(self, name):
        return "Hello, " + name
"""
PATCH = (
    "--- a/stats.py\n+++ b/stats.py\n@@ -5,1 +5,1 @@\n"
    "-    if values == None:\n+    if values is None:\n"
)
PATH = "/src/stats.py"


def doc(text: str = CODE, version: int = 1) -> DocState:
    source = Source(text)
    return DocState(
        "file:///src/stats.py", version, "python", source, spans.parse(source, "python"), None
    )


def span_of(state: DocState, line: int) -> spans.Span:
    return spans.extract(state.source, "python", TextRange(Position(line, 8), Position(line, 8)))


def a_review(findings: tuple[Finding, ...] = (), cost: float = 0.0042) -> Review:
    return Review(PATH, span_of(doc(), 5), findings, "claude-3-5-sonnet", cost, ())


def shown(state: DocState, review: Review) -> Shown:
    span = review.span
    return Shown(
        review, span_text(state.source, span), state.version, span.start_byte, span.start_line, 1
    )


# -- cache ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param((b"def f(): pass", "python", Tier.PRO), True, id="identical"),
        pytest.param((b"def f():  pass", "python", Tier.PRO), False, id="text"),
        pytest.param((b"def f(): pass", "cython", Tier.PRO), False, id="language"),
        pytest.param((b"def f(): pass", "python", Tier.FREE), False, id="tier"),
        pytest.param((b"def f(): pass", None, Tier.PRO), False, id="no-language"),
    ],
)
def test_review_key(other: tuple[bytes, str | None, Tier], same: bool) -> None:
    key = review_key(b"def f(): pass", "python", Tier.PRO)
    assert (review_key(*other) == key) is same
    assert len(key) == 64


def test_cache_drops_the_least_recently_used() -> None:
    cache = ReviewCache(entries=2)
    item = Cached(a_review(), "file:///a.py", 1)
    cache.put("a", item)
    cache.put("b", item)
    assert cache.get("a") is item  # "a" is now the most recent
    cache.put("c", item)
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True)
    assert len(cache) == 2


def test_cache_is_bounded_in_bytes() -> None:
    review = a_review()
    size = Cached(review, "u", 1).size
    assert size == review.span.end_byte - review.span.start_byte
    cache = ReviewCache(entries=100, max_bytes=size * 2)
    for key in "abc":
        cache.put(key, Cached(review, "u", 1))
    assert len(cache) == 2 and "a" not in cache
    cache.put("b", Cached(review, "u", 2))  # replacing an entry does not count it twice
    assert len(cache) == 2


# -- diagnostics ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        pytest.param("error", lsp.DiagnosticSeverity.Error, id="error"),
        pytest.param("warning", lsp.DiagnosticSeverity.Warning, id="warning"),
        pytest.param("info", lsp.DiagnosticSeverity.Information, id="info"),
        pytest.param("hint", lsp.DiagnosticSeverity.Hint, id="hint"),
        pytest.param("critical", lsp.DiagnosticSeverity.Warning, id="unknown"),
    ],
)
def test_severity(severity: str, expected: lsp.DiagnosticSeverity) -> None:
    d = to_diagnostic(Source(CODE), Finding(LineRange(4, 4), severity, "m."), "utf-16")
    assert (d.severity, d.source, d.code, d.message) == (expected, "ace", "ace-review", "m.")


@pytest.mark.parametrize(
    ("lines", "delta", "encoding", "expected"),
    [
        pytest.param(LineRange(4, 4), 0, "utf-16", ((4, 4), (4, 22)), id="from-indent"),
        pytest.param(LineRange(3, 6), 0, "utf-16", ((3, 0), (6, 46)), id="multi-line"),
        pytest.param(LineRange(6, 6), 0, "utf-8", ((6, 4), (6, 52)), id="utf8-end"),
        pytest.param(LineRange(6, 6), 0, "utf-32", ((6, 4), (6, 45)), id="utf32-end"),
        pytest.param(LineRange(2, 2), 2, "utf-16", ((4, 4), (4, 22)), id="shifted"),
    ],
)
def test_diagnostic_range(
    lines: LineRange, delta: int, encoding: str, expected: tuple[tuple[int, int], ...]
) -> None:
    d = to_diagnostic(Source(CODE), Finding(lines, "error", "m."), encoding, delta)
    got = ((d.range.start.line, d.range.start.character), (d.range.end.line, d.range.end.character))
    assert got == expected


def test_source_lines() -> None:
    lines = SourceLines(Source("a\r\nb\nc"))
    assert (len(lines), lines[0], lines[-1], list(lines), lines[1:]) == (
        3,
        "a",
        "c",
        ["a", "b", "c"],
        ["b", "c"],
    )
    with pytest.raises(IndexError):
        lines[3]


# -- hover and summary ---------------------------------------------------------------------------


FINDINGS = (
    Finding(LineRange(6, 6), "error", "Divides by zero\n  on an empty list."),
    Finding(LineRange(3, 6), "info", "Add a docstring."),
)


@pytest.mark.parametrize(
    ("review", "expected"),
    [
        pytest.param(
            a_review(FINDINGS),
            "### ACE review: function `mean`\n\n"
            "- **error** line 7: Divides by zero on an empty list.\n"
            "- **info** line 4\N{EN DASH}7: Add a docstring.\n\n"
            "_claude-3-5-sonnet · $0.0042_",
            id="findings",
        ),
        pytest.param(
            a_review(cost=0.0),
            "### ACE review: function `mean`\n\nNo findings.\n\n_claude-3-5-sonnet · $0.00_",
            id="no-findings",
        ),
        pytest.param(
            replace(
                a_review(),
                span=spans.Span("window", None, None, 0, 20, 0, 100, "python"),
            ),
            "### ACE review: lines 1\N{EN DASH}21\n\nNo findings.\n\n_claude-3-5-sonnet · $0.0042_",
            id="window",
        ),
    ],
)
def test_render(review: Review, expected: str) -> None:
    assert render(review) == expected


@pytest.mark.parametrize(
    ("lines", "label"),
    [(LineRange(0, 0), "line 1"), (LineRange(11, 13), "line 12\N{EN DASH}14")],
)
def test_lines_label(lines: LineRange, label: str) -> None:
    assert lines_label(lines) == label


def test_summary() -> None:
    patch = patches.validate(CODE, PATCH, LineRange(3, 6), path=PATH, language="python")
    review = a_review((*FINDINGS, Finding(LineRange(4, 4), "warning", "Use is.", patch)))
    assert summary(review, cached=True) == {
        "model": "claude-3-5-sonnet",
        "costUsd": 0.0042,
        "cached": True,
        "findings": [
            {
                "line": 7,
                "endLine": 7,
                "severity": "error",
                "message": "Divides by zero\n  on an empty list.",
                "hasPatch": False,
            },
            {
                "line": 4,
                "endLine": 7,
                "severity": "info",
                "message": "Add a docstring.",
                "hasPatch": False,
            },
            {
                "line": 5,
                "endLine": 5,
                "severity": "warning",
                "message": "Use is.",
                "hasPatch": True,
            },
        ],
    }


@pytest.mark.parametrize(
    "args",
    [
        pytest.param((), id="none"),
        pytest.param(({"uri": "file:///a.py"},), id="no-range"),
        pytest.param(({"uri": "file:///a.py", "range": {"start": 3}},), id="bad-range"),
        pytest.param(("file:///a.py",), id="not-an-object"),
    ],
)
def test_bad_command_arguments(args: tuple[Any, ...]) -> None:
    with pytest.raises(FixFailed, match=r"ace\.review takes"):
        _arguments(args)


def test_command_arguments_nested_in_a_list() -> None:
    rng = {"start": {"line": 1, "character": 2}, "end": {"line": 1, "character": 2}}
    uri, got = _arguments(([{"uri": "file:///a.py", "range": rng}],))
    assert uri == "file:///a.py" and got == lsp.Range(lsp.Position(1, 2), lsp.Position(1, 2))


# -- following a reviewed span -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(CODE, 3, id="same-text-new-version"),
        pytest.param("# one\n# two\n" + CODE, 5, id="moved-down"),
        pytest.param(CODE.replace("import os\n", ""), 2, id="moved-up"),
        pytest.param(CODE.replace('"Hello, "', '"Hi, "'), 3, id="edited-elsewhere"),
        pytest.param(CODE + "\n\ndef mean(values):\n    return 0\n", 3, id="nearest-copy"),
        pytest.param(CODE.replace("return 0.0", "return 1.0"), None, id="edited-inside"),
        pytest.param(
            CODE.replace("len(values)  # ∅ → 💥\n", "len(values)  # ∅ → 💥\n    pass\n"),
            None,
            id="grown-at-its-end",
        ),
        pytest.param(CODE.replace("def mean", "@cache\ndef mean"), None, id="decorated"),
        pytest.param("", None, id="emptied"),
    ],
)
def test_relocate(text: str, line: int | None) -> None:
    review = a_review()
    moved = relocate(shown(doc(), review), doc(text, 2), PATH)
    if line is None:
        assert moved is None
    else:
        assert moved is not None and moved.seen == 2 and moved.version == 1
        assert (moved.start_line, moved.delta) == (line, line - 3)


def test_relocate_same_version_is_free() -> None:
    entry = shown(doc(), a_review())
    assert relocate(entry, doc(), PATH) is entry


def test_rebase_moves_findings_and_revalidates_patches() -> None:
    patch = patches.validate(CODE, PATCH, LineRange(3, 6), path=PATH, language="python")
    review = a_review((Finding(LineRange(4, 4), "warning", "Use is.", patch), *FINDINGS))
    moved_text = "# one\n# two\n" + CODE
    moved = doc(moved_text, 2)
    span = span_of(moved, 7)
    rebased = rebase(review, span, moved, "/src/copy.py")
    assert rebased.span == span and rebased.path == "/src/copy.py"
    assert [f.lines for f in rebased.findings] == [
        LineRange(6, 6),
        LineRange(8, 8),
        LineRange(5, 8),
    ]
    fixed = rebased.findings[0].patch
    assert fixed is not None
    assert apply_edits(moved_text, fixed.edits) == moved_text.replace("== None", "is None")
    assert fixed.new_text == moved_text.replace("== None", "is None")


def test_rebase_drops_a_patch_that_no_longer_applies() -> None:
    # The diff's context reaches outside the span; elsewhere that context differs.
    wide = (
        "--- a/stats.py\n+++ b/stats.py\n@@ -3,3 +3,3 @@\n \n def mean(values):\n"
        "-    if values == None:\n+    if values is None:\n"
    )
    patch = patches.validate(CODE, wide, LineRange(3, 6), path=PATH, language="python")
    review = a_review((Finding(LineRange(4, 4), "warning", "Use is.", patch),))
    other_text = "x = 1\ndef mean(values):" + CODE.split("def mean(values):")[1]
    other = doc(other_text, 2)
    rebased = rebase(review, span_of(other, 3), other, PATH)
    assert rebased.findings[0].patch is None
    assert rebased.findings[0].lines == LineRange(2, 2)
