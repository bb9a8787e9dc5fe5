"""Orchestrator overhead per call vs raw httpx vs LiteLLM's Router, on the same loopback fake.

The fake (tests/fakes/openai.py under uvicorn) runs in its own process; each client makes the same
chat-completion calls. CPU per call is this process's CPU time over the calls; ACE's and LiteLLM's
"added" figures are their CPU per call minus raw httpx's. Also: the time to fall back after a 500
from the primary, and cold start times. LiteLLM is never a dependency of ACE: run this with a
Python that has it (e.g. a separate venv with `pip install -e . litellm==1.110.2`), else its rows
say it was skipped.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.health import Health
from ace_lsp.orchestrator.ledger import Ledger
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.openai import OpenAIProvider
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.types import LLMRequest, Message, ProviderReply, TaskType, Tier, Usage
from bench.figures import Figure, Report
from tests.fakes.harness import free_port
from tests.fakes.openai import KEY

SEQUENTIAL = 400
CONCURRENT = 32
CONCURRENT_CALLS = 1600
ROUNDS = 3
MESSAGES = [{"role": "user", "content": "Fix the diagnostic on line 1."}]
ROOT = Path(__file__).resolve().parents[1]


def _model(name: str) -> ModelSpec:
    return ModelSpec(name, "openai", name, 0.00015, 0.0006, 128_000, 16_384, ("AUTO_FIX",))


class Result:
    def __init__(self, name: str, latencies: list[float], cpu: float, wall: float) -> None:
        self.name, self.latencies, self.cpu, self.wall = name, sorted(latencies), cpu, wall

    @property
    def cpu_per_call_ms(self) -> float:
        return self.cpu / len(self.latencies) * 1000

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall

    def p(self, q: float) -> float:
        return self.latencies[min(int(len(self.latencies) * q), len(self.latencies) - 1)]


def _median_round(rounds: list[tuple[Result, Result]]) -> tuple[Result, Result]:
    seq = sorted((r[0] for r in rounds), key=lambda r: r.cpu_per_call_ms)[len(rounds) // 2]
    conc = sorted((r[1] for r in rounds), key=lambda r: r.throughput)[len(rounds) // 2]
    return seq, conc


async def _measure(name: str, call: Callable[[], Awaitable[Any]], n: int, conc: int) -> Result:
    for _ in range(20):  # warm connections and caches
        await call()
    sem = asyncio.Semaphore(conc)
    latencies: list[float] = []

    async def one() -> None:
        async with sem:
            t0 = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t0) * 1000)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return Result(name, latencies, time.process_time() - cpu0, time.perf_counter() - wall0)


async def _clients(base: str, home: Path) -> dict[str, Callable[[], Awaitable[Any]]]:
    raw = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {KEY}"})

    async def httpx_call() -> Any:
        r = await raw.post(
            "/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 256},
        )
        r.raise_for_status()
        return r.json()

    settings = ProviderSettings("openai", "openai", base, KEY, ("OPENAI_API_KEY",))
    orch = Orchestrator(
        Registry([_model("gpt-4o-mini"), _model("dead-model")]),
        {"openai": OpenAIProvider(settings)},
        ledger=None if os.environ.get("NO_LEDGER") else Ledger(home / "ledger.sqlite3"),
    )
    request = LLMRequest(
        TaskType.AUTO_FIX,
        (Message("user", MESSAGES[0]["content"]),),
        tier=Tier.ULTIMATE,
        max_output_tokens=256,
    )
    options = CallOptions(models=("gpt-4o-mini",), use_cache=False)

    def accept(reply: ProviderReply) -> str:
        return reply.text

    async def ace_call() -> Any:
        return await orch.call(request, accept, options)

    provider = orch.providers["openai"]
    gpt = orch.registry.get("gpt-4o-mini")

    async def provider_call() -> Any:
        return await provider.complete(gpt, request)

    clients: dict[str, Callable[[], Awaitable[Any]]] = {
        "raw httpx": httpx_call,
        "ACE provider": provider_call,
        "ACE": ace_call,
    }
    if os.environ.get("ACE_BENCH_VARIANTS"):
        bare = Orchestrator(orch.registry, orch.providers)

        async def bare_call() -> Any:
            return await bare.call(request, accept, options)

        clients["ACE no ledger"] = bare_call
    try:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from litellm import Router  # type: ignore[import-not-found]

        router = Router(
            model_list=[
                {
                    "model_name": "gpt-4o-mini",
                    "litellm_params": {
                        "model": "openai/gpt-4o-mini",
                        "api_base": base,
                        "api_key": KEY,
                    },
                }
            ]
        )

        async def litellm_call() -> Any:
            return await router.acompletion(model="gpt-4o-mini", messages=MESSAGES, max_tokens=256)

        clients["LiteLLM Router"] = litellm_call
    except ImportError:
        print("  LiteLLM not installed in this Python: its rows are skipped.")
    clients["_fallback"] = lambda: _fallback(orch, request)
    return clients


async def _fallback(orch: Orchestrator, request: LLMRequest) -> float:
    """ms from the start of a call whose primary answers 500 to the fallback's valid answer."""
    orch.health = Health()  # a fresh circuit: measure the first failure, not a skip
    t0 = time.perf_counter()
    called = await orch.call(
        request,
        lambda r: r.text,
        CallOptions(models=("dead-model", "gpt-4o-mini"), use_cache=False),
    )
    assert [a.outcome for a in called.result.attempts] == ["server_error", "ok"]
    return (time.perf_counter() - t0) * 1000


