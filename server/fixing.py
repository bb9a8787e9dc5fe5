"""Running what a code action promises: a fix, a fix of the whole file, a fix of a line, an
improvement — each pinned to the document version it was computed for, with progress and budget.

`Fixes` runs jobs and owns the prefetched fixes; the conversions (a code action's `data` to a
`Job`, diagnostics to issues, grouping by span) are functions. The LSP registration lives in
code_actions.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lsprotocol import converters
from lsprotocol import types as lsp

from ace_lsp.orchestrator import ruff
from ace_lsp.orchestrator.ace import AutoFix, ace_auto_fix, ace_improve
from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS
from ace_lsp.orchestrator.code import languages, spans
from ace_lsp.orchestrator.code.diagnostics import to_issue
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
from ace_lsp.server.base import AceServer, Feature, FixFailed
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.documents import DocState, Documents
from ace_lsp.server.edits import workspace_edit
from ace_lsp.server.engine import Engine
from ace_lsp.server.positions import SourceLines, range_from_client
from ace_lsp.server.progress import Report, WorkProgress
from ace_lsp.server.status import Status

log = logging.getLogger(__name__)
converter = converters.get_converter()

FIX, FIX_ALL, LINE, IMPROVE = "fix", "fixAll", "line", "improve"


@dataclass(frozen=True)
class Job:
    """What a code action carries in `data` (or its command's argument)."""

    kind: str
    uri: str
    version: int
    diagnostics: tuple[lsp.Diagnostic, ...] = ()
    range: lsp.Range | None = None
    # what the title names, for clients that show it otherwise (not read back by the server)
    model: str | None = None
    cost_usd: float | None = None

    def data(self) -> dict[str, Any]:
        """The JSON a code action carries: kind, uri, version, diagnostics and range when set,
        and always "model" and "costUsd" (the title's model id and estimated cost, or null)."""
        out: dict[str, Any] = {"kind": self.kind, "uri": self.uri, "version": self.version}
        if self.diagnostics:
            out["diagnostics"] = converter.unstructure(list(self.diagnostics))
        if self.range is not None:
            out["range"] = converter.unstructure(self.range)
        out["model"] = self.model
        out["costUsd"] = self.cost_usd
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
                    converter.structure(data.get("diagnostics", []), list[lsp.Diagnostic])
                ),
                range=converter.structure(data["range"], lsp.Range) if data.get("range") else None,
                model=_optional_str(data.get("model")),
                cost_usd=_optional_cost(data.get("costUsd")),
            )
        except Exception as exc:  # KeyError, TypeError, cattrs' validation errors, …
            raise FixFailed(
                "This ACE action carries no usable data; ask for code actions again."
            ) from exc


