"""Prompts for code models: what ACE asks, and the reply form (one unified diff) it insists on."""

from __future__ import annotations

from collections.abc import Sequence

from ace_lsp.orchestrator.caps import (
    MAX_MESSAGE_CHARS,
    MAX_RELATED_CHARS,
    MAX_RELATED_LINES,
    clip,
)
from ace_lsp.orchestrator.code.secrets import mask
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import CodeIssue, LineRange, Message, Related

SYSTEM_FIX = (
    "You are ACE, a careful code-fixing assistant. You receive part of a source file with "
    "1-based line numbers and the diagnostics reported on it. Fix exactly those diagnostics with "
    "the smallest correct change, keeping the code's style and indentation. Reply with one unified "
    "diff for the file, in a ```diff fence, with `--- a/<file>` and `+++ b/<file>` headers, hunk "
    "headers using the file's real line numbers, and 3 lines of context. Change only the lines "
    "you are allowed to change. No explanation is needed."
)

_SEVERITY = {1: "error", 2: "warning", 3: "info", 4: "hint"}
CONTEXT_LINES = 5


def _masked(source: Source, mask_secrets: bool) -> Source:
    """`source` with secret-shaped text masked (same lines and columns; see code.secrets)."""
    if not mask_secrets:
        return source
    masked = mask(source.text)
    return Source(masked.text) if masked.found else source


def _numbered(source: Source, first: int, last: int) -> str:
    width = len(str(last + 1))
    return "\n".join(f"{n + 1:>{width}} | {source.line_text(n)}" for n in range(first, last + 1))


def _window(source: Source, allowed: Sequence[LineRange]) -> tuple[int, int, str]:
    """The lines to show (the allowed ones and some context) and the allowed ones, 1-based."""
    last_line = max(source.line_count - 1, 0)
    first = max(min(r.start for r in allowed) - CONTEXT_LINES, 0)
    last = min(max(r.end for r in allowed) + CONTEXT_LINES, last_line)
    return first, last, ", ".join(f"{r.start + 1}-{r.end + 1}" for r in allowed)


def _describe(issue: CodeIssue, source: Source) -> str:
    """One diagnostic for the prompt: where, what, the rule's page, related places (quoting their
    lines when they are in this file) and the diagnostic's data. `source` is the masked text."""
    where = f"line {issue.range.start.line + 1}"
    if issue.range.end.line > issue.range.start.line:
        where += f"-{issue.range.end.line + 1}"
    rule = " ".join(t for t in (issue.source, issue.code) if t)
    tags = " ".join(t for t in (_SEVERITY.get(issue.severity or 0, ""), rule and f"[{rule}]") if t)
    out = [f"- {where}: {tags + ' ' if tags else ''}{clip(issue.message, MAX_MESSAGE_CHARS)}"]
    if issue.href is not None:
        out.append(f"  rule documentation: {issue.href}")
    for related in issue.related:
        out.extend(_related(related, source))
    if issue.data is not None:
        out.append(f"  data: {issue.data}")
    return "\n".join(out)


def _related(related: Related, source: Source) -> list[str]:
    """A related place; its lines are quoted only from this file, and only those inside it."""
    line = related.lines.start
    if related.file is not None:
        return [f"  related, {related.file} line {line + 1}: {related.message}"]
    head = f"  related, line {line + 1}: {related.message}"
    if line >= source.line_count:
        return [head]
    last = min(related.lines.end, line + MAX_RELATED_LINES - 1, source.line_count - 1)
    return [
        head,
        *(
            f"    {n + 1} | {clip(source.line_text(n), MAX_RELATED_CHARS)}"
            for n in range(line, last + 1)
        ),
    ]


def fix_messages(
    path: str,
    language: str | None,
    source: Source,
    issues: Sequence[CodeIssue],
    allowed: Sequence[LineRange],
    *,
    mask_secrets: bool = True,
) -> tuple[Message, ...]:
    """System + user messages asking for a diff that fixes `issues` within `allowed` lines.

    Unless `mask_secrets` is False, secret-shaped text in the code and the diagnostics is masked.
    """
    source = _masked(source, mask_secrets)
    first, last, ranges = _window(source, allowed)
    user = "\n".join(
        [
            f"File: {path}" + (f" ({language})" if language else ""),
            "Diagnostics to fix:",
            *(
                mask(_describe(i, source)).text if mask_secrets else _describe(i, source)
                for i in issues
            ),
            f"You may change lines {ranges} only.",
            f"Code (lines {first + 1}-{last + 1} of {source.line_count}):",
            "```",
            _numbered(source, first, last),
            "```",
        ]
    )
    return (Message("system", SYSTEM_FIX), Message("user", user))


SYSTEM_REVIEW = (
    "You are ACE, a senior code reviewer. You receive one function or class from a source file, "
    "with 1-based line numbers. Report real problems only: bugs, unsafe behaviour, wrong edge "
    "cases, needless complexity. Reply with one JSON object in a ```json fence: "
    '{"findings": [{"line": <first line>, "end_line": <last line>, "severity": '
    '"error"|"warning"|"info", "message": "<one sentence>", "patch": "<optional unified diff '
    'fixing it, with --- a/<file> and +++ b/<file> headers and real line numbers>"}]}. '
    'An empty list is a fine answer: {"findings": []}.'
)


def review_messages(
    path: str, language: str | None, source: Source, lines: LineRange, *, mask_secrets: bool = True
) -> tuple[Message, ...]:
    """System + user messages asking for a JSON review of `lines` (secrets masked, by default)."""
    source = _masked(source, mask_secrets)
    user = "\n".join(
        [
            f"File: {path}" + (f" ({language})" if language else ""),
            f"Review lines {lines.start + 1}-{lines.end + 1}:",
            "```",
            _numbered(source, lines.start, lines.end),
            "```",
        ]
    )
    return (Message("system", SYSTEM_REVIEW), Message("user", user))


SYSTEM_IMPROVE = (
    "You are ACE, a careful refactoring assistant. You receive part of a source file with 1-based "
    "line numbers and the lines the user selected. Improve only the selected code — clearer names, "
    "simpler control flow, idiomatic constructs, obvious inefficiencies — without changing its "
    "behaviour or its public interface. Reply with one unified diff for the file, in a ```diff "
    "fence, with `--- a/<file>` and `+++ b/<file>` headers, hunk headers using the file's real "
    "line numbers, and 3 lines of context. Change only the lines you are allowed to change."
)


def improve_messages(
    path: str,
    language: str | None,
    source: Source,
    allowed: Sequence[LineRange],
    *,
    mask_secrets: bool = True,
) -> tuple[Message, ...]:
    """System + user messages asking for a behaviour-preserving improvement of `allowed` lines
    (secrets masked, by default)."""
    source = _masked(source, mask_secrets)
    first, last, ranges = _window(source, allowed)
    user = "\n".join(
        [
            f"File: {path}" + (f" ({language})" if language else ""),
            f"Improve lines {ranges}; you may change those lines only.",
            f"Code (lines {first + 1}-{last + 1} of {source.line_count}):",
            "```",
            _numbered(source, first, last),
            "```",
        ]
    )
    return (Message("system", SYSTEM_IMPROVE), Message("user", user))