async def _litellm_fallback(base: str) -> float | None:
    try:
        from litellm import Router
    except ImportError:
        return None
    router = Router(
        model_list=[
            {
                "model_name": "primary",
                "litellm_params": {"model": "openai/dead-model", "api_base": base, "api_key": KEY},
            },
            {
                "model_name": "backup",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": base, "api_key": KEY},
            },
        ],
        fallbacks=[{"primary": ["backup"]}],
    )
    t0 = time.perf_counter()
    await router.acompletion(model="primary", messages=MESSAGES, max_tokens=16)
    return (time.perf_counter() - t0) * 1000


class _Instant:
    """A provider that answers at once, in process: what is left is the orchestrator's own work."""

    name = "instant"

    def available(self) -> str | None:
        return None

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        return ProviderReply("ok", Usage(10, 10), model.wire_name)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        yield StreamChunk("ok", Usage(10, 10))

    async def aclose(self) -> None:
        return None


async def _pipeline_cpu(home: Path, ledger: bool, calls: int = 5000) -> float:
    """µs of CPU per instrumented_call with no network: routing, budget, ledger, health."""
    model = ModelSpec("m", "instant", "m", 0.00015, 0.0006, 128_000, 16_384, ("AUTO_FIX",))
    orch = Orchestrator(
        Registry([model]),
        {"instant": _Instant()},
        ledger=Ledger(home / f"pipeline-{ledger}.sqlite3") if ledger else None,
    )
    request = LLMRequest(TaskType.AUTO_FIX, (Message("user", "fix"),), tier=Tier.ULTIMATE)
    options = CallOptions(models=("m",), use_cache=False)
    for _ in range(200):
        await orch.call(request, lambda r: r.text, options)
    cpu0 = time.process_time()
    for _ in range(calls):
        await orch.call(request, lambda r: r.text, options)
    cpu = (time.process_time() - cpu0) / calls * 1e6
    await orch.aclose()
    return cpu


