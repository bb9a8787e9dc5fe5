"""Code review as an LSP feature: the `ace.review` command (`workspace/executeCommand`), review
findings published as diagnostics (`textDocument/publishDiagnostics`, source "ace"), and quick
fixes from findings' validated patches (`review_actions`, listed by `textDocument/codeAction`).

A review covers one function or class (a span) and is cached by a hash of the span's text, the
language and the tier, so the same code is reviewed once for the command and for hover. The
findings of every reviewed span of a document are published together; when the document changes,
the next review or hover finds each span's text again (moved lines shift its diagnostics) and drops
the diagnostics of a span whose text changed. A finding's patch is offered as a quick fix only
while the document is at the version the review was made (or re-checked) for.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from lsprotocol import converters
from lsprotocol import types as lsp

from ace_lsp.orchestrator.ace import Review, ace_review
from ace_lsp.orchestrator.code import patches, spans
from ace_lsp.orchestrator.code.review import Finding
from ace_lsp.orchestrator.code.source import Source, utf16_len
from ace_lsp.orchestrator.errors import AceError, NoFix, PatchError
from ace_lsp.orchestrator.types import LineRange, Position, TaskType, TextRange, Tier
from ace_lsp.server.base import AceServer, Feature, FixFailed
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.documents import DocState, Documents
from ace_lsp.server.edits import workspace_edit
from ace_lsp.server.engine import Engine
from ace_lsp.server.positions import SourceLines, range_from_client, range_to_client
from ace_lsp.server.progress import WorkProgress
from ace_lsp.server.status import Status

log = logging.getLogger(__name__)

COMMAND = "ace.review"
SOURCE = "ace"
CODE = "ace-review"
CACHE_ENTRIES = 256
CACHE_BYTES = 16 * 1024 * 1024  # span texts and patched file texts held by the cache
SEVERITIES: dict[str, lsp.DiagnosticSeverity] = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "info": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}
_converter = converters.get_converter()


# -- pure parts ------------------------------------------------------------------------------------


def review_key(text: bytes, language: str | None, tier: Tier) -> str:
    """The cache key of a span's review: its exact text, the document's language and the tier."""
    digest = hashlib.sha256(f"{language or ''}\0{tier.value}\0".encode())
    digest.update(text)
    return digest.hexdigest()


@dataclass(frozen=True)
class Cached:
    """A review and the document version its lines and patches belong to."""

    review: Review
    uri: str
    version: int

    @property
    def size(self) -> int:
        span = self.review.span
        patched = sum(len(f.patch.new_text) for f in self.review.findings if f.patch is not None)
        return span.end_byte - span.start_byte + patched


class ReviewCache:
    """Least recently used reviews by `review_key`, bounded in entries and in bytes held."""

    def __init__(self, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Cached] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> Cached | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, item: Cached) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._items[key] = item
        self._bytes += item.size
        while len(self._items) > 1 and (
            len(self._items) > self.entries or self._bytes > self.max_bytes
        ):
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.size


def position_of_byte(source: Source, offset: int) -> Position:
    row = source.line_of_byte(offset)
    return source.to_position(row, offset - source.line_start_byte(row))


def span_range(source: Source, span: spans.Span) -> TextRange:
    return TextRange(
        position_of_byte(source, span.start_byte), position_of_byte(source, span.end_byte)
    )


def span_text(source: Source, span: spans.Span) -> bytes:
    return source.data[span.start_byte : span.end_byte]


def finding_range(source: Source, lines: LineRange) -> TextRange:
    """From the first non-blank character of the first line to the end of the last one."""
    first = source.line_text(lines.start)
    indent = first[: len(first) - len(first.lstrip())]
    return TextRange(
        Position(lines.start, utf16_len(indent)),
        Position(lines.end, utf16_len(source.line_text(lines.end))),
    )


def shifted(lines: LineRange, delta: int) -> LineRange:
    return LineRange(lines.start + delta, lines.end + delta)


def to_diagnostic(
    source: Source, finding: Finding, encoding: str, delta: int = 0
) -> lsp.Diagnostic:
    """One finding, `delta` lines further down, as an LSP diagnostic in the client's encoding."""
    rng = finding_range(source, shifted(finding.lines, delta))
    return lsp.Diagnostic(
        range=range_to_client(SourceLines(source), rng, encoding),
        message=finding.message,
        severity=SEVERITIES.get(finding.severity, lsp.DiagnosticSeverity.Warning),
        code=CODE,
        source=SOURCE,
    )


