"""Providers: one module per wire protocol, all behind the Provider protocol of `base.py`.

Vendor modules are imported only for providers that can be called (a key is set, or none is
needed): an offline user never loads httpx, which keeps `ace serve` smaller and quicker to start.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ace_lsp.orchestrator.config import KINDS, ProviderSettings
from ace_lsp.orchestrator.errors import InputError, ProviderUnavailable
from ace_lsp.orchestrator.providers.base import Provider, StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply

if TYPE_CHECKING:
    import httpx


class Unconfigured:
    """A provider that cannot be called until it is configured; it says what to set."""

    def __init__(self, settings: ProviderSettings, reason: str) -> None:
        self.name = settings.name
        self._reason = reason

    def available(self) -> str | None:
        """Always the reason: the provider is not configured."""
        return self._reason

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """Raise ProviderUnavailable with what to set; no request is sent."""
        raise ProviderUnavailable(self._reason)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """Raise ProviderUnavailable with what to set; no request is sent."""
        raise ProviderUnavailable(self._reason)
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        """Nothing to close."""
        return None


def make_provider(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    """The provider for `settings.kind`; `transport` replaces the network (tests, proxies)."""
    if settings.kind not in KINDS:
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
    # each wire protocol's module (`kind` in KINDS) names the class that speaks it PROVIDER
    cls: Any = importlib.import_module(f"{__name__}.{settings.kind}").PROVIDER
    provider: Provider = cls(settings, transport=transport)
    return provider
