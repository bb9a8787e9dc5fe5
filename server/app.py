"""The ACE language server: one pygls server, its features wired in one ordered list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types as lsp
from pygls import uris
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from orchestrator.call import Orchestrator
from server import __version__
from server.settings import Settings, parse_settings

log = logging.getLogger(__name__)


class FixFailed(JsonRpcException):
    """An LSP error (RequestFailed) whose message is the one-sentence reason a fix failed."""

    CODE = lsp.LSPErrorCodes.RequestFailed.value


class AceServer(LanguageServer):
    def __init__(self, orchestrator: Orchestrator | None = None) -> None:
        super().__init__("ace", __version__)
        self._orchestrator = orchestrator
        self._opening: asyncio.Lock | None = None
        self.workspace_root: Path | None = None
        self.settings = Settings()

    async def orchestrator(self) -> Orchestrator:
        """The orchestrator, opened on first use (config of the workspace, ledger, providers)."""
        if self._orchestrator is None:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if self._orchestrator is None:
                    self._orchestrator = await Orchestrator.open(workspace=self.workspace_root)
        return self._orchestrator

    async def close(self) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.aclose()
            self._orchestrator = None

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16)

    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))


def _setup_settings(server: AceServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def initialize(ls: AceServer, params: lsp.InitializeParams) -> None:
        ls.settings, problems = parse_settings(params.initialization_options)
        root = params.root_uri or (
            params.workspace_folders[0].uri if params.workspace_folders else None
        )
        ls.workspace_root = Path(uris.to_fs_path(root) or ".") if root else None
        for problem in problems:
            log.warning(problem)
            ls.tell(problem, lsp.MessageType.Warning)


def _setup_lifecycle(server: AceServer) -> None:
    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: AceServer, params: None) -> None:
        await ls.close()  # flushes the ledger before the process goes


def _features() -> list[Callable[[AceServer], None]]:
    from server import code_actions

    return [_setup_settings, _setup_lifecycle, code_actions.setup]


def create_server(orchestrator: Orchestrator | None = None) -> AceServer:
    server = AceServer(orchestrator)
    for setup in _features():
        setup(server)
    return server
