"""Commands `ace.models` and `ace.usage`: the models panel and the usage view for editors.

They answer the same JSON as `ace models --json` and `ace usage --json` (both built by
`reports`), from the running server (its registry, health and ledger), so an editor never reads
the ledger file itself.
"""

from __future__ import annotations

from typing import Any

from ace_lsp.server.base import AceServer, Feature, FixFailed
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.engine import Engine
from ace_lsp.server.reports import model_rows, report


class Info(Feature):
    name = "info"

    def __init__(self, server: AceServer, config: Configuration, engine: Engine) -> None:
        self.server = server
        self.config = config
        self.engine = engine

    def register(self) -> None:
        @self.server.command("ace.models")
        async def models(*args: Any) -> list[dict[str, Any]]:
            return model_rows(await self.engine.get())

        @self.server.command("ace.usage")
        async def usage(*args: Any) -> dict[str, Any]:
            orch = await self.engine.get()
            if orch.ledger is None:
                raise FixFailed("The usage ledger cannot be opened; run `ace doctor` to see why.")
            await orch.ledger.flush()  # rows of calls just made are counted too
            s = self.config.settings
            return await report(orch, orch.ledger, s.user_id, s.tier)
