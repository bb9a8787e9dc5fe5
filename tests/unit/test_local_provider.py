"""The embedded `local` provider: real ruff, real fixes, clear refusals."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.code.patches import validate
from ace_lsp.orchestrator.errors import Unsupported
from ace_lsp.orchestrator.providers.local import LocalProvider
from ace_lsp.orchestrator.registry import load_default
from ace_lsp.orchestrator.types import (
    CodeIssue,
    FixJob,
    LineRange,
    LLMRequest,
    Message,
    Position,
    TaskType,
    TextRange,
)

TEXT = 'import os\nimport sys\n\n\ndef f(x):\n    if x == None:\n        return "é"\n    return x\n'
WHOLE = (LineRange(0, 7),)


def issue(line: int, code: str | None, col: int = 0, source: str | None = "ruff") -> CodeIssue:
    return CodeIssue(TextRange(Position(line, col), Position(line, col + 1)), "msg", code, source)


def request(
    text: str,
    issues: list[CodeIssue],
    path: str = "m.py",
    language: str | None = None,
    task: TaskType = TaskType.AUTO_FIX,
) -> LLMRequest:
    return LLMRequest(
        task=task,
        messages=(Message("user", "fix"),),
        fix=FixJob(path, language, text, tuple(issues), WHOLE),
    )


async def complete(req: LLMRequest) -> str:
    model = load_default().get("local")
    reply = await LocalProvider().complete(model, req)
    assert reply.usage.input_tokens == 0 and reply.usage.output_tokens == 0
    return reply.text


@pytest.mark.parametrize(
    ("issues", "expected"),
    [
        pytest.param([issue(0, "F401")], TEXT.replace("import os\n", ""), id="one-import"),
        pytest.param(
            [issue(1, "F401")], TEXT.replace("import sys\n", ""), id="only-the-asked-instance"
        ),
        pytest.param(
            [issue(5, "E711")], TEXT.replace("x == None", "x is None"), id="unsafe-fix-on-request"
        ),
        pytest.param(
            [issue(0, "F401"), issue(5, "e711")],
            TEXT.replace("import os\n", "").replace("x == None", "x is None"),
            id="two-codes-lowercase",
        ),
        pytest.param(
            [issue(0, "F401"), issue(5, "reportOptionalMemberAccess", source="Pylance")],
            TEXT.replace("import os\n", ""),
            id="foreign-code-ignored-when-one-is-ruff",
        ),
    ],
)
async def test_fixes_only_the_requested_diagnostics(issues: list[CodeIssue], expected: str) -> None:
    reply = await complete(request(TEXT, issues))
    assert reply.startswith("```diff\n--- a/m.py\n+++ b/m.py\n") and reply.endswith("```\n")
    assert validate(TEXT, reply, WHOLE, path="m.py").new_text == expected


async def test_crlf_file_stays_crlf() -> None:
    text = TEXT.replace("\n", "\r\n")
    reply = await complete(request(text, [issue(5, "E711")]))
    new = validate(text, reply, WHOLE, path="m.py").new_text
    assert new == text.replace("x == None", "x is None")


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        pytest.param(
            request("let x = 1\n", [issue(0, "no-undef")], path="a.js"),
            "only fixes Python, not javascript",
            id="javascript",
        ),
        pytest.param(
            request("x = 1\n", [issue(0, "E0602")], path="a.txt"),
            "only fixes Python, not .txt",
            id="unknown-extension",
        ),
        pytest.param(
            request(TEXT, [issue(5, "reportGeneralTypeIssues", source="Pylance")]),
            "only knows ruff rule codes, and reportGeneralTypeIssues is not one",
            id="not-a-ruff-code",
        ),
        pytest.param(
            request(TEXT, [issue(0, None, source="mypy")]),
            "(no code) is not one",
            id="no-code",
        ),
        pytest.param(
            request("def f():\n    return y\n", [issue(1, "F821")]),
            "ruff has no automatic fix for F821",
            id="no-automatic-fix",
        ),
        pytest.param(
            request(TEXT, [issue(7, "F401")]),
            "ruff has no automatic fix for F401",
            id="code-not-on-that-line",
        ),
        pytest.param(
            request(TEXT, [issue(0, "F401")], task=TaskType.CODE_REVIEW),
            "only fixes diagnostics; CODE_REVIEW needs a cloud model",
            id="not-a-fix-task",
        ),
    ],
)
async def test_refuses_with_a_reason(req: LLMRequest, reason: str) -> None:
    with pytest.raises(Unsupported) as info:
        await complete(req)
    assert reason in info.value.reason
    assert info.value.reason.endswith(".")
