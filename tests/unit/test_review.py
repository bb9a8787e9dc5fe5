"""Code review: reading findings from replies as models write them, and ace_review end to end."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.ace import FixContext, ace_review
from ace_lsp.orchestrator.call import CallOptions, Orchestrator
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
        pytest.param("Looks good to me!", "holds no JSON object", id="prose"),
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
