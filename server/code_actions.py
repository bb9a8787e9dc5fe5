"""`textDocument/codeAction`, `codeAction/resolve` and the `ace.fix` command.

Listing is instant and calls no model: "Fix with ACE" per diagnostic (from any source), "Fix all
with ACE" (`source.fixAll.ace`) for several, "Fix with ACE" on a line when the request carries no
diagnostic, and on a selection "Improve with ACE" (`refactor.rewrite`) and "Review with ACE".
Titles name the model the router would pick and its expected cost. The work happens on resolve,
or on `ace.fix` for clients that cannot resolve edits (the server then sends
`workspace/applyEdit`); edits are pinned to the version they were computed for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from typing import Any

from lsprotocol import types as lsp

from ace_lsp.orchestrator.budget import usd
from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS, MAX_TITLE_CHARS, clip
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType
from ace_lsp.server import fixing
from ace_lsp.server.app import AceServer
from ace_lsp.server.fixing import FIX, FIX_ALL, IMPROVE, LINE, Job

log = logging.getLogger(__name__)

FIX_ALL_KIND = "source.fixAll.ace"
REVIEW_KIND = "refactor.review.ace"
FIX_COMMAND = "ace.fix"
REVIEW_COMMAND = "ace.review"
EXPECTED_OUTPUT_TOKENS = 400  # a typical diff reply; the estimate in titles, not the reservation
OPENING_WAIT_S = 0.5  # a listing right after start waits this long at most for the router
SYSTEM_PROMPT_TOKENS = 350


def _wants(only: list[str] | None, kind: str) -> bool:
    return not only or any(kind == k or kind.startswith(k + ".") for k in only)


def _can_resolve_edit(ls: AceServer) -> bool:
    caps = ls.client_capabilities.text_document
    resolve = caps.code_action.resolve_support if caps and caps.code_action else None
    return bool(resolve and "edit" in resolve.properties)


def _action(
    ls: AceServer, title: str, kind: str, job: Job, diagnostics: list[lsp.Diagnostic] | None = None
) -> lsp.CodeAction:
    data = job.data()
    action = lsp.CodeAction(title=title, kind=kind, diagnostics=diagnostics or None, data=data)
    if not _can_resolve_edit(ls):
        action.command = lsp.Command(title=title, command=FIX_COMMAND, arguments=[data])
    return action


class _Titles:
    """Title suffixes "· devstral-small · ~$0.0004": the model the router picks now, its cost."""

    def __init__(self, ls: AceServer, task: TaskType) -> None:
        self.model = None
        self.routable = True  # False once we know no model can do the task (no key, budget)
        orch = ls._orchestrator  # listing never waits for the orchestrator to open
        if orch is None:
            return
        s = ls.settings
        request = LLMRequest(task, (Message("user", ""),), tier=s.tier, user=s.user_id)
        chain = orch.route(request, s.call_options(task, orch.budget)).chain
        self.model = chain[0] if chain else None
        self.routable = bool(chain)

    def suffix(self, span_bytes: int) -> str:
        if self.model is None:
            return ""
        prompt = SYSTEM_PROMPT_TOKENS + span_bytes // 3
        cost = self.model.cost(prompt, EXPECTED_OUTPUT_TOKENS)
        price = "free" if cost == 0 else f"~{usd(cost)}"
        return f" · {self.model.id} · {price}"


def list_actions(ls: AceServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    doc = ls.documents.get(params.text_document.uri)
    if doc is None:
        return []
    only = [str(k) for k in params.context.only] if params.context.only else None
    diagnostics = [d for d in params.context.diagnostics if d.source != "ace"]
    if len(diagnostics) > MAX_DIAGNOSTICS:
        log.warning(
            "A code action request carried %d diagnostics; ACE offers fixes for the first %d.",
            len(diagnostics),
            MAX_DIAGNOSTICS,
        )
        diagnostics = diagnostics[:MAX_DIAGNOSTICS]
    titles = _Titles(ls, TaskType.AUTO_FIX)
    span_bytes = min(len(doc.source.data), 6000)  # a function's worth; titles stay cheap
    actions: list[lsp.CodeAction] = []
    if _wants(only, lsp.CodeActionKind.QuickFix):
        for d in diagnostics:
            job = Job(FIX, doc.uri, doc.version, (d,))
            title = f"Fix with ACE{titles.suffix(span_bytes)}: {clip(d.message, MAX_TITLE_CHARS)}"
            actions.append(_action(ls, title, lsp.CodeActionKind.QuickFix, job, [d]))
        # A line without diagnostics gets a fix only when the user asked (Ctrl+., a key in
        # Neovim or Emacs), not when VS Code polls for its lightbulb on every cursor move.
        if not diagnostics and params.context.trigger_kind != lsp.CodeActionTriggerKind.Automatic:
            rng = params.range
            job = Job(LINE, doc.uri, doc.version, (), rng)
            last = max(rng.end.line - (rng.end.character == 0), rng.start.line)
            where = (
                f"line {rng.start.line + 1}"
                if last == rng.start.line
                else f"lines {rng.start.line + 1}-{last + 1}"
            )
            title = f"Fix with ACE{titles.suffix(span_bytes)}: {where}"
            actions.append(_action(ls, title, lsp.CodeActionKind.QuickFix, job))
        if ls.settings.prefetch and diagnostics:
            fixing.prefetch(ls, doc.uri, diagnostics[0])
    if len(diagnostics) > 1 and _wants(only, FIX_ALL_KIND):
        job = Job(FIX_ALL, doc.uri, doc.version, tuple(diagnostics))
        title = f"Fix all with ACE ({len(diagnostics)} diagnostics){titles.suffix(span_bytes)}"
        actions.append(_action(ls, title, FIX_ALL_KIND, job, diagnostics))
    selection = params.range.start != params.range.end
    if selection and not diagnostics:
        # offered only when some model can do it: offline, no action that can only fail
        improve = _Titles(ls, TaskType.REFACTOR)
        if _wants(only, lsp.CodeActionKind.RefactorRewrite) and improve.routable:
            job = Job(IMPROVE, doc.uri, doc.version, (), params.range)
            title = f"Improve with ACE{improve.suffix(span_bytes)}"
            actions.append(_action(ls, title, lsp.CodeActionKind.RefactorRewrite, job))
        reviewer = _Titles(ls, TaskType.CODE_REVIEW)
        if _wants(only, REVIEW_KIND) and reviewer.routable:
            review = reviewer.suffix(span_bytes)
            arg = {"uri": doc.uri, "range": fixing._converter.unstructure(params.range)}
            title = f"Review with ACE{review}"
            actions.append(
                lsp.CodeAction(
                    title=title,
                    kind=REVIEW_KIND,
                    command=lsp.Command(title=title, command=REVIEW_COMMAND, arguments=[arg]),
                )
            )
    actions.extend(_review_fixes(ls, params))
    return actions


def _review_fixes(ls: AceServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """Quick fixes that apply a review finding's validated patch (from server/review.py)."""
    from ace_lsp.server import (
        review,  # imported here: review.py imports this package's fixing module
    )

    return review.review_actions(ls, params.text_document.uri, params.range)


