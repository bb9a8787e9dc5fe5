"""The ACE language server: one pygls server, its features wired in one ordered list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.server import __version__
from ace_lsp.server.settings import Settings

if TYPE_CHECKING:
    from ace_lsp.orchestrator.config import AceConfig
    from ace_lsp.server.documents import DocumentStore

log = logging.getLogger(__name__)


class FixFailed(JsonRpcException):
    """An LSP error (RequestFailed) whose message is the one-sentence reason a fix failed."""

    CODE = lsp.LSPErrorCodes.RequestFailed.value


class _Unreadable:
    """What an unreadable message becomes; pygls ignores a message of an unknown version."""

    jsonrpc = "unreadable"


class AceProtocol(LanguageServerProtocol):
    """pygls' protocol, but a request whose params do not fit the LSP types gets an error answer.

    pygls raises while decoding such a message, before it knows there is a request to answer,
    so the client would wait for ever.
    """

    def structure_message(self, data: Any) -> Any:
        bad_method = isinstance(data, dict) and "method" in data and "jsonrpc" in data
        if bad_method and not isinstance(data["method"], str):
            if "id" in data:
                self._send_response(
                    data["id"],
                    error=lsp.ResponseError(
                        code=lsp.ErrorCodes.InvalidRequest,
                        message="ACE received a request whose method is not a string.",
                    ),
                )
            return _Unreadable()
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                self._send_response(
                    data["id"],
                    error=lsp.ResponseError(
                        code=exc.code,
                        message=f"ACE cannot read the params of {data['method']}; "
                        "they do not match the LSP specification.",
                    ),
                )
            return _Unreadable()

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """pygls 2.1 files the future of every generator or coroutine handler under its id, but
        only a request's answer removes it. Nothing removes those of NOTIFICATION handlers
        (didOpen, didChange, …, under a random id: ~2 KB leaked per keystroke, +40 MB per 20,000
        didChange) nor of the user's coroutine that a builtin generator step runs (commands,
        initialized, shutdown: one task and its result per `workspace/executeCommand`). Drop
        those once the handler is done."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        if getattr(callback, "func", None) != self._send_handler_result:  # no answer pops it
            future = self._request_futures.get(msg_id)
            if future is not None:
                future.add_done_callback(lambda _f: self._forget(msg_id))

    def _forget(self, msg_id: Any) -> None:
        # later, not now: pygls' shutdown cancels these futures while iterating over the dict
        try:
            asyncio.get_running_loop().call_soon(self._request_futures.pop, msg_id, None)
        except RuntimeError:  # no loop running (tests that drive the protocol by hand)
            self._request_futures.pop(msg_id, None)

    def handle_message(self, message: Any) -> None:
        """Answer what pygls would drop in silence, leaving the client waiting for ever."""
        if isinstance(message, _Unreadable):
            return  # answered while decoding
        if not hasattr(message, "jsonrpc"):  # valid JSON, but not a JSON-RPC object
            msg_id = message.get("id") if isinstance(message, dict) else None
            self._send_response(
                msg_id if isinstance(msg_id, str | int) else None,  # type: ignore[arg-type]
                error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidRequest,
                    message="ACE received JSON that is not a JSON-RPC 2.0 message.",
                ),
            )
            return
        is_request = getattr(message, "id", None) is not None and hasattr(message, "method")
        if self._shutdown and is_request and message.method != lsp.EXIT:
            self._send_response(
                message.id,
                error=lsp.ResponseError(
                    code=lsp.ErrorCodes.InvalidRequest,
                    message="ACE is shutting down and takes no more requests.",
                ),
            )
            return
        super().handle_message(message)


