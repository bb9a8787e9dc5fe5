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
from ace_lsp.server import review
from ace_lsp.server.app import AceServer, FixFailed
from ace_lsp.server.positions import SourceLines, range_to_client

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


def _takes_markdown(ls: AceServer) -> bool:
    caps = ls.client_capabilities.text_document
    formats = caps.hover.content_format if caps and caps.hover else None
    return not formats or lsp.MarkupKind.Markdown in formats


def _markup(ls: AceServer, text: str) -> lsp.MarkupContent:
    kind = lsp.MarkupKind.Markdown if _takes_markdown(ls) else lsp.MarkupKind.PlainText
    return lsp.MarkupContent(kind=kind, value=text)


async def hover(ls: AceServer, params: lsp.HoverParams) -> lsp.Hover | None:
    mode = ls.settings.hover_review
    if mode == "off":
        return None
    doc = ls.documents.get(params.text_document.uri)
    if doc is None or doc.problem is not None:
        return None
    review.sync(ls, doc.uri)  # a hover republishes the document's review diagnostics
    target = review.target_of(ls, doc, params.position)
    span = review.span_at(doc, target)
    if span.kind == "window":
        return None  # not inside a function or class
    rng = range_to_client(SourceLines(doc.source), review.span_range(doc.source, span), ls.encoding)
    if mode == "cached":
        found = review.cached_review(ls, doc, span)
        if found is None:
            return None
    else:
        try:
            found, _ = await review.review_span(ls, doc, target, params.work_done_token)
        except FixFailed as exc:
            # the reason can quote a model's reply (a bad field's name): escaped as findings are
            message = markdown.escape(exc.message) if _takes_markdown(ls) else exc.message
            return lsp.Hover(contents=_markup(ls, f"ACE review failed: {message}"), range=rng)
    text = render(found, as_markdown=_takes_markdown(ls))
    return lsp.Hover(contents=_markup(ls, text), range=rng)


def setup(server: AceServer) -> None:
    server.feature(lsp.TEXT_DOCUMENT_HOVER)(hover)
