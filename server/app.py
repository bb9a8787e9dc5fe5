"""The ACE language server: one pygls server, its features wired in one ordered list."""

from __future__ import annotations

import logging
from collections.abc import Callable

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer

from orchestrator.call import Orchestrator, default_orchestrator
from server import __version__
from server.settings import Settings, parse_settings

log = logging.getLogger(__name__)


class FixFailed(JsonRpcException):
    """An LSP error (RequestFailed) whose message is the one-sentence reason a fix failed."""

    CODE = lsp.LSPErrorCodes.RequestFailed.value


class AceServer(LanguageServer):
    def __init__(self, orchestrator: Orchestrator | None = None) -> None:
        super().__init__("ace", __version__)
        self.orchestrator = orchestrator or default_orchestrator()
        self.settings = Settings()

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or lsp.PositionEncodingKind.Utf16)

    def tell(self, message: str, kind: lsp.MessageType = lsp.MessageType.Error) -> None:
        self.window_show_message(lsp.ShowMessageParams(type=kind, message=message))


def _setup_settings(server: AceServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def initialize(ls: AceServer, params: lsp.InitializeParams) -> None:
        ls.settings, problems = parse_settings(params.initialization_options)
        for problem in problems:
            log.warning(problem)
            ls.tell(problem, lsp.MessageType.Warning)


def _features() -> list[Callable[[AceServer], None]]:
    from server import code_actions

    return [_setup_settings, code_actions.setup]


def create_server(orchestrator: Orchestrator | None = None) -> AceServer:
    server = AceServer(orchestrator)
    for setup in _features():
        setup(server)
    return server
