"""ace_auto_fix and its pure parts: allowed ranges by risk level, and the chain of attempts."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.ace import FixContext, ace_auto_fix, allowed_ranges, merge
from ace_lsp.orchestrator.call import CallOptions, Orchestrator, default_orchestrator
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.code.verify import Status
from ace_lsp.orchestrator.errors import InputError, NoFix, ServerError
from ace_lsp.orchestrator.registry import Registry
from ace_lsp.orchestrator.types import (
    CodeIssue,
    LineRange,
    Position,
    RiskLevel,
    TextRange,
)
from tests.scripted import Scripted, model

CODE = """\
import os


class Stats:
    def mean(self, values):
        if values == None:
            return 0.0
        return sum(values) / len(values)

    def size(self, values):
        return len(values)


def helper():
    return os.getcwd()
"""


def at(line: int, code: str = "E711") -> CodeIssue:
    return CodeIssue(TextRange(Position(line, 4), Position(line, 8)), "msg", code, "ruff")


@pytest.mark.parametrize(
    ("risk", "issues", "expected"),
    [
        pytest.param(RiskLevel.CONSERVATIVE, [at(5)], [LineRange(3, 7)], id="conservative"),
        pytest.param(
            RiskLevel.CONSERVATIVE, [at(0)], [LineRange(0, 2)], id="conservative-clip-top"
        ),
        pytest.param(
            RiskLevel.CONSERVATIVE, [at(14)], [LineRange(12, 14)], id="conservative-clip-end"
        ),
        pytest.param(RiskLevel.CONSERVATIVE, [at(5), at(7)], [LineRange(3, 9)], id="merged"),
        pytest.param(
            RiskLevel.CONSERVATIVE,
            [at(0), at(14)],
            [LineRange(0, 2), LineRange(12, 14)],
            id="kept-apart",
        ),
        pytest.param(RiskLevel.BALANCED, [at(5)], [LineRange(4, 7)], id="balanced-method"),
        pytest.param(
            RiskLevel.BALANCED,
            [at(5), at(14)],
            [LineRange(4, 7), LineRange(13, 14)],
            id="balanced-two-scopes",
        ),
        pytest.param(RiskLevel.AGGRESSIVE, [at(5)], [LineRange(0, 14)], id="aggressive"),
    ],
)
def test_allowed_ranges(
    risk: RiskLevel, issues: list[CodeIssue], expected: list[LineRange]
) -> None:
    assert list(allowed_ranges(Source(CODE), "python", issues, risk)) == expected


def test_merge_joins_touching_ranges() -> None:
    assert merge([LineRange(5, 6), LineRange(0, 1), LineRange(2, 3), LineRange(9, 9)]) == (
        LineRange(0, 3),
        LineRange(5, 6),
        LineRange(9, 9),
    )


async def test_auto_fix_offline() -> None:
    orch = default_orchestrator()
    fix = await ace_auto_fix(orch, FixContext("stats.py", CODE), [at(5)])
    assert fix.model == "local" and fix.cost_usd == 0
    assert fix.patch.new_text == CODE.replace("values == None", "values is None")
    assert [a.outcome for a in fix.attempts] == ["ok"]


async def test_auto_fix_needs_issues() -> None:
    with pytest.raises(InputError, match="no diagnostics"):
        await ace_auto_fix(default_orchestrator(), FixContext("s.py", CODE), [])


AB = CallOptions(models=("a", "b"), max_retries=0)
ABC = CallOptions(models=("a", "b", "c"), max_retries=0)

GOOD = """Here is the fix:
```diff
--- a/stats.py
+++ b/stats.py
@@ -6,1 +6,1 @@
-        if values == None:
+        if values is None:
```
"""
OUTSIDE = GOOD.replace(
    "@@ -6,1 +6,1 @@\n-        if values == None:\n+        if values is None:",
    "@@ -1,1 +1,1 @@\n-import os\n+import sys",
)


async def test_falls_back_on_error_and_on_a_bad_patch() -> None:
    providers = {
        "a": Scripted("a", [ServerError("The server answered 503.")]),
        "b": Scripted("b", [OUTSIDE]),
        "c": Scripted("c", [GOOD]),
    }
    orch = Orchestrator(
        Registry([model("a"), model("b"), model("c")]),
        providers,
    )
    fix = await ace_auto_fix(orch, FixContext("stats.py", CODE, options=ABC), [at(5)])
    assert [(a.model, a.outcome) for a in fix.attempts] == [
        ("a", "server_error"),
        ("b", "invalid_patch"),
        ("c", "ok"),
    ]
    assert fix.model == "c"
    assert fix.attempts[0].cost_usd == 0  # no reply, nothing billed
    assert fix.attempts[1].cost_usd == pytest.approx(0.001 + 0.0003)  # a refused reply costs
    assert fix.cost_usd == pytest.approx(2 * 0.0013)
    assert fix.patch.new_text == CODE.replace("values == None", "values is None")


STILL_BROKEN = GOOD.replace("+        if values is None:", "+        if values == None:  # checked")


async def test_a_patch_ruff_still_flags_is_refused_and_the_chain_moves_on() -> None:
    providers = {"a": Scripted("a", [STILL_BROKEN]), "b": Scripted("b", [GOOD])}
    orch = Orchestrator(Registry([model("a"), model("b")]), providers)
    fix = await ace_auto_fix(orch, FixContext("stats.py", CODE, options=AB), [at(5)])
    assert [(a.model, a.outcome) for a in fix.attempts] == [("a", "invalid_patch"), ("b", "ok")]
    assert fix.attempts[0].reason == (
        "The patch failed by ruff: E711 remaining, 0 new: E711 still reported on line 6."
    )
    assert fix.verdict is not None and fix.verdict.status is Status.VERIFIED
    assert fix.verdict.message == "verified by ruff: E711 gone, 0 new"


async def test_no_fix_lists_every_attempt() -> None:
    providers = {"a": Scripted("a", [OUTSIDE]), "b": Scripted("b", ["I cannot help."])}
    orch = Orchestrator(Registry([model("a"), model("b")]), providers)
    with pytest.raises(NoFix) as info:
        await ace_auto_fix(
            orch, FixContext("stats.py", CODE, options=CallOptions(models=("a", "b"))), [at(5)]
        )
    assert [a.outcome for a in info.value.attempts] == ["invalid_patch", "invalid_patch"]
    assert info.value.reason.startswith(
        "No model produced a valid answer (a invalid patch, b invalid patch); a: The diff changes"
    )