def _optional_str(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("model must be a string or null")


def _optional_cost(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError("costUsd must be a finite number or null")
    return float(value)


def to_issues(
    doc: DocState, diagnostics: Sequence[lsp.Diagnostic], encoding: str
) -> list[CodeIssue]:
    """The diagnostics (not ACE's own) as issues in server positions, with what else they know
    (code, rule page, related places, data; checked and capped by `code.diagnostics`); past
    MAX_DIAGNOSTICS the rest are dropped, with one warning: fixing the first ones is still a fix,
    and running the action again fixes the next ones."""
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
        to_issue(
            converter.unstructure(d), range_from_client(lines, d.range, encoding), doc.is_same_file
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


def lines_of(doc: DocState, rng: lsp.Range | None, encoding: str) -> LineRange:
    """The whole lines a selection covers (a selection ending at a line's start leaves it out)."""
    if rng is None:
        raise FixFailed("This ACE action has no range; select the code and try again.")
    lines = SourceLines(doc.source)
    r = range_from_client(lines, rng, encoding)
    end = r.end.line - 1 if r.end.character == 0 and r.end.line > r.start.line else r.end.line
    last = max(doc.source.line_count - 1, 0)
    return LineRange(min(r.start.line, last), min(max(end, r.start.line), last))


DiagnosticsKey = tuple[tuple[int, int, int, int, str, str], ...]
PrefetchKey = tuple[str, int, DiagnosticsKey]  # uri, version, diagnostics


def diagnostics_key(diagnostics: Sequence[lsp.Diagnostic]) -> DiagnosticsKey:
    """What identifies the diagnostics a prefetched fix was made for."""
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


class Fixes(Feature):
    """Runs fixes and improvements for code actions; owns the fixes prefetched in the background
    (at most one in flight per document; only the latest version's are kept)."""

    name = "fixes"

    def __init__(
        self,
        server: AceServer,
        config: Configuration,
        documents: Documents,
        engine: Engine,
        status: Status,
        progress: WorkProgress,
    ) -> None:
        self.server = server
        self.config = config
        self.documents = documents
        self.engine = engine
        self.status = status
        self.progress = progress
        self._prefetched: dict[PrefetchKey, AutoFix] = {}
        self._prefetching: dict[str, asyncio.Task[None]] = {}

    async def run(self, job: Job, token: lsp.ProgressToken | None = None) -> lsp.WorkspaceEdit:
        """Compute the job's edit for the version it names; FixFailed with the reason otherwise."""
        doc = self.documents.current(job.uri, job.version)
        title = {FIX_ALL: "Fix all with ACE", IMPROVE: "Improve with ACE"}.get(
            job.kind, "Fix with ACE"
        )
        try:
            async with self.progress.job(title, token) as report:
                edits = await self._edits(doc, job, report)
        except AceError as exc:
            log.info("%s failed: %s", title, exc.reason)
            self.server.tell(f"ACE: {exc.reason}")
            raise FixFailed(exc.reason) from None
        finally:
            self.status.publish_soon()  # also after a cancel: the money spent is shown
        if self.documents.get(job.uri) is not doc or doc.version != job.version:
            raise FixFailed("The document changed while ACE was working; ask for the fix again.")
        return workspace_edit(self.server, doc, edits)

    async def _one(
        self,
        doc: DocState,
        issues: Sequence[CodeIssue],
        report: Report,
        tier: Tier | None = None,
    ) -> AutoFix:
        orch = await self.engine.get()
        ctx = self.engine.context(orch, doc, TaskType.AUTO_FIX, report)
        if tier is not None:
            ctx = replace(ctx, tier=tier)
        try:
            fix = await ace_auto_fix(orch, ctx, issues, self.config.settings.risk_level)
        except NoFix as exc:
            self.status.remember_call(None, exc.attempts)
            raise
        self.status.remember_call(fix.model, fix.attempts)
        return fix

    async def _edits(self, doc: DocState, job: Job, report: Report) -> list[TextEdit]:
        encoding = self.server.encoding
        if job.kind == IMPROVE:
            orch = await self.engine.get()
            ctx = self.engine.context(orch, doc, TaskType.REFACTOR, report)
            improved = await ace_improve(orch, ctx, lines_of(doc, job.range, encoding))
            self.status.remember_call(improved.model, improved.attempts)
            return list(improved.patch.edits)
        if job.kind == LINE:
            issues = await _issues_on_lines(doc, lines_of(doc, job.range, encoding))
        else:
            issues = to_issues(doc, job.diagnostics, encoding)
        if not issues:
            raise FixFailed("There is nothing to fix here: the action carries no diagnostic.")
        prefetched = self._prefetched.pop(
            (doc.uri, doc.version, diagnostics_key(job.diagnostics)), None
        )
        if prefetched is not None and job.kind == FIX:
            return list(prefetched.patch.edits)
        if job.kind != FIX_ALL:
            return list((await self._one(doc, issues, report)).patch.edits)
        groups = group_by_span(doc, issues)
        results = await asyncio.gather(
            *(self._one(doc, group, report) for group in groups), return_exceptions=True
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
            self.server.tell(
                f"ACE fixed {len(groups) - len(failures)} of {len(groups)} places; "
                f"the others failed: {failures[0]}",
                lsp.MessageType.Warning,
            )
        return edits

    def prefetch(self, uri: str, diagnostic: lsp.Diagnostic) -> None:
        """Fix `diagnostic` in the background with the free tier's chain, so picking it is
        instant."""
        running = self._prefetching.get(uri)
        if running is not None and not running.done():
            return  # never more than one prefetch in flight per document
        doc = self.documents.get(uri)
        if doc is None or doc.problem is not None:
            return
        key = (uri, doc.version, diagnostics_key([diagnostic]))
        if key in self._prefetched:
            return
        issues = to_issues(doc, [diagnostic], self.server.encoding)

        async def work() -> None:
            try:
                fix = await self._one(doc, issues, lambda _p: None, Tier.FREE)
            except AceError as exc:
                log.info("prefetch found no fix: %s", exc.reason)
                return
            finally:
                self.status.publish_soon()
            current_doc = self.documents.get(uri)
            if current_doc is not None and current_doc.version == doc.version:
                for stale in [k for k in self._prefetched if k[0] == uri]:
                    del self._prefetched[stale]
                self._prefetched[key] = fix

        self._prefetching[uri] = self.server.background(work())
