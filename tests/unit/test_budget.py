"""Budget: estimates, per-request caps, daily/monthly budgets, reservations and downgrade advice."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import date, datetime, timezone

import pytest

from ace_lsp.orchestrator.budget import (
    Budget,
    count_tokens,
    estimate_cost,
    period_starts,
    suggest_downgrade,
    usd,
)
from ace_lsp.orchestrator.config import DEFAULT_LIMITS, TierLimits
from ace_lsp.orchestrator.errors import OverBudget
from ace_lsp.orchestrator.health import ModelStats
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import Message, TaskType, Tier

DAY = date(2025, 3, 14)


def spec(
    model_id: str,
    input_per_1k: float,
    output_per_1k: float,
    *,
    max_output: int = 8192,
    tasks: tuple[str, ...] = ("AUTO_FIX",),
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="p",
        wire_name=model_id,
        input_per_1k=input_per_1k,
        output_per_1k=output_per_1k,
        context_window=128_000,
        max_output=max_output,
        tasks=tasks,
    )


class Today:
    def __init__(self, day: date = DAY) -> None:
        self.day = day

    def __call__(self) -> date:
        return self.day


# -- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contents", "tokens"),
    [
        ([], 0),
        ([""], 4),
        (["a"], 5),
        (["abc"], 5),
        (["abcd"], 6),
        (["x" * 300], 104),
        (["x" * 301, "hi"], 101 + 4 + 1 + 4),
    ],
)
def test_count_tokens(contents: list[str], tokens: int) -> None:
    assert count_tokens([Message("user", c) for c in contents]) == tokens


@pytest.mark.parametrize(
    ("inp", "out", "max_output", "prompt", "allowance", "cost"),
    [
        (0.15, 0.60, 8192, 1000, 1000, 0.75),
        (0.15, 0.60, 8192, 0, 0, 0.0),
        (2.50, 10.0, 8192, 2000, 2048, 0.005 * 1000 + 0.02048 * 1000),
        (0.10, 0.30, 8192, 500, 0, 0.05),
        (0.10, 0.30, 1024, 500, 4096, 0.05 + 0.3072),  # allowance bounded by the model's max
        (0.0, 0.0, 1_000_000, 10_000, 10_000, 0.0),
    ],
)
def test_estimate_cost(
    inp: float, out: float, max_output: int, prompt: int, allowance: int, cost: float
) -> None:
    model = spec("m", inp, out, max_output=max_output)
    assert estimate_cost(model, prompt, allowance) == pytest.approx(cost)


def test_estimate_prices_the_full_output_allowance() -> None:
    model = spec("gpt-4o", 2.5, 10.0)
    prompt = count_tokens([Message("user", "x" * 3000)])
    assert estimate_cost(model, prompt, 2048) == pytest.approx(model.cost(prompt, 2048))
    assert estimate_cost(model, prompt, 2048) > model.cost(prompt, 100)
    with pytest.raises(ValueError):
        estimate_cost(model, -1, 10)


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0.01, "$0.01"), (0.0312, "$0.0312"), (0.5, "$0.50"), (0.48, "$0.48"), (12.0, "$12.00"),
     (0.0, "$0.00"), (0.00003, "$0.00003"), (1.23456, "$1.2346")],
)  # fmt: skip
def test_usd(amount: float, text: str) -> None:
    assert usd(amount) == text


def test_period_starts_are_utc_midnights() -> None:
    day, month = period_starts(DAY)
    assert datetime.fromtimestamp(day, timezone.utc) == datetime(2025, 3, 14, tzinfo=timezone.utc)
    assert datetime.fromtimestamp(month, timezone.utc) == datetime(2025, 3, 1, tzinfo=timezone.utc)


# -- caps and budgets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "amount", "refused"),
    [
        (Tier.FREE, 0.0, False),
        (Tier.FREE, 0.01, False),
        (Tier.FREE, 0.0101, True),
        (Tier.PRO, 0.0101, False),
        (Tier.PRO, 0.10, False),
        (Tier.PRO, 0.1001, True),
        (Tier.ULTIMATE, 0.5, False),
        (Tier.ULTIMATE, 1.00, False),
        (Tier.ULTIMATE, 1.01, True),
    ],
)
def test_per_request_cap(tier: Tier, amount: float, refused: bool) -> None:
    budget = Budget(today=Today())
    reason = budget.over("ana", tier, amount)
    assert (reason is not None) is refused
    if refused:
        assert reason is not None
        assert f"{tier.value} tier's" in reason and "per-request cap" in reason
        with pytest.raises(OverBudget) as info:
            budget.reserve("ana", tier, amount)
        assert info.value.reason == reason
        assert budget.status("ana", tier).reserved == 0.0
    else:
        budget.reserve("ana", tier, amount)


def test_cap_sentence_names_the_figures() -> None:
    budget = Budget(today=Today())
    assert (
        budget.over("ana", Tier.FREE, 0.0312, model="gpt-4o")
        == "gpt-4o's estimate $0.0312 exceeds the free tier's $0.01 per-request cap."
    )
    assert budget.over("ana", Tier.PRO, 0.25) == (
        "The estimate $0.25 exceeds the pro tier's $0.10 per-request cap."
    )


def test_daily_budget_counts_spent_and_reserved() -> None:
    budget = Budget(spent={"ana": (0.44, 1.0)}, today=Today())
    r = budget.reserve("ana", Tier.PRO, 0.03, daily=0.50)
    assert budget.over("ana", Tier.PRO, 0.05, daily=0.50, model="gpt-4o") == (
        "gpt-4o's estimate $0.05 would pass ana's daily budget "
        "($0.44 spent, $0.03 reserved, limit $0.50)."
    )
    # without the override the pro tier's $5.00 daily budget applies
    assert budget.over("ana", Tier.PRO, 0.05) is None
    budget.release(r)
    assert budget.over("ana", Tier.PRO, 0.06, daily=0.50) is None  # 0.44 + 0.06 = limit: allowed
    assert budget.over("ana", Tier.PRO, 0.0601, daily=0.50) is not None
    # other users are not affected
    assert budget.over("bob", Tier.PRO, 0.05, daily=0.50) is None


def test_monthly_budget() -> None:
    budget = Budget(spent={"bob": (0.0, 4.995)}, today=Today())
    reason = budget.over("bob", Tier.FREE, 0.01)
    assert reason == (
        "The estimate $0.01 would pass bob's monthly budget ($4.995 spent, $0.00 reserved, "
        "limit $5.00)."
    )
    assert budget.over("bob", Tier.FREE, 0.005) is None
    assert budget.over("bob", Tier.FREE, 0.01, monthly=10.0) is None


def test_unlimited_budgets() -> None:
    limits = {Tier.FREE: TierLimits(0.01, None, None)}
    budget = Budget(limits, spent={"ana": (1e6, 1e7)}, today=Today())
    assert budget.over("ana", Tier.FREE, 0.01) is None
    with pytest.raises(ValueError):
        budget.over("ana", Tier.PRO, 0.01)  # no limits for that tier


def test_reserve_settle_release() -> None:
    budget = Budget(today=Today())
    a = budget.reserve("ana", Tier.PRO, 0.08)
    b = budget.reserve("ana", Tier.PRO, 0.06)
    assert a.id != b.id
    assert (a.user, a.amount, a.day, a.month) == ("ana", 0.08, DAY, (2025, 3))
    s = budget.status("ana", Tier.PRO)
    assert (s.spent_today, s.reserved) == (0.0, pytest.approx(0.14))
    budget.settle(a, 0.05)
    s = budget.status("ana", Tier.PRO)
    assert (s.spent_today, s.spent_month, s.reserved) == (0.05, 0.05, pytest.approx(0.06))
    budget.release(b, keep=0.01)  # failed after the input was paid
    s = budget.status("ana", Tier.PRO)
    assert (s.spent_today, s.reserved) == (pytest.approx(0.06), 0.0)
    assert budget.open_reservations == 0


def test_settle_records_more_than_the_estimate() -> None:
    budget = Budget(today=Today())
    r = budget.reserve("ana", Tier.FREE, 0.01)
    budget.settle(r, 0.013)
    assert budget.status("ana", Tier.FREE).spent_today == 0.013


def test_settle_and_release_are_idempotent() -> None:
    budget = Budget(today=Today())
    r = budget.reserve("ana", Tier.PRO, 0.05)
    budget.settle(r, 0.04)
    budget.settle(r, 0.04)
    budget.release(r, keep=0.02)
    s = budget.status("ana", Tier.PRO)
    assert (s.spent_today, s.reserved) == (0.04, 0.0)
    r2 = budget.reserve("ana", Tier.PRO, 0.05)
    budget.release(r2)
    budget.settle(r2, 0.05)
    assert budget.status("ana", Tier.PRO).spent_today == 0.04


@pytest.mark.parametrize("bad", [-0.01, math.nan, math.inf])
def test_bad_amounts_are_refused(bad: float) -> None:
    budget = Budget(today=Today())
    with pytest.raises(ValueError):
        budget.reserve("ana", Tier.PRO, bad)
    r = budget.reserve("ana", Tier.PRO, 0.01)
    with pytest.raises(ValueError):
        budget.settle(r, bad)
    assert budget.status("ana", Tier.PRO).reserved == 0.01  # still open: a bad call changes nothing


def test_status_reports_limits_and_room() -> None:
    budget = Budget(spent={"ana": (0.2, 4.9)}, today=Today())
    budget.reserve("ana", Tier.FREE, 0.01)
    s = budget.status("ana", Tier.FREE)
    assert (s.tier, s.user, s.daily_limit, s.monthly_limit, s.per_request_limit) == (
        Tier.FREE, "ana", 0.50, 5.00, 0.01,
    )  # fmt: skip
    assert s.left_today == pytest.approx(0.09)  # the month is the tighter one
    assert budget.status("ana", Tier.FREE, daily=0.21).left_today == pytest.approx(0.0, abs=1e-12)


# -- days and months --------------------------------------------------------------------------


def test_day_and_month_rollover() -> None:
    today = Today(date(2025, 1, 31))
    budget = Budget(spent={"ana": (0.3, 2.0)}, today=today)
    assert budget.over("ana", Tier.FREE, 0.01, daily=0.305) is not None
    r = budget.reserve("ana", Tier.FREE, 0.01)  # made on Jan 31 ...
    today.day = date(2025, 2, 1)
    s = budget.status("ana", Tier.FREE)
    assert (s.spent_today, s.spent_month, s.reserved) == (0.0, 0.0, 0.01)
    budget.settle(r, 0.008)  # ... settled on Feb 1: spent on Feb 1
    s = budget.status("ana", Tier.FREE)
    assert (s.spent_today, s.spent_month) == (0.008, 0.008)
    today.day = date(2025, 2, 2)
    s = budget.status("ana", Tier.FREE)
    assert (s.spent_today, s.spent_month) == (0.0, 0.008)
    today.day = date(2025, 2, 1)  # the clock went back: nothing is reset or restored
    budget.settle(budget.reserve("ana", Tier.FREE, 0.01), 0.01)
    s = budget.status("ana", Tier.FREE)
    assert (s.spent_today, s.spent_month) == (0.01, pytest.approx(0.018))


def test_new_day_frees_the_daily_budget() -> None:
    today = Today()
    budget = Budget(spent={"ana": (0.50, 0.50)}, today=today)
    with pytest.raises(OverBudget, match="daily budget"):
        budget.reserve("ana", Tier.FREE, 0.01)
    today.day = date(2025, 3, 15)
    budget.reserve("ana", Tier.FREE, 0.01)


# -- concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "low", "high"),
    [(1, 0.8, 1.2), (2, 0.8, 1.2), (3, 0.8, 1.0), (4, 0.5, 1.0)],
)
async def test_200_concurrent_callers_never_overspend(seed: int, low: float, high: float) -> None:
    """200 tasks reserve, yield a random number of times, and settle within [low, high] x estimate.

    Reservations are granted only while spent + reserved stays within the cap, so the money at
    stake never passes it; what is spent can pass it only by the in-flight calls' costs beyond
    their estimates, and not at all when no call costs more than its estimate.
    """
    rng = random.Random(seed)
    cap = 0.50
    estimate = 0.0093
    budget = Budget(today=Today())
    granted: list[float] = []
    overruns: list[float] = []
    refused = 0

    async def caller() -> None:
        nonlocal refused
        for _ in range(rng.randint(0, 30)):
            await asyncio.sleep(0)
        try:
            r = budget.reserve("ana", Tier.FREE, estimate, daily=cap)
        except OverBudget as exc:
            assert "daily budget" in exc.reason
            refused += 1
            return
        s = budget.status("ana", Tier.FREE, daily=cap)
        assert s.spent_today + s.reserved <= cap + 1e-9
        granted.append(estimate)
        for _ in range(rng.randint(0, 5)):
            await asyncio.sleep(0)
        actual = estimate * rng.uniform(low, high)
        overruns.append(max(0.0, actual - estimate))
        budget.settle(r, actual)

    await asyncio.gather(*(caller() for _ in range(200)))

    s = budget.status("ana", Tier.FREE, daily=cap)
    assert s.reserved == 0.0 and budget.open_reservations == 0
    assert len(granted) + refused == 200
    assert refused > 0
    assert s.spent_today <= cap + math.fsum(overruns) + 1e-9
    if high <= 1.0:
        assert s.spent_today <= cap + 1e-9
    # the cap was used, not wasted: a refused caller saw less than one estimate of room
    assert s.spent_today >= low * (cap - estimate) - 1e-9
    # and once it is reached, reservations are refused
    if s.spent_today + estimate > cap:
        with pytest.raises(OverBudget):
            budget.reserve("ana", Tier.FREE, estimate, daily=cap)


# -- downgrade advice -------------------------------------------------------------------------

BIG = spec("claude-3-5-sonnet", 3.0, 15.0)
MID = spec("codestral", 0.3, 0.9)
SMALL = spec("devstral-small", 0.1, 0.3)
CHEAP_CHAT = spec("mistral-small", 0.05, 0.05, tasks=("CHAT",))
SAME_PRICE = spec("devstral-twin", 0.1, 0.3)
MODELS = [BIG, MID, SMALL, CHEAP_CHAT, SAME_PRICE]


def st(calls: int, rate: float | None) -> ModelStats:
    return ModelStats(calls, None, None, rate)


@pytest.mark.parametrize(
    ("current", "stats", "expected"),
    [
        # the cheapest model within tolerance wins
        (BIG, {"claude-3-5-sonnet": st(20, 0.90), "codestral": st(20, 0.89),
               "devstral-small": st(20, 0.86)}, SMALL),
        # exactly at the tolerance is within it
        (BIG, {"claude-3-5-sonnet": st(20, 0.90), "devstral-small": st(20, 0.85)}, SMALL),
        # the cheapest is too weak: the next one
        (BIG, {"claude-3-5-sonnet": st(20, 0.90), "codestral": st(20, 0.88),
               "devstral-small": st(20, 0.80)}, MID),
        # too few calls for the cheap one
        (BIG, {"claude-3-5-sonnet": st(20, 0.90), "codestral": st(20, 0.88),
               "devstral-small": st(4, 1.0)}, MID),
        # too few calls for the current model: no advice
        (BIG, {"claude-3-5-sonnet": st(4, 0.90), "devstral-small": st(20, 0.95)}, None),
        # no figures for the current model
        (BIG, {"devstral-small": st(20, 0.95)}, None),
        (BIG, {"claude-3-5-sonnet": st(10, None), "devstral-small": st(20, 0.95)}, None),
        # a cheaper model not tagged for the task is never suggested
        (MID, {"codestral": st(20, 0.5), "mistral-small": st(50, 1.0)}, None),
        # nothing cheaper than the cheapest
        (SMALL, {"devstral-small": st(20, 0.5), "devstral-twin": st(20, 0.9),
                 "codestral": st(20, 1.0)}, None),
        # equal price: the higher success rate wins
        (MID, {"codestral": st(20, 0.9), "devstral-small": st(20, 0.88),
               "devstral-twin": st(20, 0.91)}, SAME_PRICE),
        # a better cheaper model is of course suggested
        (BIG, {"claude-3-5-sonnet": st(30, 0.70), "codestral": st(30, 0.95)}, MID),
    ],
)  # fmt: skip
def test_suggest_downgrade(
    current: ModelSpec, stats: dict[str, ModelStats], expected: ModelSpec | None
) -> None:
    assert suggest_downgrade("AUTO_FIX", current, stats, MODELS) == expected


def test_suggest_downgrade_options_and_task_enum() -> None:
    stats = {"claude-3-5-sonnet": st(3, 0.9), "devstral-small": st(3, 0.8)}
    assert suggest_downgrade(TaskType.AUTO_FIX, BIG, stats, MODELS) is None
    assert suggest_downgrade(TaskType.AUTO_FIX, BIG, stats, MODELS, min_calls=3) is None
    assert (
        suggest_downgrade(TaskType.AUTO_FIX, BIG, stats, MODELS, min_calls=3, tolerance=0.1)
        == SMALL
    )
    assert suggest_downgrade("CODE_REVIEW", BIG, stats, MODELS, min_calls=3, tolerance=1) is None


def test_default_limits_are_the_seeds() -> None:
    caps = {tier: limits.per_request_usd for tier, limits in DEFAULT_LIMITS.items()}
    assert caps == {Tier.FREE: 0.01, Tier.PRO: 0.10, Tier.ULTIMATE: 1.00}
