"""`textDocument/hover`: ACE's review of the function or class under the cursor.

Setting `hoverReview` decides: "off" shows nothing; "cached" (the default) shows the review that
`ace.review` (or an earlier hover) left in the cache and never calls a model; "auto" reviews the
span on a cache miss. When the editor cancels the hover (`$/cancelRequest`), pygls cancels this
handler's task, and with it the model's HTTP call; nothing is published after that.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from ace_lsp.orchestrator.ace import Review
from ace_lsp.orchestrator.budget import usd
from ace_lsp.orchestrator.code import markdown
from ace_lsp.orchestrator.types import LineRange
from ace_lsp.server.base import AceServer, Feature, FixFailed
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.documents import Documents
from ace_lsp.server.positions import SourceLines, range_to_client
from ace_lsp.server.review import Reviews, span_at, span_range, target_of

DASH = "\N{EN DASH}"  # between the lines of a range, as typeset: "line 12\N{EN DASH}14"


def lines_label(lines: LineRange) -> str:
    """ "line 12", or "line 12-14" with an en dash; 1-based."""
    if lines.start == lines.end:
        return f"line {lines.start + 1}"
    return f"line {lines.start + 1}{DASH}{lines.end + 1}"


def heading(rev: Review) -> str:
    span = rev.span
    if span.name:
        return f"### ACE review: {span.kind} {markdown.code(span.name)}"
    return f"### ACE review: lines {span.start_line + 1}{DASH}{span.end_line + 1}"


def _plain(text: str) -> str:
    return text


def render(rev: Review, *, as_markdown: bool = True) -> str:
    """The hover's Markdown: a heading naming the span, the findings, then model and cost.

    A finding's message is a model's text: escaped (`code.markdown`) so that it can show no
    image, link or HTML; a client that takes plain text gets it as it is."""
    escape = markdown.escape if as_markdown else _plain
    findings = [
        f"- **{f.severity}** {lines_label(f.lines)}: {escape(' '.join(f.message.split()))}"
        for f in rev.findings
    ]
    body = "\n".join(findings) if findings else "No findings."
    return f"{heading(rev)}\n\n{body}\n\n_{escape(rev.model)} · {usd(rev.cost_usd)}_"


class Hover(Feature):
    name = "hover"

    def __init__(
        self, server: AceServer, config: Configuration, documents: Documents, reviews: Reviews
    ) -> None:
        self.server = server
        self.config = config
        self.documents = documents
        self.reviews = reviews

    def register(self) -> None:
        @self.server.feature(lsp.TEXT_DOCUMENT_HOVER)
        async def hover(params: lsp.HoverParams) -> lsp.Hover | None:
            return await self.hover(params)

    def _takes_markdown(self) -> bool:
        caps = self.server.client_capabilities.text_document
        formats = caps.hover.content_format if caps and caps.hover else None
        return not formats or lsp.MarkupKind.Markdown in formats

    def _markup(self, text: str) -> lsp.MarkupContent:
        kind = lsp.MarkupKind.Markdown if self._takes_markdown() else lsp.MarkupKind.PlainText
        return lsp.MarkupContent(kind=kind, value=text)

    async def hover(self, params: lsp.HoverParams) -> lsp.Hover | None:
        mode = self.config.settings.hover_review
        if mode == "off":
            return None
        doc = self.documents.get(params.text_document.uri)
        if doc is None or doc.problem is not None:
            return None
        self.reviews.sync(doc.uri)  # a hover republishes the document's review diagnostics
        encoding = self.server.encoding
        target = target_of(doc, params.position, encoding)
        span = span_at(doc, target)
        if span.kind == "window":
            return None  # not inside a function or class
        rng = range_to_client(SourceLines(doc.source), span_range(doc.source, span), encoding)
        if mode == "cached":
            found = self.reviews.cached_review(doc, span)
            if found is None:
                return None
        else:
            try:
                found, _ = await self.reviews.review_span(doc, target, params.work_done_token)
            except FixFailed as exc:
                # the reason can quote a model's reply (a bad field's name): escaped as findings
                markdown_ok = self._takes_markdown()
                message = markdown.escape(exc.message) if markdown_ok else exc.message
                return lsp.Hover(contents=self._markup(f"ACE review failed: {message}"), range=rng)
        text = render(found, as_markdown=self._takes_markdown())
        return lsp.Hover(contents=self._markup(text), range=rng)
