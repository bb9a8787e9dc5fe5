"""The orchestrator behind the features: opened on first use with the workspace's config (what it
refused is told once), closed on shutdown; in team mode, the ledger going away or coming back is
told and announced to whoever subscribed (the budget display).

It also decides who a call is for (`account`): in team mode the database role, as the
orchestrator books it, so that titles, calls and the budget display all name the same account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine

from lsprotocol import types as lsp

from ace_lsp.orchestrator.ace import FixContext
from ace_lsp.orchestrator.call import Orchestrator, Progress
from ace_lsp.orchestrator.config import AceConfig, load_config
from ace_lsp.orchestrator.types import TaskType
from ace_lsp.server.base import AceServer, Feature
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.documents import DocState

log = logging.getLogger(__name__)

Listener = Callable[[], Coroutine[object, object, object]]


def account(orchestrator: Orchestrator, user_id: str) -> str:
    """Who pays for a call the settings make as `user_id`: in team mode, the database role."""
    return orchestrator.team.user if orchestrator.team is not None else user_id


class Engine(Feature):
    name = "orchestrator"

    def __init__(
        self, server: AceServer, config: Configuration, orchestrator: Orchestrator | None = None
    ) -> None:
        self.server = server
        self.config = config
        self._orchestrator = orchestrator
        self._opening: asyncio.Lock | None = None
        self._listeners: list[Listener] = []

    @property
    def current(self) -> Orchestrator | None:
        """The orchestrator if it is open; never waits."""
        return self._orchestrator

    @property
    def opening(self) -> bool:
        """True until the orchestrator is open or has failed to open."""
        return self._orchestrator is None and (self._opening is None or self._opening.locked())

    def on_team_change(self, listener: Listener) -> None:
        """Run `listener` (in the background) when the team ledger goes away or comes back."""
        self._listeners.append(listener)

    async def get(self) -> Orchestrator:
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

    def context(
        self,
        orch: Orchestrator,
        doc: DocState,
        task: TaskType,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> FixContext:
        """What an `ace_*` job on `doc` needs, from the current settings."""
        s = self.config.settings
        return FixContext(
            file_path=doc.path,
            code=doc.source.text,
            language=doc.language,
            tier=s.tier,
            user=account(orch, s.user_id),
            tree=doc.tree,
            options=s.call_options(task, orch.budget, on_progress=on_progress),
            mask_secrets=s.mask_secrets,
        )

    async def _config(self) -> AceConfig:
        """The config of the workspace; what it refused or ignored is told to the user once."""
        config = await asyncio.to_thread(load_config, self.config.workspace_root)
        for notice in config.notices:
            log.warning(notice)
            self.server.tell(f"ACE: {notice}", lsp.MessageType.Warning)
        return config

    def _team_state(self, state: str) -> None:
        """The team ledger went away or came back: say so once, tell the listeners."""
        team = self._orchestrator.team if self._orchestrator is not None else None
        if team is None:
            return
        if state == "offline":
            allowance = team.offline_status()["allowance"]
            self.server.tell(
                f"ACE: {team.reason} Fixes go on with an offline allowance of ${allowance:.2f}; "
                "usage is kept locally and sent when the ledger answers again.",
                lsp.MessageType.Warning,
            )
        else:
            self.server.tell(
                "ACE: the team ledger answers again; usage kept meanwhile has been sent.",
                lsp.MessageType.Info,
            )
        for listener in self._listeners:
            self.server.background(listener())

    async def close(self) -> None:
        if self._orchestrator is not None:
            await self._orchestrator.aclose()
            self._orchestrator = None
