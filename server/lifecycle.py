"""The server's life: open the orchestrator after `initialized`, pull settings, close on
`shutdown` (flushing the ledger), and exit by itself when the editor process (`processId`) dies."""

from __future__ import annotations

import asyncio
import logging
import os

from lsprotocol import types as lsp

from ace_lsp.server.app import AceServer
from ace_lsp.server.configuration import pull

log = logging.getLogger(__name__)

PARENT_POLL_S = 2.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


async def watch_parent(ls: AceServer, pid: int) -> None:
    while True:
        await asyncio.sleep(PARENT_POLL_S)
        if not _alive(pid):
            log.warning("the editor (process %s) is gone; ACE exits", pid)
            await ls.close()
            os._exit(0)  # the stdio loop would wait forever for a closed pipe's EOF otherwise


def setup(server: AceServer) -> None:
    @server.feature(lsp.INITIALIZED)
    async def initialized(ls: AceServer, params: lsp.InitializedParams) -> None:
        if ls.process_id and ls.process_id != os.getpid():
            ls.background(watch_parent(ls, ls.process_id))
        await pull(ls)
        await ls.after_settings()

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: AceServer, params: None) -> None:
        await ls.close()