def _cold(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def _run(base: str, home: Path, report: Report) -> None:
    clients = await _clients(base, home)
    fallback = clients.pop("_fallback")
    # Rounds interleave the clients so that drift of the machine hits them alike; the median
    # round of each figure is reported.
    rounds: dict[str, list[tuple[Result, Result]]] = {name: [] for name in clients}
    for _ in range(ROUNDS):
        for name, call in clients.items():
            rounds[name].append(
                (
                    await _measure(name, call, SEQUENTIAL, 1),
                    await _measure(name, call, CONCURRENT_CALLS, CONCURRENT),
                )
            )
    results = {name: _median_round(r) for name, r in rounds.items()}
    base_seq, base_conc = results["raw httpx"]
    print(
        f"{'client':<16}{'seq p50':>9}{'seq p99':>9}{'cpu/call':>10}{'added cpu':>11}"
        f"{'32x calls/s':>13}{'vs httpx':>10}{'32x cpu/call':>14}"
    )
    for name, (seq, conc) in results.items():
        added = seq.cpu_per_call_ms - base_seq.cpu_per_call_ms
        ratio = conc.throughput / base_conc.throughput
        print(
            f"{name:<16}{seq.p(0.5):>7.2f}ms{seq.p(0.99):>7.2f}ms{seq.cpu_per_call_ms:>8.2f}ms"
            f"{added:>9.2f}ms{conc.throughput:>13.0f}{ratio:>9.2f}x{conc.cpu_per_call_ms:>12.2f}ms"
        )
    print(
        "  targets: ACE's added CPU <= 0.5 ms per call; >= 0.9x httpx's throughput at 32 concurrent"
    )
    ace_seq, ace_conc = results["ACE"]
    report.series["overhead: sequential latency (ms)"] = {
        name: seq.latencies for name, (seq, _) in results.items()
    }
    report.series["overhead: CPU per call (ms)"] = {
        name: seq.cpu_per_call_ms for name, (seq, _) in results.items()
    }
    report.add(
        Figure(
            "CPU per call, loopback (ACE vs raw httpx)",
            ace_seq.cpu_per_call_ms,
            base_seq.cpu_per_call_ms,
            "ms",
            "added <= 0.5 ms",
            "raw httpx",
        ),
        Figure(
            "calls/s at 32 concurrent (ACE vs raw httpx)",
            ace_conc.throughput,
            base_conc.throughput,
            "calls/s",
            ">= 0.9x",
            "raw httpx",
            lower_is_better=False,
        ),
        Figure(
            "sequential p50, loopback (ACE vs raw httpx)",
            ace_seq.p(0.5),
            base_seq.p(0.5),
            "ms",
            None,
            "raw httpx",
        ),
    )
    if "LiteLLM Router" in results:
        lite_seq, lite_conc = results["LiteLLM Router"]
        report.add(
            Figure(
                "CPU per call, loopback (ACE vs LiteLLM Router)",
                ace_seq.cpu_per_call_ms,
                lite_seq.cpu_per_call_ms,
                "ms",
                None,
                "LiteLLM Router",
            ),
            Figure(
                "calls/s at 32 concurrent (ACE vs LiteLLM Router)",
                ace_conc.throughput,
                lite_conc.throughput,
                "calls/s",
                None,
                "LiteLLM Router",
                lower_is_better=False,
            ),
            Figure(
                "sequential p50, loopback (ACE vs LiteLLM Router)",
                ace_seq.p(0.5),
                lite_seq.p(0.5),
                "ms",
                None,
                "LiteLLM Router",
            ),
            Figure(
                "sequential p99, loopback (ACE vs LiteLLM Router)",
                ace_seq.p(0.99),
                lite_seq.p(0.99),
                "ms",
                None,
                "LiteLLM Router",
            ),
        )
    bare = await _pipeline_cpu(home, ledger=False)
    full = await _pipeline_cpu(home, ledger=True)
    print(
        f"ACE's own CPU per call, in process (no network): {bare:.0f} µs, "
        f"{full:.0f} µs with the ledger (the loopback rows above add the noise of a 2-core box)"
    )
    report.add(
        Figure(
            "ACE's own CPU per call, in process, with ledger",
            full,
            bare,
            "µs",
            None,
            "same, no ledger",
        )
    )
    times = [await fallback() for _ in range(20)]
    print(
        f"fall back after a 500 from the primary (ACE): median {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms (target <= 100 ms)"
    )
    lite = await _litellm_fallback(base)
    if lite is not None:
        print(f"fall back after a 500 from the primary (LiteLLM Router defaults): {lite:.0f} ms")
    report.add(
        Figure(
            "fall back after a 500 (median)",
            statistics.median(times),
            lite,
            "ms",
            "<= 100 ms",
            "LiteLLM Router (defaults)" if lite is not None else None,
        )
    )


def main() -> Report:
    report = Report()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.fake_server", str(port)], cwd=ROOT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the fake server did not start") from None
                time.sleep(0.05)
        with tempfile.TemporaryDirectory() as home:
            asyncio.run(_run(base, Path(home), report))
    finally:
        server.terminate()
        server.wait()
    py = sys.executable
    imp, bare, helped = (
        _cold([py, "-c", "import ace_lsp.orchestrator"]),
        _cold([py, "-c", "pass"]),
        _cold([py, "-m", "ace_lsp.server", "--help"]),
    )
    print(
        f"cold `import ace_lsp.orchestrator`: {imp:.0f} ms "
        f"(bare interpreter {bare:.0f} ms; target < 150 ms)"
    )
    print(f"cold `ace --help`: {helped:.0f} ms (target < 300 ms)")
    report.add(
        Figure(
            "cold `import ace_lsp.orchestrator`", imp, bare, "ms", "< 150 ms", "bare interpreter"
        ),
        Figure("cold `ace --help`", helped, bare, "ms", "< 300 ms", "bare interpreter"),
    )
    return report


if __name__ == "__main__":
    main()
