"""Providers: one module per wire protocol, all behind the Provider protocol of `base.py`."""

from __future__ import annotations

from typing import Protocol

import httpx

from orchestrator.config import ProviderSettings
from orchestrator.errors import InputError
from orchestrator.providers.anthropic import AnthropicProvider
from orchestrator.providers.base import Provider
from orchestrator.providers.gemini import GeminiProvider
from orchestrator.providers.local import LocalProvider
from orchestrator.providers.mistral import MistralProvider
from orchestrator.providers.openai import OpenAIProvider


class ProviderFactory(Protocol):
    def __call__(
        self, settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Provider: ...


def _local(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    return LocalProvider()  # ruff's fixes need no settings, no key and no network


# One line per wire protocol (`kind` in the config); a new protocol adds its line here.
KINDS: dict[str, ProviderFactory] = {
    "openai": OpenAIProvider,
    "mistral": MistralProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "local": _local,
}


def make_provider(
    settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Provider:
    """The provider for `settings.kind`; `transport` replaces the network (tests, proxies)."""
    factory = KINDS.get(settings.kind)
    if factory is None:
        known = ", ".join(sorted(KINDS))
        raise InputError(
            f"Provider '{settings.name}' has kind '{settings.kind}', which ACE cannot speak; "
            f"use one of: {known}."
        )
    return factory(settings, transport=transport)
