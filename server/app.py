"""The ACE language server assembled: every feature, in order, each given the features it needs.

The order is the order of the lifecycle hooks: settings are read (`Configuration`) before the
budget is shown (`Status`), and documents are tracked before anything reads them. A feature that
fails to start is logged and left out (`AceServer.add`); the others run without it.
"""

from __future__ import annotations

from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.server.base import AceServer
from ace_lsp.server.code_actions import CodeActions
from ace_lsp.server.configuration import Configuration
from ace_lsp.server.debug_stats import DebugStats
from ace_lsp.server.documents import Documents
from ace_lsp.server.engine import Engine
from ace_lsp.server.fixing import Fixes
from ace_lsp.server.hover import Hover
from ace_lsp.server.info import Info
from ace_lsp.server.lifecycle import Lifecycle
from ace_lsp.server.progress import WorkProgress
from ace_lsp.server.review import Reviews
from ace_lsp.server.status import Status


def create_server(orchestrator: Orchestrator | None = None) -> AceServer:
    """A server with every feature; `orchestrator` replaces the one opened on first use."""
    server = AceServer()
    add = server.add
    config = add(Configuration(server))
    engine = add(Engine(server, config, orchestrator))
    add(Lifecycle(server))
    progress = add(WorkProgress(server))
    status = add(Status(server, config, engine))
    documents = add(Documents(server))
    fixes = add(Fixes(server, config, documents, engine, status, progress))
    reviews = add(Reviews(server, config, documents, engine, status, progress))
    add(CodeActions(server, config, documents, engine, fixes, reviews))
    add(Hover(server, config, documents, reviews))
    add(Info(server, config, engine))
    add(DebugStats(server))
    return server
