"""Providers: one module per wire protocol, all behind the Provider protocol of `base.py`.

Vendor modules are imported only for providers that can be called (a key is set, or none is
needed): an offline user never loads httpx, which keeps `ace serve` smaller and quicker to start.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import InputError, ProviderUnavailable
from ace_lsp.orchestrator.providers.base import Provider, StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply

if TYPE_CHECKING:
    import httpx

# One line per wire protocol (`kind` in the config): the module and class that speak it.
KINDS: dict[str, tuple[str, str]] = {
    "openai": ("ace_lsp.orchestrator.providers.openai", "OpenAIProvider"),
    "mistral": ("ace_lsp.orchestrator.providers.mistral", "MistralProvider"),
    "anthropic": ("ace_lsp.orchestrator.providers.anthropic", "AnthropicProvider"),
    "gemini": ("ace_lsp.orchestrator.providers.gemini", "GeminiProvider"),
    "local": ("ace_lsp.orchestrator.providers.local", "LocalProvider"),
}


class Unconfigured:
    """A provider that cannot be called until it is configured; it says what to set."""

    def __init__(self, settings: ProviderSettings, reason: str) -> None:
        self.name = settings.name
        self._reason = reason

    def available(self) -> str | None:
        return self._reason

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        raise ProviderUnavailable(self._reason)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        raise ProviderUnavailable(self._reason)
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


def make_provider(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    """The provider for `settings.kind`; `transport` replaces the network (tests, proxies)."""
    where = KINDS.get(settings.kind)
    if where is None:
        known = ", ".join(sorted(KINDS))
        raise InputError(
            f"Provider '{settings.name}' has kind '{settings.kind}', which ACE cannot speak; "
            f"use one of: {known}."
        )
    if settings.kind == "local":
        from ace_lsp.orchestrator.providers.local import LocalProvider

        return LocalProvider()  # ruff's fixes need no settings, no key and no network
    reason = settings.unavailable()
    if reason is not None and transport is None:
        return Unconfigured(settings, reason)
    module, name = where
    cls: Any = getattr(importlib.import_module(module), name)
    provider: Provider = cls(settings, transport=transport)
    return provider
