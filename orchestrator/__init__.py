"""ACE's LLM orchestrator: route a task to the right model, with fallbacks, budgets and a ledger.

It knows nothing of LSP or editors. The entry point (docs/architecture.md, "The flow of one fix"):

    from ace_lsp.orchestrator import Message, TaskType, Tier, instrumented_call

    result = await instrumented_call(
        TaskType.AUTO_FIX, Tier.PRO, "user123", [Message("user", "...")]
    )
    result.text, result.model, result.cost_usd, result.attempts

A long-lived caller (the language server) keeps one `Orchestrator` (`await Orchestrator.open()`)
and calls `orchestrator.call(request, validate)`. Spans, patches and prompts live in `code/`.

The names below load on first use, so that importing one submodule (`code.spans`, `errors`) does
not import the whole orchestrator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ace_lsp.orchestrator.call import (
        Called,
        CallOptions,
        Orchestrator,
        Progress,
        instrumented_call,
    )
    from ace_lsp.orchestrator.errors import (
        AceError,
        InputError,
        NoFix,
        OverBudget,
        ProviderError,
    )
    from ace_lsp.orchestrator.types import (
        Attempt,
        LLMRequest,
        LLMResult,
        Message,
        ProviderReply,
        RiskLevel,
        TaskType,
        Tier,
        Usage,
    )

__all__ = [
    "AceError",
    "Attempt",
    "CallOptions",
    "Called",
    "InputError",
    "LLMRequest",
    "LLMResult",
    "Message",
    "NoFix",
    "Orchestrator",
    "OverBudget",
    "Progress",
    "ProviderError",
    "ProviderReply",
    "RiskLevel",
    "TaskType",
    "Tier",
    "Usage",
    "instrumented_call",
]

# where each name of __all__ is defined
_MODULES = {
    "ace_lsp.orchestrator.call": (
        "CallOptions", "Called", "Orchestrator", "Progress", "instrumented_call",
    ),
    "ace_lsp.orchestrator.errors": (
        "AceError", "InputError", "NoFix", "OverBudget", "ProviderError",
    ),
    "ace_lsp.orchestrator.types": (
        "Attempt", "LLMRequest", "LLMResult", "Message", "ProviderReply", "RiskLevel", "TaskType",
        "Tier", "Usage",
    ),
}  # fmt: skip
_HOME = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once, then a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