class AceServer(LanguageServer):
    """pygls' server plus ACE's state: settings, the orchestrator, jobs, budget display."""

    documents: DocumentStore  # set by server.documents.setup

    def __init__(self, orchestrator: Orchestrator | None = None) -> None:
        super().__init__("ace", __version__, protocol_cls=AceProtocol)
        self._orchestrator = orchestrator
        self._opening: asyncio.Lock | None = None
        self.workspace_root: Path | None = None
        self.init_options: Any = None
        self.settings = Settings()
        self.reported: set[str] = set()  # settings problems already shown
        self.jobs: dict[lsp.ProgressToken, asyncio.Task[Any]] = {}  # progress token -> job
        self.last_call: dict[str, Any] | None = None
        self.budget_warned: set[tuple[Any, ...]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self.prefetched: dict[tuple[Any, ...], Any] = {}  # (uri, version, diagnostics) -> AutoFix
        self.prefetching: dict[str, asyncio.Task[Any]] = {}  # uri -> the one prefetch in flight

    async def orchestrator(self) -> Orchestrator:
        """The orchestrator, opened on first use (config of the workspace, ledger, providers)."""
        if self._orchestrator is None:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if self._orchestrator is None:
                    orch = await Orchestrator.open(await self._config())
                    self._orchestrator = orch
                    if orch.team is not None:
                        orch.team.on_state = self._team_state
                        if orch.team.state == "offline":
                            self._team_state("offline")
        return self._orchestrator

    async def _config(self) -> AceConfig:
        """The config of the workspace; what it refused or ignored is told to the user once."""
        from ace_lsp.orchestrator.config import load_config

        config = await asyncio.to_thread(load_config, self.workspace_root)
        for notice in config.notices:
            log.warning(notice)
            self.tell(f"ACE: {notice}", lsp.MessageType.Warning)
        return config

    def _team_state(self, state: str) -> None:
        """The team ledger went away or came back: say so once, refresh the budget display."""
        team = self._orchestrator.team if self._orchestrator is not None else None
        if team is None:
            return
        if state == "offline":
            allowance = team.offline_status()["allowance"]
            self.tell(
                f"ACE: {team.reason} Fixes go on with an offline allowance of ${allowance:.2f}; "
                "usage is kept locally and sent when the ledger answers again.",
                lsp.MessageType.Warning,
            )
        else:
            self.tell(
                "ACE: the team ledger answers again; usage kept meanwhile has been sent.",
                lsp.MessageType.Info,
            )
        self.background(self.after_settings())

    async def close(self) -> None:
        me = asyncio.current_task()
        for task in list(self._background):
            if task is not me:  # close() may run inside a background task (the parent watch)
                task.cancel()
        if self._orchestrator is not None:
            await self._orchestrator.aclose()
            self._orchestrator = None

    def background(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run `coro` as a task the server keeps a reference to; failures are logged."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    async def after_settings(self) -> None:
        """Settings are known (or changed): show the budget they imply."""
        from ace_lsp.server import status

        await status.publish(self)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A body that is not JSON gets the Parse error answer JSON-RPC asks for, not silence."""
        if isinstance(error, ValueError) and not isinstance(error, JsonRpcException):
            # json.JSONDecodeError and UnicodeDecodeError are ValueErrors raised while reading
            self.protocol._send_response(
                None,  # type: ignore[arg-type]  # JSON-RPC: a parse error's id is null
                error=lsp.ResponseError(
                    code=lsp.ErrorCodes.ParseError,
                    message="ACE could not parse a message: it is not valid UTF-8 JSON.",
                ),
            )
            return
        super().report_server_error(error, source)

    @property
    def encoding(self) -> str:
        """The negotiated position encoding's name: "utf-16", "utf-8" or "utf-32"."""
        enc = self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16
        return enc.value if isinstance(enc, lsp.PositionEncodingKind) else str(enc)

    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))


def _features() -> list[Callable[[AceServer], None]]:
    """Every feature module's setup, in order; each registers its own LSP methods."""
    from ace_lsp.server import (
        code_actions,
        configuration,
        debug_stats,
        documents,
        hover,
        info,
        lifecycle,
        progress,
        review,
        status,
    )

    return [
        configuration.setup,
        lifecycle.setup,
        progress.setup,
        status.setup,
        documents.setup,
        code_actions.setup,
        review.setup,
        hover.setup,
        info.setup,
        debug_stats.setup,
    ]


def create_server(orchestrator: Orchestrator | None = None) -> AceServer:
    server = AceServer(orchestrator)
    for setup in _features():
        setup(server)
    return server
