"""instrumented_call: retries, fallback, budgets, cache, hedging, cancellation, ledger rows.

Providers here are scripted (this tests the pipeline, not a vendor's wire; those are tested against
fake servers in test_provider_*.py). Waits are recorded, not slept, except where a test needs a
model to be slow.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ace_lsp.orchestrator.budget import Budget
from ace_lsp.orchestrator.call import CallOptions, Orchestrator, Progress
from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
    NoFix,
    OverBudget,
    PatchError,
    RateLimited,
    ServerError,
)
from ace_lsp.orchestrator.health import Health
from ace_lsp.orchestrator.ledger import Ledger
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.types import LLMRequest, Message, ProviderReply, TaskType, Tier
from tests.scripted import Scripted, Slow, model

REQUEST = LLMRequest(TaskType.AUTO_FIX, (Message("user", "fix it"),), max_output_tokens=1000)


def accept(reply: ProviderReply) -> str:
    if reply.text == "bad":
        raise PatchError("The reply contains no unified diff.")
    return reply.text


def orchestrator(
    models: list[ModelSpec], scripts: dict[str, Scripted], **kwargs: object
) -> tuple[Orchestrator, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    orch = Orchestrator(Registry(models), scripts, sleep=sleep, **kwargs)  # type: ignore[arg-type]
    return orch, sleeps


def only(*names: str, **kw: object) -> CallOptions:
    return CallOptions(models=names, **kw)  # type: ignore[arg-type]


def outcomes(orch_result: object) -> list[tuple[str, str, int]]:
    attempts = orch_result.attempts  # type: ignore[attr-defined]
    return [(a.model, a.outcome, a.retry) for a in attempts]


async def test_retries_retryable_errors_honouring_retry_after() -> None:
    a = Scripted("a", [RateLimited("429.", retry_after=1.5), ServerError("500."), "fixed"])
    orch, sleeps = orchestrator([model("a")], {"a": a})
    called = await orch.call(REQUEST, accept, only("a"))
    assert called.value == "fixed"
    assert outcomes(called.result) == [
        ("a", "rate_limited", 1),
        ("a", "server_error", 2),
        ("a", "ok", 3),
    ]
    assert sleeps[0] == 1.5  # retry-after honoured
    assert 0.75 <= sleeps[1] <= 1.0  # backoff for retry 2: 1 s minus up to 25% jitter


async def test_retry_after_beyond_the_bound_moves_on_at_once() -> None:
    a = Scripted("a", [RateLimited("429.", retry_after=120)])
    b = Scripted("b", ["fixed"])
    orch, sleeps = orchestrator([model("a"), model("b")], {"a": a, "b": b})
    called = await orch.call(REQUEST, accept, only("a", "b"))
    assert outcomes(called.result) == [("a", "rate_limited", 1), ("b", "ok", 1)]
    assert sleeps == []


async def test_non_retryable_errors_and_bad_replies_move_on_without_retry() -> None:
    a = Scripted("a", [BadRequest("400.")])
    b = Scripted("b", ["bad"])
    c = Scripted("c", ["fixed"])
    orch, sleeps = orchestrator([model("a"), model("b"), model("c")], {"a": a, "b": b, "c": c})
    called = await orch.call(REQUEST, accept, only("a", "b", "c"))
    assert outcomes(called.result) == [
        ("a", "bad_request", 1),
        ("b", "invalid_patch", 1),
        ("c", "ok", 1),
    ]
    assert [x.chain_position for x in called.result.attempts] == [0, 1, 2]
    assert sleeps == []
    assert called.result.attempts[0].cost_usd == 0  # an error reply is not billed
    assert called.result.attempts[1].cost_usd == pytest.approx(0.0013)  # a refused answer is
    assert called.result.cost_usd == pytest.approx(2 * 0.0013)


async def test_an_auth_error_skips_the_providers_other_models() -> None:
    shared = Scripted("p", [AuthError("p refused the API key (HTTP 401); check P_KEY.")])
    models = [
        ModelSpec("p1", "p", "p1", 0.001, 0.003, 32000, 4096, ("AUTO_FIX",)),
        ModelSpec("p2", "p", "p2", 0.001, 0.003, 32000, 4096, ("AUTO_FIX",)),
        model("b"),
    ]
    orch, _ = orchestrator(models, {"p": shared, "b": Scripted("b", ["fixed"])})
    called = await orch.call(REQUEST, accept, only("p1", "p2", "b"))
    assert outcomes(called.result) == [("p1", "auth", 1), ("b", "ok", 1)]
    assert ("p2", "p refused its key earlier.") in called.result.skipped
    assert shared.calls == ["p1"]


@pytest.mark.parametrize("per_model", [False, True])
async def test_a_spent_quota_skips_every_model_behind_the_same_key(per_model: bool) -> None:
    """Mistral and Devstral are two provider instances on one key: a spent account is both's;
    a per-model quota (Gemini's) is not."""
    from types import SimpleNamespace

    from ace_lsp.orchestrator.errors import QuotaExhausted

    same = SimpleNamespace(api_key="k-1", base_url="https://api.example")
    spent = Scripted("p", [QuotaExhausted("p has no credits left.", per_model=per_model)])
    twin = Scripted("q", ["fixed"])
    other = Scripted("o", ["fixed"])
    spent.settings = twin.settings = same  # type: ignore[attr-defined]
    other.settings = SimpleNamespace(api_key="k-2", base_url="https://api.example")  # type: ignore[attr-defined]
    models = [
        ModelSpec(name, name[0], name, 0.001, 0.003, 32000, 4096, ("AUTO_FIX",))
        for name in ("p1", "q1", "o1")
    ]
    orch, _ = orchestrator(models, {"p": spent, "q": twin, "o": other})
    called = await orch.call(REQUEST, accept, only("p1", "q1", "o1"))
    if per_model:
        assert outcomes(called.result) == [("p1", "quota_exhausted", 1), ("q1", "ok", 1)]
    else:
        assert outcomes(called.result) == [("p1", "quota_exhausted", 1), ("o1", "ok", 1)]
        assert ("q1", "p has no quota left earlier.") in called.result.skipped
        assert twin.calls == []


async def test_budget_skips_an_expensive_model_for_a_cheaper_one() -> None:
    big = model("big", 1.0, 3.0)  # per 1K: its estimate breaks the free tier's $0.01 cap
    orch, _ = orchestrator(
        [big, model("b")], {"big": Scripted("big", []), "b": Scripted("b", ["ok"])}
    )
    called = await orch.call(REQUEST, accept, only("big", "b"))
    assert outcomes(called.result) == [("b", "ok", 1)]
    (skip,) = called.result.skipped
    assert skip[0] == "big" and "exceeds the free tier's $0.01 per-request cap" in skip[1]


async def test_over_budget_when_nothing_fits_names_the_figures() -> None:
    orch, _ = orchestrator([model("big", 1.0, 3.0)], {"big": Scripted("big", [])})
    with pytest.raises(
        OverBudget, match=r"big's estimate \$3\.\d+ exceeds the free tier's \$0\.01"
    ):
        await orch.call(REQUEST, accept, only("big"))


async def test_daily_budget_override_is_enforced() -> None:
    orch, _ = orchestrator([model("a")], {"a": Scripted("a", ["ok", "ok"])})
    await orch.call(REQUEST, accept, only("a", daily_usd=0.004, use_cache=False))
    with pytest.raises(OverBudget, match="daily budget"):
        await orch.call(REQUEST, accept, only("a", daily_usd=0.004, use_cache=False))


async def test_an_identical_request_costs_nothing_twice() -> None:
    a = Scripted("a", ["fixed"])
    orch, _ = orchestrator([model("a")], {"a": a})
    first = await orch.call(REQUEST, accept, only("a"))
    second = await orch.call(REQUEST, accept, only("a"))
    assert a.calls == ["a"]
    assert second.value == "fixed" and second.result.cost_usd == 0 < first.result.cost_usd
    (hit,) = second.result.attempts
    assert hit.cached and hit.outcome == "ok" and hit.reason is None
    assert not first.result.attempts[0].cached
    assert orch.health.stats("a").calls == 1  # no call, nothing learnt about the model


async def test_a_cache_hit_is_a_cached_row_in_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    orch, _ = orchestrator([model("a")], {"a": Scripted("a", ["fixed"])}, ledger=ledger)
    try:
        for _ in range(2):
            await orch.call(REQUEST, accept, only("a"))
        await ledger.flush()
        assert sorted(r.outcome for r in await ledger.recent()) == ["cached", "ok"]
    finally:
        await ledger.close()


async def test_hedging_starts_the_next_model_after_the_primarys_p95() -> None:
    health = Health()
    for _ in range(10):
        health.record("a", "ok", 60.0)
    a = Scripted("a", [Slow(5.0, "late")])
    b = Scripted("b", ["fast"])
    orch, _ = orchestrator([model("a"), model("b")], {"a": a, "b": b}, health=health)
    t0 = time.perf_counter()
    called = await orch.call(REQUEST, accept, only("a", "b", hedging=True))
    elapsed = time.perf_counter() - t0
    assert called.value == "fast"
    assert elapsed < 2.0  # not the primary's 5 s
    assert a.cancelled == 1
    assert sorted(outcomes(called.result)) == [("a", "cancelled", 1), ("b", "ok", 1)]
    assert orch.budget.open_reservations == 0


async def test_a_primary_cancelled_by_its_hedge_counts_as_at_least_that_slow() -> None:
    health = Health()
    for _ in range(19):
        health.record("a", "ok", 60.0)
    a = Scripted("a", [Slow(5.0, "late")])
    b = Scripted("b", [Slow(0.05, "fast")])
    orch, _ = orchestrator([model("a"), model("b")], {"a": a, "b": b}, health=health)
    called = await orch.call(REQUEST, accept, only("a", "b", hedging=True))
    assert called.value == "fast"
    (cancelled,) = [x for x in called.result.attempts if x.outcome == "cancelled"]
    assert cancelled.latency_ms >= 100.0  # hedged after 60 ms, the hedge took 50 ms more
    # the primary's slowest call is not dropped from its figures: the p95 that triggers the next
    # hedge counts it (censored), so it cannot shrink to the calls that beat the hedge
    p95 = orch.health.p95("a")
    assert p95 is not None and p95 > 60.0
    assert p95 == pytest.approx(60.0 + 0.05 * (cancelled.latency_ms - 60.0))  # 20 calls' p95


async def test_without_hedging_a_slow_primary_is_waited_for() -> None:
    a = Scripted("a", [Slow(0.2, "late")])
    orch, _ = orchestrator([model("a"), model("b")], {"a": a, "b": Scripted("b", [])})
    called = await orch.call(REQUEST, accept, only("a", "b", hedging=False))
    assert called.value == "late"


async def test_cancelling_the_call_records_it_and_keeps_only_the_input_cost(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    a = Scripted("a", [Slow(30.0, "never")])
    orch, _ = orchestrator([model("a")], {"a": a}, ledger=ledger)
    task = asyncio.ensure_future(orch.call(REQUEST, accept, only("a")))
    while not a.calls:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ledger.flush()
    (row,) = await ledger.recent()
    assert row.outcome == "cancelled" and row.cost_usd > 0 and row.output_tokens == 0
    status = orch.budget.status("local", Tier.FREE)
    assert status.reserved == 0 and status.spent_today == pytest.approx(row.cost_usd)
    await ledger.close()


async def test_ledger_rows_match_the_attempts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    scripts = {
        "a": Scripted("a", [ServerError("500."), ServerError("500."), ServerError("500.")]),
        "b": Scripted("b", ["bad"]),
        "c": Scripted("c", ["fixed"]),
    }
    orch, _ = orchestrator([model("a"), model("b"), model("c")], scripts, ledger=ledger)
    called = await orch.call(REQUEST, accept, only("a", "b", "c"))
    await ledger.flush()
    rows = sorted(await ledger.recent(), key=lambda r: (r.chain_position, r.attempt))
    assert [(r.model, r.outcome, r.chain_position, r.attempt) for r in rows] == [
        (x.model, x.outcome, x.chain_position, x.retry) for x in called.result.attempts
    ]
    assert {r.request_id for r in rows} == {called.result.request_id}
    assert sum(r.cost_usd for r in rows) == pytest.approx(called.result.cost_usd)
    await ledger.close()


async def test_repeated_failures_open_the_circuit_for_the_next_call() -> None:
    a = Scripted("a", [ServerError("500.")] * 3)
    b = Scripted("b", ["fixed"] * 3)
    orch, _ = orchestrator([model("a"), model("b")], {"a": a, "b": b})
    for _ in range(3):  # each call fails on `a` once, then `b` answers
        await orch.call(REQUEST, accept, only("a", "b", use_cache=False))
    assert orch.health.state("a") == "open"
    routed = orch.route(LLMRequest(TaskType.AUTO_FIX, (Message("user", "x"),)))
    assert "a" not in [m.id for m in routed.chain]


async def test_streaming_reports_progress() -> None:
    seen: list[Progress] = []
    orch, _ = orchestrator([model("a")], {"a": Scripted("a", ["x" * 400])})
    called = await orch.call(REQUEST, accept, only("a", on_progress=seen.append))
    assert called.value == "x" * 400
    assert seen[0] == Progress("a", 1, 1, 0)
    assert seen[-1].output_tokens == 100


async def test_an_attempt_timeout_is_a_timeout_outcome() -> None:
    a = Scripted("a", [Slow(10.0, "late")])
    orch, _ = orchestrator([model("a"), model("b")], {"a": a, "b": Scripted("b", ["ok"])})
    called = await orch.call(REQUEST, accept, only("a", "b", attempt_timeout_s=0.05, max_retries=0))
    assert outcomes(called.result) == [("a", "timeout", 1), ("b", "ok", 1)]
    assert called.result.attempts[0].cost_usd > 0  # the prompt was sent: its input is billed


async def test_no_fix_when_every_model_fails() -> None:
    orch, _ = orchestrator([model("a")], {"a": Scripted("a", ["bad"])})
    with pytest.raises(NoFix) as info:
        await orch.call(REQUEST, accept, only("a"))
    assert info.value.reason == "The reply contains no unified diff."
    assert [x.outcome for x in info.value.attempts] == ["invalid_patch"]


def test_budget_default_is_the_tiers() -> None:
    assert isinstance(Orchestrator(Registry([]), {}).budget, Budget)


async def test_a_retryable_error_falls_back_at_once_when_another_model_is_left() -> None:
    a = Scripted("a", [ServerError("500.")])
    orch, sleeps = orchestrator([model("a"), model("b")], {"a": a, "b": Scripted("b", ["ok"])})
    called = await orch.call(REQUEST, accept, only("a", "b"))
    assert outcomes(called.result) == [("a", "server_error", 1), ("b", "ok", 1)]
    assert sleeps == []  # no backoff: the next model is the retry


async def test_200_concurrent_calls_never_overspend_a_daily_cap(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    a = Scripted("a", [Slow(0.001 * (i % 7), "fixed") for i in range(200)])
    orch, _ = orchestrator([model("a")], {"a": a}, ledger=ledger)
    options = only("a", daily_usd=0.05, use_cache=False, max_retries=0)

    async def one() -> str:
        try:
            return (await orch.call(REQUEST, accept, options)).value
        except OverBudget:
            return "refused"

    results = await asyncio.gather(*(one() for _ in range(200)))
    await ledger.flush()
    spent = orch.budget.status("local", Tier.FREE, daily=0.05).spent_today
    rows = await ledger.recent(per_model=1000)
    assert spent <= 0.05
    assert results.count("fixed") == len(rows) == len(a.calls)  # one row per attempt made
    assert results.count("refused") > 0
    assert sum(r.cost_usd for r in rows) == pytest.approx(spent)
    await ledger.close()


@pytest.mark.parametrize(
    "explicit", [pytest.param(False, id="routing-table"), pytest.param(True, id="explicit-chain")]
)
async def test_a_prompt_larger_than_a_models_window_skips_it(explicit: bool) -> None:
    """Issue 13, bug 1: the orchestrator never gave the router the prompt's size, so a model
    whose context window is too small was called anyway (and failed with context_too_long)."""
    from dataclasses import replace

    from ace_lsp.orchestrator.routing import load_routing

    small = replace(model("small", 0.0001, 0.0001), context_window=8_000, max_output=1_000)
    big = model("big", 0.0001, 0.0001)  # ~10,000 prompt tokens: within the Free tier's cap
    scripts = {"small": Scripted("small", ["too small"]), "big": Scripted("big", ["fixed"])}
    table = load_routing('[strategy.AUTO_FIX]\nprimary = "small"\nfallbacks = ["big"]\n')
    orch, _ = orchestrator([small, big], scripts, routing=table)
    request = LLMRequest(TaskType.AUTO_FIX, (Message("user", "x" * 30_000),), max_output_tokens=500)
    called = await orch.call(request, accept, only("small", "big") if explicit else None)
    assert called.value == "fixed" and scripts["small"].calls == []
    assert outcomes(called.result) == [("big", "ok", 1)]
    ((name, reason),) = called.result.skipped
    assert name == "small" and "context window (8,000 tokens) is too small" in reason

    short = LLMRequest(TaskType.AUTO_FIX, (Message("user", "fix it"),), max_output_tokens=500)
    assert (
        await orch.call(short, accept, only("small") if explicit else None)
    ).value == "too small"


async def test_instrumented_call_is_the_seeds_entry_point() -> None:
    """`instrumented_call(task, tier, user, messages)`: routed by the table for (task, tier), the
    user's budget charged, a refused reply moves on, every attempt in the result."""
    from ace_lsp.orchestrator import instrumented_call
    from ace_lsp.orchestrator.routing import load_routing

    table = load_routing('[tiers.pro]\nCHAT = ["a", "b"]\n[tiers.free]\nCHAT = ["b"]\n')
    scripts = {"a": Scripted("a", ["bad"]), "b": Scripted("b", ["hello"])}
    models = [model("a", tasks=("CHAT",)), model("b", tasks=("CHAT",))]
    orch, _ = orchestrator(models, scripts, routing=table)
    result = await instrumented_call(
        TaskType.CHAT,
        Tier.PRO,
        "user123",
        [Message("user", "hi")],
        orchestrator=orch,
        validate=accept,
    )
    assert (result.text, result.model) == ("hello", "b")
    assert outcomes(result) == [("a", "invalid_patch", 1), ("b", "ok", 1)]
    assert orch.budget.status("user123", Tier.PRO).spent_today == pytest.approx(result.cost_usd)
