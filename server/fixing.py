"""Running what a code action promises: a fix, a fix of the whole file, a fix of a line, an
improvement — each pinned to the document version it was computed for, with progress and budget.

Pure conversions (diagnostics to issues, grouping by span, merging edits) are functions here; the
LSP registration lives in code_actions.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lsprotocol import converters
from lsprotocol import types as lsp

from ace_lsp.orchestrator import ruff
from ace_lsp.orchestrator.ace import AutoFix, ace_auto_fix, ace_improve
from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS
from ace_lsp.orchestrator.code import languages, spans
from ace_lsp.orchestrator.errors import AceError, NoFix
from ace_lsp.orchestrator.types import (
    CodeIssue,
    LineRange,
    Position,
    TaskType,
    TextEdit,
    TextRange,
    Tier,
)
from ace_lsp.server import status
from ace_lsp.server.app import AceServer, FixFailed
from ace_lsp.server.documents import DocState
from ace_lsp.server.positions import SourceLines, range_from_client, range_to_client
from ace_lsp.server.progress import Report, job_progress

log = logging.getLogger(__name__)
_converter = converters.get_converter()

FIX, FIX_ALL, LINE, IMPROVE = "fix", "fixAll", "line", "improve"


@dataclass(frozen=True)
class Job:
    """What a code action carries in `data` (or its command's argument)."""

    kind: str
    uri: str
    version: int
    diagnostics: tuple[lsp.Diagnostic, ...] = ()
    range: lsp.Range | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "uri": self.uri, "version": self.version}
        if self.diagnostics:
            out["diagnostics"] = _converter.unstructure(list(self.diagnostics))
        if self.range is not None:
            out["range"] = _converter.unstructure(self.range)
        return out

    @classmethod
    def parse(cls, data: Any) -> Job:
        if isinstance(data, list) and data:  # some clients pass the arguments array itself
            data = data[0]
        try:
            return cls(
                kind=str(data.get("kind", FIX)),
                uri=str(data["uri"]),
                version=int(data["version"]),
                diagnostics=tuple(
                    _converter.structure(data.get("diagnostics", []), list[lsp.Diagnostic])
                ),
                range=_converter.structure(data["range"], lsp.Range) if data.get("range") else None,
            )
        except Exception as exc:  # KeyError, TypeError, cattrs' validation errors, …
            raise FixFailed(
                "This ACE action carries no usable data; ask for code actions again."
            ) from exc


def current(ls: AceServer, uri: str, version: int | None = None) -> DocState:
    """The open document, at `version` if given; FixFailed with the reason otherwise."""
    doc = ls.documents.get(uri)
    if doc is None:
        raise FixFailed("ACE does not have this document open; open it and try again.")
    if version is not None and doc.version != version:
        raise FixFailed("The document changed since ACE offered this fix; ask for it again.")
    if doc.problem is not None:
        raise FixFailed(doc.problem)
    return doc


def to_issues(
    ls: AceServer, doc: DocState, diagnostics: Sequence[lsp.Diagnostic]
) -> list[CodeIssue]:
    """The diagnostics (not ACE's own) as issues in server positions; past MAX_DIAGNOSTICS the
    rest are dropped, with one warning: fixing the first ones is still a fix, and running the
    action again fixes the next ones."""
    lines = SourceLines(doc.source)
    theirs = [d for d in diagnostics if d.source != "ace"]
    if len(theirs) > MAX_DIAGNOSTICS:
        log.warning(
            "A fix request carried %d diagnostics; ACE fixes the first %d of them.",
            len(theirs),
            MAX_DIAGNOSTICS,
        )
        theirs = theirs[:MAX_DIAGNOSTICS]
    return [
        CodeIssue(
            range=range_from_client(lines, d.range, ls.encoding),
            message=d.message,
            code=None if d.code is None else str(d.code),
            source=d.source,
            severity=None if d.severity is None else int(d.severity),
        )
        for d in theirs
    ]


