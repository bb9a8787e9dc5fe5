"""A provider that plays a script, for unit tests of the call pipeline (not of a vendor's wire)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply, Usage


@dataclass(frozen=True)
class Slow:
    """Answer `text` after `seconds` (a simulated model latency)."""

    seconds: float
    text: str


Step = str | Exception | Slow


@dataclass
class Scripted:
    """Answers each call with the next step: a reply text, an exception to raise, or a Slow."""

    name: str
    script: list[Step]
    usage: Usage = field(default_factory=lambda: Usage(1000, 100))
    calls: list[str] = field(default_factory=list)
    cancelled: int = 0

    def available(self) -> str | None:
        return None

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        self.calls.append(model.id)
        if not self.script:
            raise AssertionError(f"{self.name} was called more often than scripted")
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Slow):
            try:
                await asyncio.sleep(step.seconds)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
            step = step.text
        return ProviderReply(step, self.usage, model.wire_name)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        reply = await self.complete(model, request)
        half = len(reply.text) // 2
        yield StreamChunk(reply.text[:half])
        yield StreamChunk(reply.text[half:], reply.usage)

    async def aclose(self) -> None:
        return None


def model(
    name: str,
    price_in: float = 0.001,
    price_out: float = 0.003,
    tasks: tuple[str, ...] = ("AUTO_FIX",),
) -> ModelSpec:
    """A model served by the provider named like it; prices per 1K tokens (cheap: fits Free)."""
    return ModelSpec(name, name, name, price_in, price_out, 32000, 4096, tasks)
