"""Code review: reading findings from replies as models write them, and ace_review end to end."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator import caps
from ace_lsp.orchestrator.ace import FixContext, ace_review
from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.code import review_text
from ace_lsp.orchestrator.code.review import InvalidReview, parse_review
from ace_lsp.orchestrator.errors import NoFix
from ace_lsp.orchestrator.registry import Registry
from ace_lsp.orchestrator.types import LineRange, Position, TextRange
from tests.scripted import Scripted, model

CODE = "def mean(values):\n    if values == None:\n        return 0\n    return sum(values) / len(values)\n"
LINES = LineRange(0, 3)
PATCH = "--- a/m.py\n+++ b/m.py\n@@ -2,1 +2,1 @@\n-    if values == None:\n+    if not values:\n"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param('```json\n{"findings": []}\n```', [], id="empty"),
        pytest.param(
            'Review:\n```json\n{"findings": [{"line": 4, "severity": "error", '
            '"message": "Divides by zero on an empty list."}]}\n```\nHope this helps.',
            [(3, 3, "error", "Divides by zero on an empty list.", False)],
            id="fenced-with-prose",
        ),
        pytest.param(
            '{"findings": [{"line": 2, "end_line": 3, "severity": "Warning", "message": "Use is None.",'
            f' "patch": {PATCH!r}}}]}}'.replace("'", '"'),
            [(1, 2, "warning", "Use is None.", True)],
            id="bare-with-patch",
        ),
        pytest.param(
            '{"findings": [{"line": 99, "message": "Past the end."}]}',
            [(3, 3, "warning", "Past the end.", False)],
            id="clamped-default-severity",
        ),
        pytest.param(
            '{"findings": [{"line": 2, "message": "Bad patch kept without it.", '
            '"patch": "--- a/m.py\\n+++ b/m.py\\n@@ -9 +9 @@\\n-nope\\n+x\\n"}]}',
            [(1, 1, "warning", "Bad patch kept without it.", False)],
            id="invalid-patch-dropped",
        ),
    ],
)
def test_parse_review(reply: str, expected: list[tuple[int, int, str, str, bool]]) -> None:
    findings = parse_review(reply, CODE, LINES, path="m.py", language="python")
    got = [
        (f.lines.start, f.lines.end, f.severity, f.message, f.patch is not None) for f in findings
    ]
    assert got == expected


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        pytest.param("I would refactor this.", "holds no JSON object", id="prose"),
        pytest.param("{findings: []}", "not valid JSON", id="bad-json"),
        pytest.param('{"findings": [{"message": "no line"}]}', "findings.0.line", id="no-line"),
        pytest.param(
            '{"findings": [{"line": 1, "severity": "fatal", "message": "x"}]}',
            "findings.0.severity",
            id="bad-severity",
        ),
    ],
)
def test_unreadable_reviews_are_refused(reply: str, reason: str) -> None:
    with pytest.raises(InvalidReview) as info:
        parse_review(reply, CODE, LINES, path="m.py")
    assert reason in info.value.reason and info.value.kind == "invalid_review"


# -- reviews written as text: the fallback when a reply holds no readable JSON ------------------

# The reviewed function is lines 4-8 (1-based); the file goes on past it.
TEXT_CODE = """\
import os


def mean(values):
    if values == None:
        return 0.0
    total = sum(value for value in values)
    return total / len(value)


def unused():
    pass
