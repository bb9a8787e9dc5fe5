"""Settings: `initializationOptions`, then `workspace/configuration` (section `ace`), re-read on
`workspace/didChangeConfiguration` without a restart. Configuration wins over init options; an
invalid value is reported once (window/showMessage) and replaced by its default.

`Configuration` owns the current `Settings` and the workspace root; the parsing is
`settings.parse_settings`, a pure function."""

from __future__ import annotations

import logging
from pathlib import Path

from lsprotocol import types as lsp
from pygls import uris

from ace_lsp.server.base import AceServer, Feature
from ace_lsp.server.settings import Settings, parse_settings

log = logging.getLogger(__name__)


class Configuration(Feature):
    name = "configuration"

    def __init__(self, server: AceServer) -> None:
        self.server = server
        self.settings = Settings()
        self.workspace_root: Path | None = None
        self._init_options: object = None  # the client's JSON, kept to re-apply under changes
        self._reported: set[str] = set()  # problems already shown

    def register(self) -> None:
        @self.server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
        async def changed(params: lsp.DidChangeConfigurationParams) -> None:
            pushed = params.settings
            if isinstance(pushed, dict) and isinstance(pushed.get("ace"), dict):
                self.apply(self._init_options, pushed["ace"])
            else:
                await self.pull()
            await self.server.settings_changed()

    def initialize(self, params: lsp.InitializeParams) -> None:
        self._init_options = params.initialization_options
        self.apply(self._init_options)
        root = params.root_uri or (
            params.workspace_folders[0].uri if params.workspace_folders else None
        )
        self.workspace_root = Path(uris.to_fs_path(root) or ".") if root else None

    async def initialized(self) -> None:
        await self.pull()

    def apply(self, *sources: object) -> None:
        self.settings, problems = parse_settings(*sources)
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                log.warning(problem)
                self.server.tell(problem, lsp.MessageType.Warning)

    async def pull(self) -> None:
        """Ask the client for section `ace` and apply it over the initialization options."""
        workspace = self.server.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return
        try:
            (section,) = await self.server.workspace_configuration_async(
                lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section="ace")])
            )
        except Exception as exc:  # a client that cannot answer keeps the init options
            log.info("workspace/configuration failed (%s); keeping the initialization options", exc)
            return
        self.apply(self._init_options, section)