async def _router_ready(ls: AceServer) -> None:
    """Wait (at most OPENING_WAIT_S) for the orchestrator, so that titles can name the model and
    its cost; a failure to open is the opener's to report, not the listing's."""
    opening = ls.background(ls.orchestrator())
    await asyncio.wait({opening}, timeout=OPENING_WAIT_S)


def setup(server: AceServer) -> None:
    options = lsp.CodeActionOptions(
        code_action_kinds=[
            lsp.CodeActionKind.QuickFix,
            FIX_ALL_KIND,
            lsp.CodeActionKind.RefactorRewrite,
            REVIEW_KIND,
        ],
        resolve_provider=True,
    )

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, options)
    def code_action(
        ls: AceServer, params: lsp.CodeActionParams
    ) -> Generator[Any, Any, list[lsp.CodeAction]]:
        # a pygls generator handler: it yields (handler, args, kwargs) to wait on, only in the
        # first moments after start, while the orchestrator opens; then listing never waits
        if ls._orchestrator is None and (ls._opening is None or ls._opening.locked()):
            yield _router_ready, (ls,), {}
        return list_actions(ls, params)

    @server.feature(lsp.CODE_ACTION_RESOLVE)
    async def resolve(ls: AceServer, action: lsp.CodeAction) -> lsp.CodeAction:
        if action.data is not None:
            action.edit = await fixing.run(ls, Job.parse(action.data))
        return action

    @server.command(FIX_COMMAND)
    async def fix_command(ls: AceServer, *args: Any) -> dict[str, Any]:
        job = Job.parse(args[0] if args else None)
        edit = await fixing.run(ls, job)
        label = "Improve with ACE" if job.kind == IMPROVE else "Fix with ACE"
        applied = await ls.workspace_apply_edit_async(
            lsp.ApplyWorkspaceEditParams(edit=edit, label=label)
        )
        if not applied.applied:
            reason = applied.failure_reason or "the editor refused the edit"
            ls.tell(f"ACE: the fix was not applied: {reason}.", lsp.MessageType.Warning)
        return {"applied": applied.applied, "lastCall": ls.last_call}
