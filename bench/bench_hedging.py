"""Hedging's effect on p50/p95/p99 when the primary has a heavy-tailed delay, and what it costs.

In process (no network, like bench_overhead's `_Instant`): the primary answers after a delay drawn
from a mixture — most calls a lognormal around 20 ms, a fraction a lognormal around 800 ms — and
the secondary after a steady ~40 ms. The same seeded delays are replayed with hedging off and on
(`CallOptions(hedging=True)`: once the primary passes its p95 from Health, the secondary starts
too and the first valid answer wins; the loser is cancelled and keeps its input cost). Health is
warmed first with 50 ok latencies drawn from the primary's own distribution, as the ledger would.

Two tails are measured: 3% slow (p95 lies in the fast body: the case hedging is built for) and 10%
slow (p95 lies inside the tail, so a p95 trigger fires late). Extra spend = sum of every attempt's
cost with hedging / without.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.health import Health
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.types import LLMRequest, Message, ProviderReply, TaskType, Tier, Usage
from bench.figures import Figure, Report

CALLS = 500
CONCURRENCY = 25
WARM = 50
PROMPT = "Fix the diagnostic on line 1. " + "context line\n" * 400  # ~1k input tokens
OUTPUT_TOKENS = 200


def primary_delays(rng: random.Random, n: int, tail: float) -> list[float]:
    """Seconds: lognormal around 20 ms, or with probability `tail` lognormal around 800 ms."""
    return [
        rng.lognormvariate(0, 0.5) * 0.8
        if rng.random() < tail
        else rng.lognormvariate(0, 0.25) * 0.02
        for _ in range(n)
    ]


class _Delayed:
    """A provider answering each call after the next delay of its script (in process)."""

    def __init__(self, name: str, delays: list[float] | None, steady: float = 0.0) -> None:
        self.name, self.delays, self.steady, self.i = name, delays, steady, 0

    def available(self) -> str | None:
        return None

    def _next(self) -> float:
        if self.delays is None:
            return self.steady
        d = self.delays[self.i % len(self.delays)]
        self.i += 1
        return d

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        await asyncio.sleep(self._next())
        return ProviderReply("ok", Usage(1000, OUTPUT_TOKENS), model.wire_name)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        await asyncio.sleep(self._next())
        yield StreamChunk("ok", Usage(1000, OUTPUT_TOKENS))

    async def aclose(self) -> None:
        return None


def _spec(name: str) -> ModelSpec:
    # same price for both: the extra spend is then the hedged calls' extra tokens only
    return ModelSpec(name, name, name, 0.00015, 0.0006, 128_000, 16_384, ("AUTO_FIX",))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(int(len(s) * q), len(s) - 1)]


async def _run(
    delays: list[float], warm: list[float], hedging: bool
) -> tuple[list[float], float, int]:
    """Latencies (ms), total attempt cost, number of calls that started the secondary."""
    health = Health()
    for d in warm:
        health.record("primary", "ok", d * 1000)
    orch = Orchestrator(
        Registry([_spec("primary"), _spec("secondary")]),
        {"primary": _Delayed("primary", delays), "secondary": _Delayed("secondary", None, 0.04)},
        health=health,
    )
    request = LLMRequest(TaskType.AUTO_FIX, (Message("user", PROMPT),), tier=Tier.ULTIMATE)
    options = CallOptions(models=("primary", "secondary"), use_cache=False, hedging=hedging)
    sem = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []
    cost = 0.0
    hedged = 0

    async def one() -> None:
        nonlocal cost, hedged
        async with sem:
            t0 = time.perf_counter()
            called = await orch.call(request, lambda r: r.text, options)
            latencies.append((time.perf_counter() - t0) * 1000)
            cost += sum(a.cost_usd for a in called.result.attempts)
            hedged += any(a.model == "secondary" for a in called.result.attempts)

    await asyncio.gather(*(one() for _ in range(len(delays))))
    await orch.aclose()
    return latencies, cost, hedged


def _scenario(report: Report, tail: float) -> None:
    rng = random.Random(11)
    warm = primary_delays(rng, WARM, tail)
    delays = primary_delays(rng, CALLS, tail)
    off, cost_off, _ = asyncio.run(_run(delays, warm, hedging=False))
    on, cost_on, hedged = asyncio.run(_run(delays, warm, hedging=True))
    label = f"{tail:.0%} slow"
    p95_warm = pct([d * 1000 for d in warm], 0.95)
    print(
        f"primary {100 - tail * 100:.0f}% ~20 ms / {tail:.0%} ~800 ms (lognormal), secondary 40 ms;"
        f" {CALLS} calls, {CONCURRENCY} concurrent; warmed p95 {p95_warm:.0f} ms"
    )
    print(f"  {'':<12}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'cost':>12}")
    for name, lat, cost in (("hedging off", off, cost_off), ("hedging on", on, cost_on)):
        print(
            f"  {name:<12}{pct(lat, 0.5):>7.0f}ms{pct(lat, 0.95):>7.0f}ms{pct(lat, 0.99):>7.0f}ms"
            f"{max(lat):>7.0f}ms{cost:>11.4f}$"
        )
    extra = cost_on / cost_off
    print(
        f"  secondary started in {hedged}/{CALLS} calls; spend with / without hedging {extra:.3f}x"
    )
    report.add(
        Figure(f"hedging, {label}: p99", pct(on, 0.99), pct(off, 0.99), "ms", None, "hedging off"),
        Figure(f"hedging, {label}: p50", pct(on, 0.5), pct(off, 0.5), "ms", None, "hedging off"),
        Figure(f"hedging, {label}: spend", cost_on, cost_off, "$", None, "hedging off"),
    )
    report.series[f"hedging {label}"] = {"off": off, "on": on}


def main() -> Report:
    report = Report()
    for tail in (0.03, 0.10):
        _scenario(report, tail)
    print("  (spend ratio = sum of every attempt's cost, hedging on / off; a cancelled loser keeps")
    print("   its input cost)")
    return report


if __name__ == "__main__":
    main()
