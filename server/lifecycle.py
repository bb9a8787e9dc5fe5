"""The server's life beyond its features: exit by itself when the editor process (`processId`)
dies. (Opening the orchestrator, pulling settings and closing on `shutdown` are the features'
own lifecycle hooks, run by `base.AceServer`.)"""

from __future__ import annotations

import asyncio
import logging
import os

from ace_lsp.orchestrator.compat import pid_alive
from ace_lsp.server.base import AceServer, Feature

log = logging.getLogger(__name__)

PARENT_POLL_S = 2.0


class Lifecycle(Feature):
    name = "lifecycle"

    def __init__(self, server: AceServer) -> None:
        self.server = server

    async def initialized(self) -> None:
        pid = self.server.process_id
        if pid and pid != os.getpid():
            self.server.background(self._watch_parent(pid))

    async def _watch_parent(self, pid: int) -> None:
        while True:
            await asyncio.sleep(PARENT_POLL_S)
            if not pid_alive(pid):
                log.warning("the editor (process %s) is gone; ACE exits", pid)
                await self.server.close()
                os._exit(0)  # the stdio loop would wait forever for a closed pipe's EOF otherwise
