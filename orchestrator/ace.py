"""ACE's jobs on top of the orchestrator: ace_auto_fix(), ace_review() and ace_improve(), each
given one `FixContext` (the file, who asks, the call options); docs/architecture.md draws the
flow of one fix.

A fix request becomes an AUTO_FIX call whose every reply must pass the patch gate and then
verification (code/verify.py: a checker re-run on the patched copy); the risk level decides which
lines a fix may touch. A review is a CODE_REVIEW call whose reply must hold findings.
Prompts are built (secrets masked) and replies checked off the event loop, within a time limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tree_sitter import Tree

from ace_lsp.orchestrator.call import CallOptions, Orchestrator, off_loop
from ace_lsp.orchestrator.code import patches, spans, verify
from ace_lsp.orchestrator.code.prompts import fix_messages, improve_messages, review_messages
from ace_lsp.orchestrator.code.review import Finding, parse_review
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.errors import InputError, VerificationFailed
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
    """The accepted patch of `path`, with the model, cost and attempts behind it; `verdict` is
    its re-check (None for an improvement, which has no diagnostic to verify)."""

    path: str
    patch: patches.Patch
    model: str
    cost_usd: float
    attempts: tuple[Attempt, ...]
    verdict: verify.Verdict | None = None


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


@dataclass(frozen=True)
class FixContext:
    """The file a job works on and who asks, how: what every `ace_*` job takes besides its target.

    `file_path` names the file for the patch gate and the local provider; `display_path` (default:
    `file_path`) is how prompts name it. `tree` is the caller's parse of `code`, if it has one;
    `user` is who pays (in team mode the orchestrator books the database role instead).
    """

    file_path: str
    code: str
    language: str | None = None
    tier: Tier = Tier.FREE
    user: str = "local"
    display_path: str | None = None
    tree: Tree | None = None
    options: CallOptions | None = None
    mask_secrets: bool = True  # mask secret-shaped text in the prompt sent to a provider

    @property
    def shown_path(self) -> str:
        """The file's name as prompts show it: `display_path`, else `file_path`."""
        return self.display_path or self.file_path


async def _patch_call(
    orchestrator: Orchestrator,
    request: LLMRequest,
    allowed: tuple[LineRange, ...],
    ctx: FixContext,
    tree: Tree | None,
    targets: Sequence[CodeIssue] | None = None,
) -> AutoFix:
    """Call for a diff; a reply counts only once the patch gate accepts it within `allowed` and,
    given `targets`, verification does not fail it (VerificationFailed: the next model)."""

    def check(reply: ProviderReply) -> tuple[patches.Patch, verify.Verdict | None]:
        patch = patches.validate(
            ctx.code,
            reply.text,
            allowed,
            path=ctx.file_path,
            language=ctx.language,
            display_path=ctx.display_path,
            original_tree=tree,
        )
        if targets is None:
            return patch, None
        verdict = verify.verify(ctx.code, patch, ctx.file_path, ctx.language, targets)
        if verdict.status is verify.Status.FAILED:
            raise VerificationFailed(f"The patch {verdict.message}.")
        return patch, verdict

    called = await orchestrator.call(request, check, ctx.options)
    patch, verdict = called.value
    return AutoFix(
        path=ctx.file_path,
        patch=patch,
        model=called.result.model,
        cost_usd=called.result.cost_usd,
        attempts=tuple(called.result.attempts),
        verdict=verdict,
    )


async def ace_auto_fix(
    orchestrator: Orchestrator,
    ctx: FixContext,
    issues: Sequence[CodeIssue],
    risk_level: RiskLevel = RiskLevel.BALANCED,
) -> AutoFix:
    """Fix `issues` in `ctx.code`; returns a validated patch or raises NoFix with every attempt.

    Secret-shaped text is masked in the prompt sent to a provider unless `ctx.mask_secrets` is
    False; the FixJob the local provider reads keeps the real code (it never leaves the machine).
    """
    if not issues:
        raise InputError("There is nothing to fix: no diagnostics were given.")
    source = Source(ctx.code)
    tree = ctx.tree
    if tree is None:
        tree = spans.parse(source, ctx.language, ctx.file_path)
    allowed = allowed_ranges(
        source, ctx.language, issues, risk_level, path=ctx.file_path, tree=tree
    )
    build = functools.partial(
        fix_messages,
        ctx.shown_path,
        ctx.language,
        source,
        issues,
        allowed,
        mask_secrets=ctx.mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.AUTO_FIX,
        messages=await _prompt(build, ctx.shown_path),
        tier=ctx.tier,
        user=ctx.user,
        fix=FixJob(ctx.file_path, ctx.language, ctx.code, tuple(issues), allowed),
    )
    return await _patch_call(orchestrator, request, allowed, ctx, tree, issues)


@dataclass(frozen=True)
class Review:
    """A review's findings on one span of `path`, with the model, cost and attempts behind them."""

    path: str
    span: spans.Span
    findings: tuple[Finding, ...]
    model: str
    cost_usd: float
    attempts: tuple[Attempt, ...]


async def ace_review(orchestrator: Orchestrator, ctx: FixContext, target: TextRange) -> Review:
    """Review the function or class around `target`; raises NoFix when no model gave a review.

    Secret-shaped text is masked in the prompt unless `ctx.mask_secrets` is False."""
    source = Source(ctx.code)
    span = spans.extract(source, ctx.language, target, path=ctx.file_path, tree=ctx.tree)
    lines = span.lines
    build = functools.partial(
        review_messages,
        ctx.shown_path,
        ctx.language,
        source,
        lines,
        mask_secrets=ctx.mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.CODE_REVIEW,
        messages=await _prompt(build, ctx.shown_path),
        tier=ctx.tier,
        user=ctx.user,
    )

    def check(reply: ProviderReply) -> tuple[Finding, ...]:
        return parse_review(reply.text, ctx.code, lines, path=ctx.file_path, language=ctx.language)

    called = await orchestrator.call(request, check, ctx.options)
    return Review(
        path=ctx.file_path,
        span=span,
        findings=called.value,
        model=called.result.model,
        cost_usd=called.result.cost_usd,
        attempts=tuple(called.result.attempts),
    )


async def ace_improve(orchestrator: Orchestrator, ctx: FixContext, lines: LineRange) -> AutoFix:
    """A behaviour-preserving improvement of `lines` (task REFACTOR), through the patch gate.

    Secret-shaped text is masked in the prompt unless `ctx.mask_secrets` is False."""
    source = Source(ctx.code)
    last = max(source.line_count - 1, 0)
    allowed = (LineRange(min(lines.start, last), min(lines.end, last)),)
    build = functools.partial(
        improve_messages,
        ctx.shown_path,
        ctx.language,
        source,
        allowed,
        mask_secrets=ctx.mask_secrets,
    )
    request = LLMRequest(
        task=TaskType.REFACTOR,
        messages=await _prompt(build, ctx.shown_path),
        tier=ctx.tier,
        user=ctx.user,
    )
    return await _patch_call(orchestrator, request, allowed, ctx, ctx.tree)
