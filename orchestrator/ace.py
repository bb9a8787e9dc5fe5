"""ACE's jobs on top of the orchestrator: ace_auto_fix() (the seed's aceAutoFix) and ace_review().

A fix request becomes an AUTO_FIX call whose every reply must pass the patch gate; the risk level
decides which lines a fix may touch. A review is a CODE_REVIEW call whose reply must hold findings.
Prompts are built (secrets masked) and replies checked off the event loop, within a time limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tree_sitter import Tree

from ace_lsp.orchestrator.call import CallOptions, Orchestrator, off_loop
from ace_lsp.orchestrator.code import patches, spans
from ace_lsp.orchestrator.code.prompts import fix_messages, improve_messages, review_messages
from ace_lsp.orchestrator.code.review import Finding, parse_review
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.types import (
    Attempt,
    CodeIssue,
    FixJob,
    LineRange,
    LLMRequest,
    Message,
    ProviderReply,
    RiskLevel,
    TaskType,
    TextRange,
    Tier,
)

CONSERVATIVE_MARGIN = 2


@dataclass(frozen=True)
class AutoFix:
    path: str
    patch: patches.Patch
    model: str
    cost_usd: float
    attempts: tuple[Attempt, ...]


def merge(ranges: Sequence[LineRange]) -> tuple[LineRange, ...]:
    """Sorted, with overlapping and touching ranges joined."""
    out: list[LineRange] = []
    for r in sorted(ranges):
        if out and r.start <= out[-1].end + 1:
            out[-1] = LineRange(out[-1].start, max(out[-1].end, r.end))
        else:
            out.append(r)
    return tuple(out)


def allowed_ranges(
    source: Source,
    language: str | None,
    issues: Sequence[CodeIssue],
    risk: RiskLevel,
    *,
    path: str | None = None,
    tree: Tree | None = None,
) -> tuple[LineRange, ...]:
    """The lines a fix may change: issue lines ± 2, their enclosing scopes, or the whole file."""
    last = max(source.line_count - 1, 0)
    if risk is RiskLevel.AGGRESSIVE:
        return (LineRange(0, last),)
    ranges: list[LineRange] = []
    for issue in issues:
        first_line = min(issue.range.start.line, last)
        last_line = min(max(issue.range.end.line, issue.range.start.line), last)
        if risk is RiskLevel.CONSERVATIVE:
            ranges.append(
                LineRange(
                    max(first_line - CONSERVATIVE_MARGIN, 0),
                    min(last_line + CONSERVATIVE_MARGIN, last),
                )
            )
        else:
            span = spans.extract(source, language, issue.range, path=path, tree=tree)
            ranges.append(span.lines)
    return merge(ranges)


async def _prompt(build: Callable[[], tuple[Message, ...]], path: str) -> tuple[Message, ...]:
    """The prompt, built (and its secrets masked) off the event loop, within the time limit."""
    return await off_loop(build, f"Masking secrets in {path}", "ACE sent nothing to a model")


async def _patch_call(
    orchestrator: Orchestrator,
    request: LLMRequest,
    code: str,
    allowed: tuple[LineRange, ...],
    file_path: str,
    language: str | None,
    display_path: str | None,
    tree: Tree | None,
    options: CallOptions | None,
) -> AutoFix:
    """Call for a diff; a reply counts only once the patch gate accepts it within `allowed`."""

    def check(reply: ProviderReply) -> patches.Patch:
        return patches.validate(
            code,
            reply.text,
            allowed,
            path=file_path,
            language=language,
            display_path=display_path,
            original_tree=tree,
        )

    called = await orchestrator.call(request, check, options)
    return AutoFix(
        path=file_path,
        patch=called.value,
        model=called.result.model,
        cost_usd=called.result.cost_usd,
        attempts=tuple(called.result.attempts),
    )


async def ace_auto_fix(
    orchestrator: Orchestrator,
    *,
    file_path: str,
    code: str,
    issues: Sequence[CodeIssue],
    risk_level: RiskLevel = RiskLevel.BALANCED,
    tier: Tier = Tier.FREE,
    user: str = "local",
    language: str | None = None,
    display_path: str | None = None,
    tree: Tree | None = None,
    options: CallOptions | None = None,
    mask_secrets: bool = True,
) -> AutoFix:
    """Fix `issues` in `code`; returns a validated patch or raises NoFix with every attempt.

    Secret-shaped text is masked in the prompt sent to a provider unless `mask_secrets` is False;
    the FixJob the local provider reads keeps the real code (it never leaves the machine).
    """
    if not issues:
        raise InputError("There is nothing to fix: no diagnostics were given.")
    source = Source(code)
    if tree is None:
        tree = spans.parse(source, language, file_path)
    allowed = allowed_ranges(source, language, issues, risk_level, path=file_path, tree=tree)
    build = functools.partial(
        fix_messages,
        display_path or file_path,
        language,
        source,
        issues,
        allowed,
        mask_secrets=mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.AUTO_FIX,
        messages=await _prompt(build, display_path or file_path),
        tier=tier,
        user=user,
        fix=FixJob(file_path, language, code, tuple(issues), allowed),
    )
    return await _patch_call(
        orchestrator, request, code, allowed, file_path, language, display_path, tree, options
    )


@dataclass(frozen=True)
class Review:
    path: str
    span: spans.Span
    findings: tuple[Finding, ...]
    model: str
    cost_usd: float
    attempts: tuple[Attempt, ...]


async def ace_review(
    orchestrator: Orchestrator,
    *,
    file_path: str,
    code: str,
    target: TextRange,
    tier: Tier = Tier.FREE,
    user: str = "local",
    language: str | None = None,
    display_path: str | None = None,
    tree: Tree | None = None,
    options: CallOptions | None = None,
    mask_secrets: bool = True,
) -> Review:
    """Review the function or class around `target`; raises NoFix when no model gave a review.

    Secret-shaped text is masked in the prompt unless `mask_secrets` is False."""
    source = Source(code)
    span = spans.extract(source, language, target, path=file_path, tree=tree)
    lines = span.lines
    build = functools.partial(
        review_messages,
        display_path or file_path,
        language,
        source,
        lines,
        mask_secrets=mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.CODE_REVIEW,
        messages=await _prompt(build, display_path or file_path),
        tier=tier,
        user=user,
    )

    def check(reply: ProviderReply) -> tuple[Finding, ...]:
        return parse_review(reply.text, code, lines, path=file_path, language=language)

    called = await orchestrator.call(request, check, options)
    return Review(
        path=file_path,
        span=span,
        findings=called.value,
        model=called.result.model,
        cost_usd=called.result.cost_usd,
        attempts=tuple(called.result.attempts),
    )


async def ace_improve(
    orchestrator: Orchestrator,
    *,
    file_path: str,
    code: str,
    lines: LineRange,
    tier: Tier = Tier.FREE,
    user: str = "local",
    language: str | None = None,
    display_path: str | None = None,
    tree: Tree | None = None,
    options: CallOptions | None = None,
    mask_secrets: bool = True,
) -> AutoFix:
    """A behaviour-preserving improvement of `lines` (task REFACTOR), through the patch gate.

    Secret-shaped text is masked in the prompt unless `mask_secrets` is False."""
    source = Source(code)
    last = max(source.line_count - 1, 0)
    allowed = (LineRange(min(lines.start, last), min(lines.end, last)),)
    build = functools.partial(
        improve_messages,
        display_path or file_path,
        language,
        source,
        allowed,
        mask_secrets=mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.REFACTOR,
        messages=await _prompt(build, display_path or file_path),
        tier=tier,
        user=user,
    )
    return await _patch_call(
        orchestrator, request, code, allowed, file_path, language, display_path, tree, options
    )
