"""Reading a model's code review: JSON findings with lines, severity, message and optional patch.

A reply without readable JSON findings is read as prose (`review_text`: "- Line 8: …" lists and
lines); one with no findings either way is refused (so the call moves on to the next model), unless
it says there is nothing to report. A finding's patch that fails the patch gate is dropped, the
finding kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from ace_lsp.orchestrator import caps
from ace_lsp.orchestrator.code import patches, review_text
from ace_lsp.orchestrator.errors import InvalidReview, PatchError
from ace_lsp.orchestrator.types import LineRange

_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)```", re.DOTALL)
SEVERITIES = ("error", "warning", "info", "hint")


@dataclass(frozen=True)
class Finding:
    """One finding of a review: lines, severity, message, and a patch if the gate accepted it."""

    lines: LineRange  # 0-based, inclusive
    severity: str  # "error" | "warning" | "info" | "hint"
    message: str
    patch: patches.Patch | None = None


class _RawFinding(BaseModel):
    line: int = Field(ge=1)
    end_line: int | None = Field(default=None, ge=1)
    severity: Literal["error", "warning", "info", "hint"] = "warning"
    message: str = Field(min_length=1)
    patch: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v


class _RawReview(BaseModel):
    findings: list[_RawFinding]


def _json_text(reply: str) -> str:
    fenced = _FENCE.search(reply)
    if fenced:
        return fenced.group(1)
    start, end = reply.find("{"), reply.rfind("}")
    if start == -1 or end < start:
        raise InvalidReview(
            'The review reply holds no JSON object; answer with {"findings": [...]}.'
        )
    return reply[start : end + 1]


def _json_review(reply: str) -> _RawReview:
    try:
        return _RawReview.model_validate(json.loads(_json_text(reply)))
    except json.JSONDecodeError as exc:
        raise InvalidReview(f"The review reply is not valid JSON ({exc.msg}).") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidReview(
            f"The review reply has a bad field '{where}' ({first['msg']})."
        ) from None


def _text_review(reply: str, lines: LineRange, refused: InvalidReview) -> tuple[Finding, ...]:
    """The findings of a reply written as prose, on the reviewed `lines` only (a range that runs
    past them is clamped to them); `refused` (why the JSON was unreadable) when there are none."""
    findings: list[Finding] = []
    outside = 0
    for f in review_text.findings(reply):
        start, end = f.line - 1, max(f.end_line, f.line) - 1
        if end < lines.start or start > lines.end:
            outside += 1  # another part of the file, or lines counted from another start
            continue
        span = LineRange(max(start, lines.start), min(end, lines.end))
        findings.append(Finding(span, f.severity, f.message))
        if len(findings) == caps.MAX_TEXT_FINDINGS:
            break
    if findings:
        return tuple(findings)
    if outside:
        raise InvalidReview(
            f"The review reply's findings are all outside lines {lines.start + 1}-{lines.end + 1}."
        )
    if review_text.says_nothing_to_report(reply):
        return ()  # as {"findings": []}
    raise refused


def parse_review(
    reply: str, original: str, lines: LineRange, *, path: str, language: str | None = None
) -> tuple[Finding, ...]:
    """Findings from a reply, lines clamped to the file; raises InvalidReview when unreadable.

    Without readable JSON, findings written as text ("- Line 8: …") on `lines` are taken."""
    try:
        raw = _json_review(reply)
    except InvalidReview as refused:
        return _text_review(reply, lines, refused)
    last = max(original.count("\n") - (1 if original.endswith("\n") else 0), 0)
    findings = []
    for f in raw.findings:
        start = min(f.line - 1, last)
        end = min(max((f.end_line or f.line) - 1, start), last)
        patch = None
        if f.patch:
            try:
                patch = patches.validate(original, f.patch, lines, path=path, language=language)
            except PatchError:
                patch = None
        findings.append(Finding(LineRange(start, end), f.severity, f.message.strip(), patch))
    return tuple(findings)
