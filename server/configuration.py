"""Settings: `initializationOptions`, then `workspace/configuration` (section `ace`), re-read on
`workspace/didChangeConfiguration` without a restart. Configuration wins over init options; an
invalid value is reported once (window/showMessage) and replaced by its default."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls import uris

from ace_lsp.server.app import AceServer
from ace_lsp.server.settings import parse_settings

log = logging.getLogger(__name__)


def apply(ls: AceServer, *sources: Any) -> None:
    ls.settings, problems = parse_settings(*sources)
    for problem in problems:
        if problem not in ls.reported:
            ls.reported.add(problem)
            log.warning(problem)
            ls.tell(problem, lsp.MessageType.Warning)


def _supports_pull(ls: AceServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.configuration)


async def pull(ls: AceServer) -> None:
    """Ask the client for section `ace` and apply it over the initialization options."""
    if not _supports_pull(ls):
        return
    try:
        (section,) = await ls.workspace_configuration_async(
            lsp.ConfigurationParams(items=[lsp.ConfigurationItem(section="ace")])
        )
    except Exception as exc:  # a client that cannot answer keeps the init options
        log.info("workspace/configuration failed (%s); keeping the initialization options", exc)
        return
    apply(ls, ls.init_options, section)


def setup(server: AceServer) -> None:
    @server.feature(lsp.INITIALIZE)
    def initialize(ls: AceServer, params: lsp.InitializeParams) -> None:
        ls.init_options = params.initialization_options
        apply(ls, ls.init_options)
        root = params.root_uri or (
            params.workspace_folders[0].uri if params.workspace_folders else None
        )
        ls.workspace_root = Path(uris.to_fs_path(root) or ".") if root else None

    @server.feature(lsp.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed(ls: AceServer, params: lsp.DidChangeConfigurationParams) -> None:
        pushed = params.settings
        if isinstance(pushed, dict) and isinstance(pushed.get("ace"), dict):
            apply(ls, ls.init_options, pushed["ace"])
        else:
            await pull(ls)
        await ls.after_settings()
