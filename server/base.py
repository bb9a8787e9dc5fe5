"""The server's base: `AceServer`, what every feature is (`Feature`), and `FixFailed`.

It imports no feature: each feature module imports this one, and `app.py` assembles them. The
server runs the lifecycle (`initialize`, `initialized`, `shutdown`, settings changes) and hands
each step to every feature in order; a feature that fails is logged, and the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TypeVar

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException

from ace_lsp.server import __version__
from ace_lsp.server.compat import CompatServer

log = logging.getLogger(__name__)

T = TypeVar("T")
F = TypeVar("F", bound="Feature")


class FixFailed(JsonRpcException):
    """An LSP error (RequestFailed) whose message is the one-sentence reason a fix failed."""

    CODE = lsp.LSPErrorCodes.RequestFailed.value


class Feature:
    """One feature: it owns its state, gets the features it needs in its constructor, and
    registers its LSP methods in `register`. The lifecycle hooks do nothing unless overridden."""

    name = "feature"

    def register(self) -> None:
        """Register the LSP methods this feature answers (called once, by `AceServer.add`)."""

    def initialize(self, params: lsp.InitializeParams) -> None:
        """`initialize`: the client's capabilities are known (pygls stored them already)."""

    async def initialized(self) -> None:
        """`initialized`: the client can now be asked things (configuration, progress)."""

    async def settings_changed(self) -> None:
        """The settings were read again (`workspace/didChangeConfiguration`)."""

    async def close(self) -> None:
        """`shutdown`, or the editor went away: let go of what the feature holds."""


class AceServer(CompatServer):
    """pygls' server (with `compat`'s fixes), its features in order, and their background tasks."""

    def __init__(self) -> None:
        super().__init__("ace", __version__)
        self.features: list[Feature] = []
        self._background: set[asyncio.Task[object]] = set()

        @self.feature(lsp.INITIALIZE)
        def initialize(params: lsp.InitializeParams) -> None:
            for feature in self.features:
                try:
                    feature.initialize(params)
                except Exception:
                    log.exception("the %s feature failed to initialize", feature.name)

        @self.feature(lsp.INITIALIZED)
        async def initialized(params: lsp.InitializedParams) -> None:
            await self._each("initialized")

        @self.feature(lsp.SHUTDOWN)
        async def shutdown(params: None) -> None:
            await self.close()

    def add(self, feature: F) -> F:
        """Register `feature` and run it from now on; if registering fails, it is logged and
        left out, and the server goes on without it."""
        try:
            feature.register()
        except Exception:
            log.exception("the %s feature failed to start; ACE goes on without it", feature.name)
        else:
            self.features.append(feature)
        return feature

    async def _each(self, hook: str) -> None:
        for feature in list(self.features):
            try:
                await getattr(feature, hook)()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the %s feature failed in %s", feature.name, hook)

    async def settings_changed(self) -> None:
        """Tell every feature that the settings were read again."""
        await self._each("settings_changed")

    async def close(self) -> None:
        """Cancel the background tasks, then close the features, the last added first."""
        me = asyncio.current_task()
        for task in list(self._background):
            if task is not me:  # close() may run inside a background task (the parent watch)
                task.cancel()
        for feature in reversed(self.features):
            try:
                await feature.close()
            except Exception:
                log.exception("the %s feature failed to close", feature.name)

    def background(self, coro: Coroutine[object, object, T]) -> asyncio.Task[T]:
        """Run `coro` as a task the server keeps a reference to; failures are logged."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)

        def done(t: asyncio.Task[T]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    @property
    def encoding(self) -> str:
        """The negotiated position encoding's name: "utf-16", "utf-8" or "utf-32"."""
        enc = self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16
        return enc.value if isinstance(enc, lsp.PositionEncodingKind) else str(enc)

    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))