def rebase(review: Review, span: spans.Span, doc: DocState, path: str) -> Review:
    """A cached review moved onto `span`, the same text elsewhere (another line, version or file).

    Finding lines shift with the span; each patch is validated again on the current text (its
    edits move with it), and dropped if it no longer applies.
    """
    delta = span.start_line - review.span.start_line

    def moved(f: Finding) -> Finding:
        patch = None
        if f.patch is not None:
            try:
                patch = patches.validate(
                    doc.source.text,
                    f.patch.diff,
                    span.lines,
                    path=review.path,  # the diff names the file it was written for
                    language=doc.language,
                    original_tree=doc.tree,
                )
            except PatchError as exc:
                log.info("a cached review fix no longer applies: %s", exc)
        return replace(f, lines=shifted(f.lines, delta), patch=patch)

    return replace(review, path=path, span=span, findings=tuple(moved(f) for f in review.findings))


def summary(review: Review, cached: bool) -> dict[str, Any]:
    """What `ace.review` returns (1-based lines)."""
    return {
        "model": review.model,
        "costUsd": round(review.cost_usd, 6),
        "cached": cached,
        "findings": [
            {
                "line": f.lines.start + 1,
                "endLine": f.lines.end + 1,
                "severity": f.severity,
                "message": f.message,
                "hasPatch": f.patch is not None,
            }
            for f in review.findings
        ],
    }


# -- per-document state ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """A review whose findings a document shows, and where its span's text is now."""

    review: Review  # lines and patches of document version `version`
    text: bytes  # the span's text
    version: int
    start_byte: int  # where `text` starts in version `seen`
    start_line: int
    seen: int

    @property
    def delta(self) -> int:
        """Lines the span moved since the review."""
        return self.start_line - self.review.span.start_line


def relocate(shown: Shown, doc: DocState, path: str) -> Shown | None:
    """`shown` at `doc`'s version: its text found again (nearest the old place) as the same
    function or class, or None when the span's text changed."""
    if shown.seen == doc.version:
        return shown
    source, text = doc.source, shown.text
    found = [
        i
        for i in (
            source.data.find(text, shown.start_byte),
            source.data.rfind(text, 0, shown.start_byte + len(text)),
        )
        if i != -1
    ]
    if not found:
        return None
    start = min(found, key=lambda i: abs(i - shown.start_byte))
    end = start + len(text)
    if shown.review.span.kind != "window":
        # The old text may now be only part of its function (a line added at its end).
        rng = TextRange(position_of_byte(source, start), position_of_byte(source, end))
        again = spans.extract(source, doc.language, rng, path=path, tree=doc.tree)
        if (again.start_byte, again.end_byte) != (start, end):
            return None
    return replace(shown, start_byte=start, start_line=source.line_of_byte(start), seen=doc.version)


def target_of(doc: DocState, where: lsp.Range | lsp.Position, encoding: str) -> TextRange:
    rng = where if isinstance(where, lsp.Range) else lsp.Range(where, where)
    return range_from_client(SourceLines(doc.source), rng, encoding)


def span_at(doc: DocState, target: TextRange) -> spans.Span:
    return spans.extract(doc.source, doc.language, target, path=doc.path, tree=doc.tree)


def _arguments(args: Sequence[Any]) -> tuple[str, lsp.Range]:
    data: Any = args[0] if args else None
    if isinstance(data, list) and data:  # some clients pass the arguments array itself
        data = data[0]
    try:
        return str(data["uri"]), _converter.structure(data["range"], lsp.Range)
    except Exception as exc:  # KeyError, TypeError, cattrs' validation errors, …
        raise FixFailed(
            'ace.review takes {"uri": ..., "range": ...}; ask for the review again.'
        ) from exc


# -- the feature -----------------------------------------------------------------------------------


