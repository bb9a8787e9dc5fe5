"""The embedded `local` provider: ruff's own fixes for the requested diagnostics, as a unified diff.

It needs no key and no network and costs nothing. It answers in the same form a model would (a
```diff fence), so its output passes through the same patch gate as any model's. It fixes only the
diagnostics it was asked about (matched by rule code and line), never every instance in the file.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ace_lsp.orchestrator import ruff
from ace_lsp.orchestrator.code import languages
from ace_lsp.orchestrator.code.patches import unified_diff
from ace_lsp.orchestrator.errors import Unsupported
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import CodeIssue, LLMRequest, ProviderReply, TaskType, Usage

_RULE_CODE = re.compile(r"^[A-Z]{1,4}[0-9]{1,4}$")


@dataclass(frozen=True)
class _Edit:
    start: int  # str index into the text
    end: int
    content: str


def _issue_code(issue: CodeIssue) -> str | None:
    code = (issue.code or "").strip().upper()
    return code if _RULE_CODE.match(code) and code in ruff.known_rules() else None


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _index(starts: list[int], text: str, loc: Any) -> int:
    """ruff location (1-based row, 1-based column in characters) -> index into text."""
    row, col = int(loc["row"]) - 1, int(loc["column"]) - 1
    if row >= len(starts):
        return len(text)
    return min(starts[row] + col, len(text))


def _wanted(diag: Any, issues: Sequence[CodeIssue]) -> bool:
    """Does this ruff diagnostic answer one of the requested issues (same code, same lines)?"""
    first, last = int(diag["location"]["row"]) - 1, int(diag["end_location"]["row"]) - 1
    for issue in issues:
        if (issue.code or "").strip().upper() != diag["code"]:
            continue
        if issue.range.start.line <= last and first <= max(
            issue.range.end.line, issue.range.start.line
        ):
            return True
    return False


def apply_ruff_fixes(text: str, diagnostics: Sequence[Any], issues: Sequence[CodeIssue]) -> str:
    """Apply the fixes of ruff diagnostics that match `issues`; overlapping ones are skipped."""
    starts = _line_starts(text)
    edits: list[_Edit] = []
    for diag in diagnostics:
        fix = diag.get("fix")
        if not fix or fix.get("applicability") == "display-only" or not _wanted(diag, issues):
            continue
        edits.extend(
            _Edit(
                _index(starts, text, e["location"]),
                _index(starts, text, e["end_location"]),
                e["content"],
            )
            for e in fix["edits"]
        )
    edits.sort(key=lambda e: (e.start, e.end))
    kept: list[_Edit] = []
    for edit in edits:
        if kept and edit.start < kept[-1].end:
            continue  # ruff would fix this one on a second pass; one fix at a time is safer
        kept.append(edit)
    for edit in reversed(kept):
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text


class LocalProvider:
    """Fixes Python diagnostics with ruff, offline, at zero cost."""

    name = "local"

    def available(self) -> str | None:
        """None: ruff ships with ACE and needs no key or network."""
        return None

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """ruff's fixes for the job's diagnostics, as a ```diff reply; Unsupported otherwise."""
        job = request.fix
        if request.task is not TaskType.AUTO_FIX or job is None:
            raise Unsupported(
                f"The local fixer only fixes diagnostics; {request.task.value} needs a cloud model."
            )
        spec = languages.resolve(job.language, job.path)
        if spec is None or spec.name != "python":
            what = spec.name if spec else (job.language or PurePath(job.path).suffix or "this file")
            raise Unsupported(
                f"The local fixer only fixes Python, not {what}; "
                "set an API key to use a cloud model."
            )
        codes = sorted({c for c in map(_issue_code, job.issues) if c})
        if not codes:
            named = ", ".join(sorted({i.code or "(no code)" for i in job.issues}))
            raise Unsupported(
                f"The local fixer only knows ruff rule codes, and {named} is not one; "
                "set an API key to use a cloud model."
            )
        diagnostics = await ruff.check(job.text, job.path, select=codes)
        new_text = apply_ruff_fixes(job.text, diagnostics, job.issues)
        if new_text == job.text:
            raise Unsupported(
                f"ruff has no automatic fix for {', '.join(codes)} here; "
                "set an API key to use a cloud model."
            )
        diff = unified_diff(job.text, new_text, PurePath(job.path).name)
        return ProviderReply(text=f"```diff\n{diff}```\n", usage=Usage(), model=model.wire_name)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """The whole reply as one chunk: ruff has nothing to stream."""
        reply = await self.complete(model, request)
        yield StreamChunk(reply.text, reply.usage)

    async def aclose(self) -> None:
        """Nothing to close."""
        return None
