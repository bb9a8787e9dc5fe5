"""`textDocument/codeAction`, `codeAction/resolve` and the `ace.fix` command.

Listing is instant and calls no model: "Fix with ACE" per diagnostic (from any source), "Fix all
with ACE" (`source.fixAll.ace`) for several, "Fix with ACE" on a line when the request carries no
diagnostic, and on a selection "Improve with ACE" (`refactor.rewrite`) and "Review with ACE".
Titles name the model the router would pick for the account the call will be made for (in team
mode the database role) and its expected cost; each action's `data` carries them too, as "model"
and "costUsd", so that a client need not parse the title. The work happens on resolve,
or on `ace.fix` for clients that cannot resolve edits (the server then sends
`workspace/applyEdit`); edits are pinned to the version they were computed for. Every action
is tagged `CodeActionTag.LlmGenerated` and none is `isPreferred`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from lsprotocol import types as lsp

from ace_lsp.orchestrator.budget import usd
from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS, MAX_TITLE_CHARS, clip
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType
from ace_lsp.server.base import AceServer, Feature
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.documents import Documents
from ace_lsp.server.engine import Engine, account
from ace_lsp.server.fixing import FIX, FIX_ALL, IMPROVE, LINE, Fixes, Job, converter
from ace_lsp.server.review import Reviews

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


@dataclass(frozen=True)
class Quote:
    """What a title promises: the model the router picks now and its estimated cost."""

    model: str | None = None
    cost_usd: float | None = None

    @property
    def suffix(self) -> str:
        """ " · devstral-small · ~$0.0004", or nothing when no model is known."""
        if self.model is None or self.cost_usd is None:
            return ""
        price = "free" if self.cost_usd == 0 else f"~{usd(self.cost_usd)}"
        return f" · {self.model} · {price}"


def quote(model: ModelSpec | None, span_bytes: int) -> Quote:
    """The quote for a span of `span_bytes` (a rough token count: a system prompt, 3 bytes a
    token, and a typical reply)."""
    if model is None:
        return Quote()
    cost = model.cost(SYSTEM_PROMPT_TOKENS + span_bytes // 3, EXPECTED_OUTPUT_TOKENS)
    return Quote(model.id, cost)


class CodeActions(Feature):
    """Lists ACE's code actions (instantly, from the router's current pick) and resolves them
    through `Fixes`; lists the quick fixes of review findings through `Reviews`."""

    name = "code actions"

    def __init__(
        self,
        server: AceServer,
        config: Configuration,
        documents: Documents,
        engine: Engine,
        fixes: Fixes,
        reviews: Reviews,
    ) -> None:
        self.server = server
        self.config = config
        self.documents = documents
        self.engine = engine
        self.fixes = fixes
        self.reviews = reviews

    def register(self) -> None:
        server = self.server
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
            params: lsp.CodeActionParams,
        ) -> Generator[Any, Any, list[lsp.CodeAction]]:
            # a pygls generator handler: it yields (handler, args, kwargs) to wait on, only in
            # the first moments after start, while the orchestrator opens; then it never waits
            if self.engine.opening:
                yield self._router_ready, (), {}
            return self.list_actions(params)

        @server.feature(lsp.CODE_ACTION_RESOLVE)
        async def resolve(action: lsp.CodeAction) -> lsp.CodeAction:
            if action.data is not None:
                action.edit = await self.fixes.run(Job.parse(action.data))
            return action

        @server.command(FIX_COMMAND)
        async def fix_command(*args: Any) -> dict[str, Any]:
            job = Job.parse(args[0] if args else None)
            edit = await self.fixes.run(job)
            label = "Improve with ACE" if job.kind == IMPROVE else "Fix with ACE"
            applied = await server.workspace_apply_edit_async(
                lsp.ApplyWorkspaceEditParams(edit=edit, label=label)
            )
            if not applied.applied:
                reason = applied.failure_reason or "the editor refused the edit"
                server.tell(f"ACE: the fix was not applied: {reason}.", lsp.MessageType.Warning)
            return {"applied": applied.applied, "lastCall": self.fixes.status.last_call_json()}

    async def _router_ready(self) -> None:
        """Wait (at most OPENING_WAIT_S) for the orchestrator, so that titles can name the model
        and its cost; a failure to open is the opener's to report, not the listing's."""
        opening = self.server.background(self.engine.get())
        await asyncio.wait({opening}, timeout=OPENING_WAIT_S)

    def _pick(self, task: TaskType) -> tuple[ModelSpec | None, bool]:
        """The model the router picks now for `task`, for the account the call will be made
        for, and whether any model can do it (False: no key, no budget); never waits."""
        orch = self.engine.current
        if orch is None:
            return None, True
        s = self.config.settings
        request = LLMRequest(
            task, (Message("user", ""),), tier=s.tier, user=account(orch, s.user_id)
        )
        chain = orch.route(request, s.call_options(task, orch.budget)).chain
        return (chain[0] if chain else None), bool(chain)

    def _can_resolve_edit(self) -> bool:
        caps = self.server.client_capabilities.text_document
        resolve = caps.code_action.resolve_support if caps and caps.code_action else None
        return bool(resolve and "edit" in resolve.properties)

    def _action(
        self, title: str, kind: str, job: Job, diagnostics: list[lsp.Diagnostic] | None = None
    ) -> lsp.CodeAction:
        data = job.data()
        action = lsp.CodeAction(title=title, kind=kind, diagnostics=diagnostics or None, data=data)
        if not self._can_resolve_edit():
            action.command = lsp.Command(title=title, command=FIX_COMMAND, arguments=[data])
        return action

    def list_actions(self, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
        doc = self.documents.get(params.text_document.uri)
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
        span_bytes = min(len(doc.source.data), 6000)  # a function's worth; titles stay cheap
        fixer, _ = self._pick(TaskType.AUTO_FIX)
        fix = quote(fixer, span_bytes)
        actions: list[lsp.CodeAction] = []

        def job(kind: str, diags: tuple[lsp.Diagnostic, ...], rng: lsp.Range | None = None) -> Job:
            return Job(kind, doc.uri, doc.version, diags, rng, fix.model, fix.cost_usd)

        if _wants(only, lsp.CodeActionKind.QuickFix):
            for d in diagnostics:
                title = f"Fix with ACE{fix.suffix}: {clip(d.message, MAX_TITLE_CHARS)}"
                actions.append(
                    self._action(title, lsp.CodeActionKind.QuickFix, job(FIX, (d,)), [d])
                )
            # A line without diagnostics gets a fix only when the user asked (Ctrl+., a key in
            # Neovim or Emacs), not when VS Code polls for its lightbulb on every cursor move.
            auto = params.context.trigger_kind == lsp.CodeActionTriggerKind.Automatic
            if not diagnostics and not auto:
                rng = params.range
                last = max(rng.end.line - (rng.end.character == 0), rng.start.line)
                where = (
                    f"line {rng.start.line + 1}"
                    if last == rng.start.line
                    else f"lines {rng.start.line + 1}-{last + 1}"
                )
                title = f"Fix with ACE{fix.suffix}: {where}"
                actions.append(self._action(title, lsp.CodeActionKind.QuickFix, job(LINE, (), rng)))
            if self.config.settings.prefetch and diagnostics:
                self.fixes.prefetch(doc.uri, diagnostics[0])
        if len(diagnostics) > 1 and _wants(only, FIX_ALL_KIND):
            title = f"Fix all with ACE ({len(diagnostics)} diagnostics){fix.suffix}"
            actions.append(
                self._action(title, FIX_ALL_KIND, job(FIX_ALL, tuple(diagnostics)), diagnostics)
            )
        selection = params.range.start != params.range.end
        if selection and not diagnostics:
            # offered only when some model can do it: offline, no action that can only fail
            improver, routable = self._pick(TaskType.REFACTOR)
            if _wants(only, lsp.CodeActionKind.RefactorRewrite) and routable:
                improve = quote(improver, span_bytes)
                title = f"Improve with ACE{improve.suffix}"
                improve_job = Job(
                    IMPROVE, doc.uri, doc.version, (), params.range, improve.model, improve.cost_usd
                )
                actions.append(self._action(title, lsp.CodeActionKind.RefactorRewrite, improve_job))
            reviewer, routable = self._pick(TaskType.CODE_REVIEW)
            if _wants(only, REVIEW_KIND) and routable:
                arg = {"uri": doc.uri, "range": converter.unstructure(params.range)}
                title = f"Review with ACE{quote(reviewer, span_bytes).suffix}"
                actions.append(
                    lsp.CodeAction(
                        title=title,
                        kind=REVIEW_KIND,
                        command=lsp.Command(title=title, command=REVIEW_COMMAND, arguments=[arg]),
                    )
                )
        actions.extend(self.reviews.review_actions(params.text_document.uri, params.range))
        for action in actions:
            # A model writes (or wrote) each one: LSP 3.18's tag lets an editor show them apart
            # (clients that do not know it ignore it), and none is preferred, so none displaces
            # the linter's own quick fix as the one an editor applies without asking.
            action.tags = [lsp.CodeActionTag.LlmGenerated]
            action.is_preferred = None
        return actions
