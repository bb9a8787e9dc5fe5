"""instrumented_call(): try a chain of models in order, validate each reply, record every attempt.

This is the one entry point for model calls. A provider failure or a reply the caller's validator
refuses moves on to the next model; each try becomes an Attempt with its outcome, latency and cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from orchestrator.errors import AceError, NoFix
from orchestrator.providers.base import Provider
from orchestrator.registry import ModelSpec, Registry
from orchestrator.types import Attempt, LLMRequest, LLMResult, ProviderReply

T = TypeVar("T")
Validator = Callable[[ProviderReply], T]


@dataclass(frozen=True)
class Called(Generic[T]):
    """A validated value and the call that produced it."""

    value: T
    result: LLMResult


def _elapsed_ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)


class Orchestrator:
    """Holds the registry and one live client per provider; routes and runs calls."""

    def __init__(self, registry: Registry, providers: Mapping[str, Provider]) -> None:
        self.registry = registry
        self.providers = dict(providers)

    def chain(self, request: LLMRequest) -> list[ModelSpec]:
        """Models for the request's task whose provider can be called now, in registry order."""
        return [
            m
            for m in self.registry.for_task(request.task.value)
            if m.provider in self.providers and self.providers[m.provider].available() is None
        ]

    async def call(
        self,
        request: LLMRequest,
        validate: Validator[T],
        chain: Sequence[ModelSpec] | None = None,
    ) -> Called[T]:
        models = list(self.chain(request) if chain is None else chain)
        if not models:
            raise NoFix(
                f"No model can do {request.task.value} here; set an API key for a provider."
            )
        attempts: list[Attempt] = []
        for model in models:
            provider = self.providers[model.provider]
            t0 = time.perf_counter()
            reply: ProviderReply | None = None
            try:
                reply = await provider.complete(model, request)
                value = validate(reply)
            except AceError as exc:
                attempts.append(self._attempt(model, exc.kind, t0, reply, exc.reason))
                continue
            attempt = self._attempt(model, "ok", t0, reply, None)
            attempts.append(attempt)
            cost = sum(a.cost_usd for a in attempts)
            result = LLMResult(reply.text, model.id, model.provider, cost, attempts)
            return Called(value, result)
        raise NoFix(_summary(attempts), attempts)

    @staticmethod
    def _attempt(
        model: ModelSpec, outcome: str, t0: float, reply: ProviderReply | None, reason: str | None
    ) -> Attempt:
        usage = reply.usage if reply else None
        tokens_in = usage.input_tokens if usage else 0
        tokens_out = usage.output_tokens if usage else 0
        return Attempt(
            model=model.id,
            provider=model.provider,
            outcome=outcome,
            latency_ms=_elapsed_ms(t0),
            cost_usd=model.cost(tokens_in, tokens_out),
            reason=reason,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def _summary(attempts: Sequence[Attempt]) -> str:
    """One sentence for the user: the last reason, and how many models were tried."""
    last = attempts[-1]
    if len(attempts) == 1:
        return last.reason or f"{last.model} failed ({last.outcome})."
    return f"No model produced a valid fix ({len(attempts)} tried); last: {last.reason}"


def default_orchestrator() -> Orchestrator:
    """The offline set-up: the registry's data and the embedded `local` provider."""
    from orchestrator.providers.local import LocalProvider
    from orchestrator.registry import load_default

    return Orchestrator(load_default(), {"local": LocalProvider()})
