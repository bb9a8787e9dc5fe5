"""The Provider protocol: how the orchestrator talks to any model, local or remote.

A provider turns an LLMRequest into its vendor's wire format and back, and maps every failure onto
the taxonomy in `orchestrator.errors`. The caller never branches on which provider it holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply, Usage


@dataclass(frozen=True)
class StreamChunk:
    """A piece of a streamed reply; the last chunk carries the usage the vendor reported."""

    text: str
    usage: Usage | None = None


class Provider(Protocol):
    """What the orchestrator calls a model through; every failure is raised as a ProviderError."""

    name: str

    def available(self) -> str | None:
        """None when the provider can be called; else one sentence saying why not (e.g. no key)."""
        ...

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """One whole reply from `model` to `request`."""
        ...

    def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """The reply in pieces as they arrive; the last carries the usage if the vendor sent it."""
        ...

    async def aclose(self) -> None:
        """Close the provider's connections; it may be called more than once."""
        ...
