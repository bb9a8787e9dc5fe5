"""Commands `ace.models` and `ace.usage`: the models panel and the usage view for editors.

They answer the same JSON as `ace models --json` and `ace usage --json`, from the running server
(its registry, health and ledger), so an editor never reads the ledger file itself.
"""

from __future__ import annotations

from typing import Any

from ace_lsp.server.app import AceServer, FixFailed


def setup(server: AceServer) -> None:
    @server.command("ace.models")
    async def models(ls: AceServer, *args: Any) -> list[dict[str, Any]]:
        from ace_lsp.server.cli_models import model_rows

        return model_rows(await ls.orchestrator())

    @server.command("ace.usage")
    async def usage(ls: AceServer, *args: Any) -> dict[str, Any]:
        from ace_lsp.server.cli_usage import report

        orch = await ls.orchestrator()
        if orch.ledger is None:
            raise FixFailed("The usage ledger cannot be opened; run `ace doctor` to see why.")
        await orch.ledger.flush()  # rows of calls just made are counted too
        return await report(orch, orch.ledger, ls.settings.user_id, ls.settings.tier)
