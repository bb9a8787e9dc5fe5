"""Everything ACE changes in pygls, in one place, for the pygls versions in `PYGLS_TESTED`.

pygls 2.1 leaves a client waiting for ever, leaks, or goes deaf in a few cases; ACE overrides:

- `AceProtocol`: a request whose params do not fit the LSP types, whose method is not a string,
  JSON that is not JSON-RPC, and requests after `shutdown` all get an error answer (pygls drops
  them); the futures pygls files for notification handlers and for commands' coroutines are
  dropped once done (pygls kept them: ~2 KB per keystroke).
- `CompatServer.report_server_error`: a body that is not JSON gets JSON-RPC's Parse error answer.
- `read_messages` / `serve_stdio`: pygls' stdin loop with `framing.Framer` as its reader, which
  survives broken frames (pygls' loses sync for good).

These touch pygls' private names, so `check_pygls()` runs when the server starts: outside the
tested range it warns in the log, and a private name it needs being gone stops it with the reason.
pyproject.toml pins pygls to the same range.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from importlib import metadata
from typing import Any, cast

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol
from pygls.server import JsonRPCServer

from ace_lsp.server.framing import ByteSource, Dropped, Framer

log = logging.getLogger(__name__)

PYGLS_TESTED = ((2, 1), (2, 2))  # >= 2.1, < 2.2: the range pyproject.toml pins
READ_BYTES = 64 * 1024  # per read from stdin: a pipe's buffer
# what the overrides below call or replace: (class, attribute)
_PRIVATES: tuple[tuple[type[object], str], ...] = (
    (JsonRPCProtocol, "_execute_handler"),
    (JsonRPCProtocol, "_send_handler_result"),
    (JsonRPCProtocol, "_send_response"),
    (JsonRPCProtocol, "structure_message"),
    (JsonRPCProtocol, "handle_message"),
    (JsonRPCServer, "report_server_error"),
    (JsonRPCServer, "shutdown"),
)


def version_problem(version: str) -> str | None:
    """Why `version` of pygls is outside the range ACE was tested with, or None."""
    try:
        parts = tuple(int(p) for p in version.split(".")[:2])
    except ValueError:
        parts = ()
    (low, high) = PYGLS_TESTED
    if len(parts) == 2 and low <= parts < high:
        return None
    tested = f">={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    return (
        f"ACE was tested with pygls {tested}, but pygls {version} is installed; "
        "its protocol fixes may not fit it (install a pygls in that range)."
    )


def check_pygls() -> None:
    """At start: warn when pygls is outside the tested range; stop when an override's target
    is gone (the server would fail later, less clearly)."""
    problem = version_problem(metadata.version("pygls"))
    if problem is not None:
        log.warning(problem)
    missing = [f"{cls.__name__}.{name}" for cls, name in _PRIVATES if not hasattr(cls, name)]
    if missing:
        raise RuntimeError(
            f"This pygls has no {', '.join(missing)}, which ACE overrides; "
            f"install pygls >={PYGLS_TESTED[0][0]}.{PYGLS_TESTED[0][1]},"
            f"<{PYGLS_TESTED[1][0]}.{PYGLS_TESTED[1][1]}."
        )


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


class CompatServer(LanguageServer):
    """pygls' server with ACE's protocol, answering what pygls would leave unanswered."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(name, version, protocol_cls=AceProtocol)

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


def _nothing() -> None:
    pass


async def read_messages(server: JsonRPCServer, source: ByteSource, stop: threading.Event) -> None:
    """pygls' `run_async` loop, framed by `Framer`: each body is decoded and handled in turn."""
    loop = asyncio.get_running_loop()
    protocol = server.protocol
    framer = Framer()
    while not stop.is_set():
        data = await loop.run_in_executor(server.thread_pool, source.read1, READ_BYTES)
        if not data:
            break
        handled = False
        for frame in framer.feed(data):
            if isinstance(frame, Dropped):
                log.warning("broken JSON-RPC framing on stdin: %s", frame.reason)
                continue
            if handled:
                # pygls' reader went through the executor (three times) between two messages, so
                # handlers that are ready to finish do so first, e.g. shutdown's before an exit
                # sent right behind it; one trip keeps that, and costs nothing when messages
                # arrive one per read (the read is the trip)
                await loop.run_in_executor(server.thread_pool, _nothing)
            try:
                protocol.handle_message(json.loads(frame, object_hook=protocol.structure_message))
            except Exception as exc:
                log.exception("Unable to handle message")
                server.report_server_error(exc, JsonRpcException)
            handled = True
    if framer.pending:
        log.warning("stdin ended inside a message (%d bytes unread)", framer.pending)


def serve_stdio(server: JsonRPCServer) -> None:
    """`server.start_io()`, reading stdin with `Framer` (pygls' `_start_io_async`, reader aside)."""
    check_pygls()
    server._stop_event = stop = threading.Event()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))
    try:
        asyncio.run(read_messages(server, cast(ByteSource, sys.stdin.buffer), stop))
    except BrokenPipeError:
        log.error("Connection to the client is lost! Shutting down the server.")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
