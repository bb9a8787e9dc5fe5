"""`$/progress` for slow jobs, and `window/workDoneProgress/cancel` cancelling them.

A job runs inside `async with progress.job("Fix with ACE", token) as report:`; `report` is
the orchestrator's progress callback (model, attempt n of m, tokens so far). The client's token is
used when the request carried one; else one is created with `window/workDoneProgress/create` when
the client supports it. Cancelling the progress cancels the job's task, and with it the HTTP call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from lsprotocol import types as lsp

from ace_lsp.orchestrator.call import Progress
from ace_lsp.server.base import AceServer, Feature

log = logging.getLogger(__name__)

REPORT_EVERY_S = 0.1  # at most ~10 reports a second while tokens stream in

Report = Callable[[Progress], None]


def describe(p: Progress) -> str:
    tokens = f" · {p.output_tokens} tokens" if p.output_tokens else ""
    return f"{p.model} (attempt {p.attempt} of {p.of}){tokens}"


class WorkProgress(Feature):
    """The jobs running under a progress token, so that cancelling the progress cancels them."""

    name = "progress"

    def __init__(self, server: AceServer) -> None:
        self.server = server
        self._jobs: dict[lsp.ProgressToken, asyncio.Task[object]] = {}

    def register(self) -> None:
        @self.server.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CANCEL)
        def cancel(params: lsp.WorkDoneProgressCancelParams) -> None:
            task = self._jobs.pop(params.token, None)
            if task is not None and not task.done():
                log.info("cancelling the job of progress %s", params.token)
                task.cancel()

    def _client_supports(self) -> bool:
        window = self.server.client_capabilities.window
        return bool(window and window.work_done_progress)

    @asynccontextmanager
    async def job(
        self, title: str, token: lsp.ProgressToken | None = None
    ) -> AsyncIterator[Report]:
        """Report a job's progress; yields the callback for CallOptions.on_progress."""
        ls = self.server
        if token is None and self._client_supports():
            token = f"ace-{uuid.uuid4().hex}"
            try:
                await ls.work_done_progress.create_async(token)
            except Exception as exc:  # a client may refuse; the job goes on without a bar
                log.info("the client refused a progress token (%s)", exc)
                token = None
        if token is None:
            yield lambda _p: None
            return
        task = asyncio.current_task()
        if task is not None:
            self._jobs[token] = task
        last_at, last_text = 0.0, ""

        def report(p: Progress) -> None:
            nonlocal last_at, last_text
            text = describe(p)
            now = time.monotonic()
            if text == last_text or (p.output_tokens and now - last_at < REPORT_EVERY_S):
                return
            last_at, last_text = now, text
            ls.work_done_progress.report(token, lsp.WorkDoneProgressReport(message=text))

        ls.work_done_progress.begin(
            token, lsp.WorkDoneProgressBegin(title=title, cancellable=True, message="routing…")
        )
        outcome = "done"
        try:
            yield report
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "failed"
            raise
        finally:
            self._jobs.pop(token, None)
            ls.work_done_progress.tokens.pop(token, None)
            ls.work_done_progress.end(token, lsp.WorkDoneProgressEnd(message=outcome))