"""
TEXT_LINES = LineRange(3, 7)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            "Here is my review:\n\n"
            "- Line 8: `len(value)` uses an undefined name; it should be `values`.\n"
            "- Line 5: compare to `None` with `is`.\n",
            [
                (7, 7, "error", "`len(value)` uses an undefined name; it should be `values`."),
                (4, 4, "info", "compare to `None` with `is`."),
            ],
            id="dash-bullets",
        ),
        pytest.param(
            "* **Line 5**: Use `is None`; `==` might be overridden.\n"
            "* **Line 8:** Crashes with ZeroDivisionError when `values` is empty.",
            [
                (4, 4, "warning", "Use `is None`; `==` might be overridden."),
                (7, 7, "error", "Crashes with ZeroDivisionError when `values` is empty."),
            ],
            id="star-bullets-bold",
        ),
        pytest.param(
            "1. Line 7: The generator is needless;\n"
            "   `sum(values)` reads better (minor).\n"
            "2) Line 8: `value` is undefined.",
            [
                (6, 6, "hint", "The generator is needless; `sum(values)` reads better (minor)."),
                (7, 7, "error", "`value` is undefined."),
            ],
            id="numbered-with-continuation",
        ),
        pytest.param(
            "Lines 5-6: An empty list returns 0.0 but `None` should raise.\n"
            "L7-8: Consider `statistics.fmean`.",
            [
                (4, 5, "warning", "An empty list returns 0.0 but `None` should raise."),
                (6, 7, "warning", "Consider `statistics.fmean`."),
            ],
            id="ranges",
        ),
        pytest.param(
            "- L5\u20136 \u2014 Returning 0.0 hides the empty input.\n"
            "- line 8 \u2014 bug: `value` is not `values`.",
            [
                (4, 5, "info", "Returning 0.0 hides the empty input."),
                (7, 7, "error", "`value` is not `values`."),
            ],
            id="en-dash-range-em-dash-separator",
        ),
        pytest.param(
            "`L8`: _NameError: name 'value' is not defined._\n"
            "**Lines 7\u20138** \u2013 *Style:* one line would do.",
            [
                (7, 7, "error", "NameError: name 'value' is not defined."),
                (6, 7, "hint", "one line would do."),
            ],
            id="backticks-italics-labels",
        ),
        pytest.param(
            "Overall the function is fine. A few notes:\n\n"
            "Line 5: nit: use `is None`.\n\n"
            "The loop on line 7 could be simpler, but it works.\n"
            "Line 8 \u2014 NameError: `value` is not defined.\n\n"
            "Hope this helps!",
            [
                (4, 4, "hint", "use `is None`."),
                (7, 7, "error", "NameError: `value` is not defined."),
            ],
            id="mixed-prose",
        ),
        pytest.param(
            "- Line 5 (warning): `== None` calls `__eq__`.\n"
            "- Line 8 [error] `value` is unbound\n"
            "- **Line 6** - Note: returning 0.0 for no values is a choice.",
            [
                (4, 4, "warning", "`== None` calls `__eq__`."),
                (7, 7, "error", "`value` is unbound"),
                (5, 5, "info", "returning 0.0 for no values is a choice."),
            ],
            id="explicit-labels",
        ),
        pytest.param(
            "- Line 6 - l10n: the 0.0 is not localised.\n- Line 7th: not a reference.",
            [(5, 5, "info", "l10n: the 0.0 is not localised.")],
            id="dash-before-a-word-that-is-not-a-range",
        ),
        pytest.param(
            "- Line 2: `os` is imported but unused.\n"
            "- Lines 7-12: This and `unused` should go.\n"
            "- Line 3-5: The blank lines and the check could merge.",
            [
                (6, 7, "warning", "This and `unused` should go."),
                (3, 4, "info", "The blank lines and the check could merge."),
            ],
            id="outside-dropped-ranges-clamped",
        ),
        pytest.param(
            "- Line 8: `value` is an undefined name. Fix:\n"
            "  ```python\n"
            "  line 9: return total / len(values)\n"
            "  ```\n",
            [(7, 7, "error", "`value` is an undefined name. Fix:")],
            id="fenced-code-ignored",
        ),
        pytest.param(
            "### Line 8: Undefined name\n`value` is never bound here; use `values`.\n\n"
            "### Suggestions\n- Add a docstring.",
            [(7, 7, "error", "Undefined name `value` is never bound here; use `values`.")],
            id="heading-per-finding",
        ),
        pytest.param(
            '```json\n{"findings": [\n```\nSorry, the JSON broke. Plainly:\n'
            "- L8: `value` is undefined.",
            [(7, 7, "error", "`value` is undefined.")],
            id="broken-json-then-list",
        ),
        pytest.param(
            '{"findings": [{"line": 5, "message": "JSON wins."}]}\n- Line 8: ignored.',
            [(4, 4, "warning", "JSON wins.")],
            id="json-first",
        ),
        pytest.param("No issues found.", [], id="no-issues"),
        pytest.param("LGTM", [], id="lgtm"),
        pytest.param("Looks good to me!", [], id="looks-good"),
        pytest.param(
            "I don't see any problems with this function; it handles the empty case.",
            [],
            id="no-problems-prose",
        ),
    ],
)
def test_a_review_written_as_text(reply: str, expected: list[tuple[int, int, str, str]]) -> None:
    findings = parse_review(reply, TEXT_CODE, TEXT_LINES, path="m.py", language="python")
    got = [(f.lines.start, f.lines.end, f.severity, f.message) for f in findings]
    assert got == expected
    assert all(f.patch is None for f in findings)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        pytest.param("Hello from the fake.", "holds no JSON object", id="greeting"),
        pytest.param(
            "The loop is slow.\n- Rename `mean`.\n- Maybe add types.",
            "holds no JSON object",
            id="list-without-lines",
        ),
        pytest.param(
            "- Line 1: `os` is unused.\n- L11: `unused` is never called.",
            "all outside lines 4-8",
            id="all-outside",
        ),
        pytest.param("Looks good, but line 8 needs a guard.", "no JSON", id="hedged-all-clear"),
        pytest.param("The function has no error handling.", "no JSON", id="no-error-handling"),
        pytest.param("Line 0: nothing there.\nLine8x: no.", "no JSON", id="not-line-numbers"),
        pytest.param(
            '{"findings": [{"message": "no issues"}]}', "findings.0.line", id="json-says-no-issues"
        ),
        pytest.param("- Line 8:\n- Line 5: **", "no JSON", id="empty-messages"),
    ],
)
def test_a_text_review_without_findings_is_refused(reply: str, reason: str) -> None:
    with pytest.raises(InvalidReview) as info:
        parse_review(reply, TEXT_CODE, TEXT_LINES, path="m.py")
    assert reason in info.value.reason and info.value.kind == "invalid_review"


def test_a_text_review_is_bounded() -> None:
    many = "".join(f"- Line 8: bug number {n}.\n" for n in range(caps.MAX_TEXT_FINDINGS + 20))
    findings = parse_review(many, TEXT_CODE, TEXT_LINES, path="m.py")
    assert len(findings) == caps.MAX_TEXT_FINDINGS
    assert findings[-1].message == f"bug number {caps.MAX_TEXT_FINDINGS - 1}."

    long = "- Line 8: " + "word " * 1000 + "\n  " + "more " * 1000
    (finding,) = parse_review(long, TEXT_CODE, TEXT_LINES, path="m.py")
    assert len(finding.message) == caps.MAX_FINDING_CHARS and finding.message.endswith("\u2026")


def test_findings_before_the_span_do_not_use_up_the_bound() -> None:
    before = "- Line 1: unused import.\n" * (caps.MAX_TEXT_FINDINGS + 5)
    findings = parse_review(
        before + "- Line 8: undefined name.", TEXT_CODE, TEXT_LINES, path="m.py"
    )
    assert [(f.lines.start, f.message) for f in findings] == [(7, "undefined name.")]


@pytest.mark.parametrize(
    ("message", "severity"),
    [
        ("Raises TypeError on strings.", "error"),
        ("A security hole: the path is not checked.", "error"),
        ("Might return early.", "warning"),
        ("Minor: the name could be clearer.", "hint"),
        ("Consider a style that reads better.", "hint"),
        ("Returns a float.", "info"),
        ("`undefined_name` and `bug()` are code, not words.", "info"),
    ],
)
def test_severity_from_words(message: str, severity: str) -> None:
    (finding,) = review_text.findings(f"- Line 1: {message}")
    assert finding.severity == severity


async def test_ace_review_falls_back_on_an_unreadable_review() -> None:
    review_model = {"tasks": ("CODE_REVIEW",)}
    providers = {
        "a": Scripted("a", ["I would refactor this."]),
        "b": Scripted(
            "b", ['{"findings": [{"line": 4, "severity": "error", "message": "Empty list."}]}']
        ),
    }
    orch = Orchestrator(
        Registry([model("a", **review_model), model("b", **review_model)]), providers
    )
    review = await ace_review(
        orch,
        FixContext("m.py", CODE, language="python", options=CallOptions(models=("a", "b"))),
        TextRange(Position(3, 4), Position(3, 5)),
    )
    assert review.span.name == "mean" and review.span.lines == LINES
    assert [(f.lines.start, f.severity) for f in review.findings] == [(3, "error")]
    assert [a.outcome for a in review.attempts] == ["invalid_review", "ok"]
    assert review.model == "b"


async def test_review_offline_says_a_cloud_model_is_needed() -> None:
    from ace_lsp.orchestrator.call import default_orchestrator

    with pytest.raises(NoFix) as info:
        await ace_review(
            default_orchestrator(),
            FixContext("m.py", CODE),
            TextRange(Position(1, 0), Position(1, 1)),
        )
    assert "CODE_REVIEW" in info.value.reason