def group_by_span(doc: DocState, issues: Sequence[CodeIssue]) -> list[list[CodeIssue]]:
    """Issues whose enclosing scopes overlap share a group: one model call serves a span."""
    scoped = sorted(
        (
            spans.extract(doc.source, doc.language, issue.range, tree=doc.tree).lines,
            n,
            issue,
        )
        for n, issue in enumerate(issues)
    )
    groups: list[tuple[LineRange, list[CodeIssue]]] = []
    for lines, _, issue in scoped:
        if groups and lines.start <= groups[-1][0].end:
            last_lines, members = groups[-1]
            groups[-1] = (LineRange(last_lines.start, max(last_lines.end, lines.end)), members)
            members.append(issue)
        else:
            groups.append((lines, [issue]))
    return [members for _, members in groups]


def workspace_edit(ls: AceServer, doc: DocState, edits: Sequence[TextEdit]) -> lsp.WorkspaceEdit:
    lines = SourceLines(doc.source)
    lsp_edits: list[lsp.TextEdit | lsp.AnnotatedTextEdit | lsp.SnippetTextEdit] = [
        lsp.TextEdit(range=range_to_client(lines, e.range, ls.encoding), new_text=e.new_text)
        for e in sorted(edits, key=lambda e: (e.range.start, e.range.end))
    ]
    caps = ls.client_capabilities.workspace
    if not (caps and caps.workspace_edit and caps.workspace_edit.document_changes):
        return lsp.WorkspaceEdit(changes={doc.uri: lsp_edits})  # type: ignore[dict-item]
    ident = lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version)
    return lsp.WorkspaceEdit(document_changes=[lsp.TextDocumentEdit(ident, lsp_edits)])


async def _issues_on_lines(doc: DocState, lines: LineRange) -> list[CodeIssue]:
    """For a line with no diagnostic in the request: ruff's for Python, else a general ask."""
    spec = languages.resolve(doc.language, doc.uri)
    if spec is not None and spec.name == "python":
        found = ruff.to_issues(doc.source, await ruff.check(doc.source.text, doc.path))
        inside = [i for i in found if lines.start <= i.range.start.line <= lines.end]
        if inside:
            return inside
    where = (
        f"line {lines.start + 1}"
        if lines.start == lines.end
        else f"lines {lines.start + 1}-{lines.end + 1}"
    )
    return [
        CodeIssue(
            TextRange(Position(lines.start, 0), Position(lines.end + 1, 0)),
            f"Find and fix the bugs on {where}.",
        )
    ]


def _lines_of(ls: AceServer, doc: DocState, rng: lsp.Range | None) -> LineRange:
    if rng is None:
        raise FixFailed("This ACE action has no range; select the code and try again.")
    lines = SourceLines(doc.source)
    r = range_from_client(lines, rng, ls.encoding)
    end = r.end.line - 1 if r.end.character == 0 and r.end.line > r.start.line else r.end.line
    last = max(doc.source.line_count - 1, 0)
    return LineRange(min(r.start.line, last), min(max(end, r.start.line), last))


async def _one(
    ls: AceServer,
    doc: DocState,
    issues: Sequence[CodeIssue],
    report: Report,
    tier: Tier | None = None,
) -> AutoFix:
    settings = ls.settings
    orch = await ls.orchestrator()
    try:
        fix = await ace_auto_fix(
            orch,
            file_path=doc.path,
            code=doc.source.text,
            issues=issues,
            risk_level=settings.risk_level,
            tier=tier or settings.tier,
            user=settings.user_id,
            language=doc.language,
            tree=doc.tree,
            options=settings.call_options(TaskType.AUTO_FIX, orch.budget, on_progress=report),
            mask_secrets=settings.mask_secrets,
        )
    except NoFix as exc:
        status.remember_call(ls, None, exc.attempts)
        raise
    status.remember_call(ls, fix.model, fix.attempts)
    return fix