class Reviews(Feature):
    """One server's reviews: the cache, what each document shows, and the `ace.review` command."""

    name = "reviews"

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
        self.cache = ReviewCache()
        self._shown: dict[str, list[Shown]] = {}
        # uri -> (version, diagnostics) last computed; `dirty`: a review was added since
        self._published: dict[str, tuple[int, list[lsp.Diagnostic]]] = {}
        self._dirty: set[str] = set()

    def register(self) -> None:
        @self.server.command(COMMAND)
        async def review_command(*args: Any) -> dict[str, Any]:
            try:
                uri, rng = _arguments(args)
                doc = self.documents.current(uri)
                target = target_of(doc, rng, self.server.encoding)
                review, cached = await self.review_span(doc, target)
            except FixFailed as exc:
                self.server.tell(f"ACE: {exc.message}")
                raise
            return summary(review, cached)

    def _publish(self, uri: str, version: int | None, diagnostics: list[lsp.Diagnostic]) -> None:
        self.server.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def sync(self, uri: str) -> None:
        """Bring `uri`'s reviewed spans to its current version and publish their findings if the
        diagnostics changed; a closed document's are cleared."""
        doc = self.documents.get(uri)
        last = self._published.get(uri)
        if doc is None or doc.problem is not None:
            self._shown.pop(uri, None)
            self._dirty.discard(uri)
            self._published.pop(uri, None)
            if last is not None and last[1]:
                self._publish(uri, None, [])
            return
        entries = self._shown.get(uri, [])
        if not entries and (last is None or not last[1]):
            return  # nothing to show, nothing to clear
        if last is not None and last[0] == doc.version and uri not in self._dirty:
            return
        self._dirty.discard(uri)
        path = doc.path
        at: dict[tuple[int, int], Shown] = {}  # one review per place: the latest wins
        for entry in entries:
            moved = relocate(entry, doc, path)
            if moved is not None:
                at[(moved.start_byte, len(moved.text))] = moved
        kept = sorted(at.values(), key=lambda e: e.start_byte)
        if kept:
            self._shown[uri] = kept
        else:
            self._shown.pop(uri, None)
        encoding = self.server.encoding
        diagnostics = [
            to_diagnostic(doc.source, f, encoding, e.delta) for e in kept for f in e.review.findings
        ]
        self._published[uri] = (doc.version, diagnostics)
        if last is None or last[1] != diagnostics:
            self._publish(uri, doc.version, diagnostics)

    def _show(self, doc: DocState, review: Review) -> None:
        """Add `review` (made for `doc`'s version) to what its document shows, and publish."""
        entries = self._shown.setdefault(doc.uri, [])
        if any(e.seen == doc.version and e.review is review for e in entries):
            return  # shown already: a cached hover of the same span
        span = review.span
        entries.append(
            Shown(
                review=review,
                text=span_text(doc.source, span),
                version=doc.version,
                start_byte=span.start_byte,
                start_line=span.start_line,
                seen=doc.version,
            )
        )
        self._dirty.add(doc.uri)
        known = {*self._shown, *self._published}
        for uri in [u for u in known if self.documents.get(u) is None]:
            self.sync(uri)  # forget closed documents
        self.sync(doc.uri)

    def cached_review(self, doc: DocState, span: spans.Span) -> Review | None:
        """The cached review of `span`'s text, moved onto it and shown; no model call."""
        key = review_key(span_text(doc.source, span), doc.language, self.config.settings.tier)
        hit = self.cache.get(key)
        if hit is None:
            return None
        review = hit.review
        here = hit.uri == doc.uri and hit.version == doc.version
        if not (here and review.span.start_byte == span.start_byte):
            review = rebase(review, span, doc, doc.path)
            self.cache.put(key, Cached(review, doc.uri, doc.version))
        self._show(doc, review)
        return review

    async def review_span(
        self, doc: DocState, target: TextRange, token: lsp.ProgressToken | None = None
    ) -> tuple[Review, bool]:
        """The review of the span around `target` (cached, else from a model) and whether it was
        cached; it is shown in the document. FixFailed with the reason when no model gave one."""
        span = span_at(doc, target)
        hit = self.cached_review(doc, span)
        if hit is not None:
            return hit, True
        orch = await self.engine.get()
        try:
            async with self.progress.job("Review with ACE", token) as report:
                ctx = self.engine.context(orch, doc, TaskType.CODE_REVIEW, report)
                review = await ace_review(orch, ctx, target)
        except asyncio.CancelledError:
            self.status.publish_soon()  # the input already sent is paid for: show it
            raise
        except AceError as exc:
            log.info("review failed: %s", exc.reason)
            self.status.remember_call(None, exc.attempts if isinstance(exc, NoFix) else ())
            await self.status.publish()
            raise FixFailed(exc.reason) from None
        self.status.remember_call(review.model, review.attempts)
        key = review_key(span_text(doc.source, review.span), doc.language, ctx.tier)
        self.cache.put(key, Cached(review, doc.uri, doc.version))
        self._show(doc, review)
        await self.status.publish()
        return review, False

    def review_actions(self, uri: str, rng: lsp.Range) -> list[lsp.CodeAction]:
        """ "Apply ACE review fix: …" quick fixes for the findings on `rng`'s lines whose patch
        passed the gate, carrying their edit (pinned to the document version); no model call."""
        doc = self.documents.get(uri)
        entries = self._shown.get(doc.uri) if doc is not None else None
        if doc is None or doc.problem is not None or not entries:
            return []
        encoding = self.server.encoding
        target = target_of(doc, rng, encoding)
        actions: list[lsp.CodeAction] = []
        for entry in entries:
            if entry.version != doc.version:
                continue  # the patches were made for another text
            for f in entry.review.findings:
                if (
                    f.patch is None
                    or f.lines.start > target.end.line
                    or f.lines.end < target.start.line
                ):
                    continue
                actions.append(
                    lsp.CodeAction(
                        title=f"Apply ACE review fix: {f.message}",
                        kind=lsp.CodeActionKind.QuickFix,
                        diagnostics=[to_diagnostic(doc.source, f, encoding)],
                        edit=workspace_edit(self.server, doc, f.patch.edits),
                    )
                )
        return actions