async def run(ls: AceServer, job: Job, token: lsp.ProgressToken | None = None) -> lsp.WorkspaceEdit:
    """Compute the job's edit for the version it names; FixFailed with the reason otherwise."""
    doc = current(ls, job.uri, job.version)
    title = {FIX_ALL: "Fix all with ACE", IMPROVE: "Improve with ACE"}.get(job.kind, "Fix with ACE")
    try:
        async with job_progress(ls, title, token) as report:
            edits = await _edits(ls, doc, job, report)
    except AceError as exc:
        log.info("%s failed: %s", title, exc.reason)
        ls.tell(f"ACE: {exc.reason}")
        raise FixFailed(exc.reason) from None
    finally:
        ls.background(status.publish(ls))  # also after a cancel: the money spent is shown
    if ls.documents.get(job.uri) is not doc or doc.version != job.version:
        raise FixFailed("The document changed while ACE was working; ask for the fix again.")
    return workspace_edit(ls, doc, edits)


async def _edits(ls: AceServer, doc: DocState, job: Job, report: Report) -> list[TextEdit]:
    if job.kind == IMPROVE:
        settings = ls.settings
        orch = await ls.orchestrator()
        improved = await ace_improve(
            orch,
            file_path=doc.path,
            code=doc.source.text,
            lines=_lines_of(ls, doc, job.range),
            tier=settings.tier,
            user=settings.user_id,
            language=doc.language,
            tree=doc.tree,
            options=settings.call_options(TaskType.REFACTOR, orch.budget, on_progress=report),
            mask_secrets=settings.mask_secrets,
        )
        status.remember_call(ls, improved.model, improved.attempts)
        return list(improved.patch.edits)
    if job.kind == LINE:
        issues = await _issues_on_lines(doc, _lines_of(ls, doc, job.range))
    else:
        issues = to_issues(ls, doc, job.diagnostics)
    if not issues:
        raise FixFailed("There is nothing to fix here: the action carries no diagnostic.")
    prefetched = ls.prefetched.pop((doc.uri, doc.version, _key(job.diagnostics)), None)
    if prefetched is not None and job.kind == FIX:
        return list(prefetched.patch.edits)
    if job.kind != FIX_ALL:
        return list((await _one(ls, doc, issues, report)).patch.edits)
    groups = group_by_span(doc, issues)
    results = await asyncio.gather(
        *(_one(ls, doc, group, report) for group in groups), return_exceptions=True
    )
    edits: list[TextEdit] = []
    failures: list[str] = []
    for result in results:
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, AceError):
            failures.append(result.reason)
        elif isinstance(result, BaseException):
            raise result
        else:
            edits.extend(result.patch.edits)
    if not edits:
        raise NoFix(failures[0] if failures else "No fix was found.")
    if failures:
        ls.tell(
            f"ACE fixed {len(groups) - len(failures)} of {len(groups)} places; "
            f"the others failed: {failures[0]}",
            lsp.MessageType.Warning,
        )
    return edits


def _key(diagnostics: Sequence[lsp.Diagnostic]) -> tuple[Any, ...]:
    return tuple(
        (
            d.range.start.line,
            d.range.start.character,
            d.range.end.line,
            d.range.end.character,
            str(d.code),
            d.message,
        )
        for d in diagnostics
    )


def prefetch(ls: AceServer, uri: str, diagnostic: lsp.Diagnostic) -> None:
    """Fix `diagnostic` in the background with the free tier's chain, so picking it is instant."""
    running = ls.prefetching.get(uri)
    if running is not None and not running.done():
        return  # never more than one prefetch in flight per document
    doc = ls.documents.get(uri)
    if doc is None or doc.problem is not None:
        return
    key = (uri, doc.version, _key([diagnostic]))
    if key in ls.prefetched:
        return

    async def work() -> None:
        try:
            fix = await _one(ls, doc, to_issues(ls, doc, [diagnostic]), lambda _p: None, Tier.FREE)
        except AceError as exc:
            log.info("prefetch found no fix: %s", exc.reason)
            return
        finally:
            ls.background(status.publish(ls))
        current_doc = ls.documents.get(uri)
        if current_doc is not None and current_doc.version == doc.version:
            stale = [k for k in ls.prefetched if k[0] == uri]
            for k in stale:
                del ls.prefetched[k]
            ls.prefetched[key] = fix

    ls.prefetching[uri] = ls.background(work())
