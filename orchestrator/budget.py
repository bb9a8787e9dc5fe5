"""Budgets: cost estimates, the per-request cap, daily and monthly budgets, and downgrade advice.

Pure arithmetic (`count_tokens`, `estimate_cost`, `suggest_downgrade`) plus `Budget`, an in-memory
book of what each user has spent and has reserved. `Budget` lives on one asyncio event loop and its
methods are synchronous, so check-and-reserve is atomic: however many calls are in flight, a
reservation is granted only while spent + reserved + its amount stays within every limit. Spending
can still end above a limit by the amount in-flight calls cost beyond their estimates; estimates are
conservative (the full output allowance is priced) so that this stays rare and small.

Days and months are UTC. Money is spent when a call ends: `settle` and `release` add to the current
day and month, whatever day the reservation was made. The clock only moves forward: if `today()`
goes back (a clock adjustment), the current day is kept and nothing is reset.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from ace_lsp.orchestrator.config import DEFAULT_LIMITS, TierLimits
from ace_lsp.orchestrator.errors import OverBudget
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.stats import ModelStats
from ace_lsp.orchestrator.types import Message, Tier

CHARS_PER_TOKEN = 3  # below the ~4 of English text and code: overestimates, never under
TOKENS_PER_MESSAGE = 4  # role and framing tokens
_EPSILON = 1e-9  # dollars; absorbs float noise so that reaching a limit exactly is allowed


def count_tokens(messages: Sequence[Message]) -> int:
    """A cheap, conservative token count: ceil(chars / 3) + 4 per message."""
    return sum(-(-len(m.content) // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


def estimate_cost(model: ModelSpec, prompt_tokens: int, max_output_tokens: int) -> float:
    """The most a call can cost: the prompt plus the full output allowance.

    The allowance is bounded by the model's own `max_output`, since it cannot produce more.
    """
    if prompt_tokens < 0 or max_output_tokens < 0:
        raise ValueError("token counts cannot be negative")
    return model.cost(prompt_tokens, min(max_output_tokens, model.max_output))


def utc_today() -> date:
    """Today's date in UTC, the calendar budgets are counted in."""
    return datetime.now(timezone.utc).date()


def period_starts(day: date) -> tuple[float, float]:
    """Epoch seconds of 00:00 UTC on `day` and on the 1st of its month, for the ledger's queries."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return start.timestamp(), start.replace(day=1).timestamp()


def usd(amount: float) -> str:
    """Dollars for messages: "$0.01", "$0.0312", "$0.50", "$12.00"; tiny amounts keep 6 digits."""
    text = f"{amount:.4f}" if amount == 0 or abs(amount) >= 0.0001 else f"{amount:.6f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"${whole}.{frac}"


@dataclass(frozen=True)
class Reservation:
    """Money set aside for one call; `day` and `month` (UTC) are when it was made."""

    id: int
    user: str
    amount: float
    day: date
    month: tuple[int, int]


@dataclass(frozen=True)
class BudgetStatus:
    """One user's spending, open reservations and the limits that apply, at one moment."""

    tier: Tier
    user: str
    spent_today: float
    daily_limit: float | None
    spent_month: float
    monthly_limit: float | None
    reserved: float
    per_request_limit: float | None = None

    @property
    def left_today(self) -> float | None:
        """What can still be reserved today (the smaller of the daily and monthly room)."""
        rooms = [
            limit - spent - self.reserved
            for limit, spent in (
                (self.daily_limit, self.spent_today),
                (self.monthly_limit, self.spent_month),
            )
            if limit is not None
        ]
        return max(0.0, min(rooms)) if rooms else None


@dataclass
class _Account:
    today: float = 0.0
    month: float = 0.0
    reserved: dict[int, float] = field(default_factory=dict)  # open reservations by id

    def reserved_total(self) -> float:
        return math.fsum(self.reserved.values())


def _check_amount(amount: float, what: str) -> None:
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"{what} must be a finite, non-negative number of dollars, not {amount!r}")


class Budget:
    """Per-user spending against per-tier limits, with reservations for calls in flight."""

    def __init__(
        self,
        limits: Mapping[Tier, TierLimits] = DEFAULT_LIMITS,
        *,
        spent: Mapping[str, tuple[float, float]] | None = None,
        today: Callable[[], date] = utc_today,
    ) -> None:
        """`spent`: user -> (spent today, spent this month), as `Ledger.spent_by_user` returns."""
        self._limits = dict(limits)
        self._today = today
        self._day = today()
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)
        self._open: dict[int, Reservation] = {}
        for user, (day_spent, month_spent) in (spent or {}).items():
            _check_amount(day_spent, "spent today")
            _check_amount(month_spent, "spent this month")
            self._accounts[user] = _Account(day_spent, max(month_spent, day_spent))

    # -- time ---------------------------------------------------------------------------------

    def _roll(self) -> date:
        """Move to today's UTC date, zeroing daily (and on a new month, monthly) spending."""
        now = self._today()
        if now > self._day:
            new_month = (now.year, now.month) != (self._day.year, self._day.month)
            for account in self._accounts.values():
                account.today = 0.0
                if new_month:
                    account.month = 0.0
            self._day = now
        return self._day

    def _account(self, user: str) -> _Account:
        account = self._accounts.get(user)
        if account is None:
            account = self._accounts[user] = _Account()
        return account

    def limits(
        self, tier: Tier, *, daily: float | None = None, monthly: float | None = None
    ) -> tuple[float | None, float | None]:
        """The (daily, monthly) budgets that apply: the user's own, else the tier's."""
        limits = self._tier_limits(tier)
        return (
            limits.daily_usd if daily is None else daily,
            limits.monthly_usd if monthly is None else monthly,
        )

    def _tier_limits(self, tier: Tier) -> TierLimits:
        try:
            return self._limits[tier]
        except KeyError:
            raise ValueError(f"no budget limits for tier {tier!r}") from None

    # -- checks -------------------------------------------------------------------------------

    def over(
        self,
        user: str,
        tier: Tier,
        amount: float,
        *,
        daily: float | None = None,
        monthly: float | None = None,
        model: str | None = None,
    ) -> str | None:
        """Why reserving `amount` would break a limit, in one sentence; None when it fits.

        `daily`/`monthly` replace the tier's budgets for this user (their settings); `model`
        names what the estimate is for in the sentence.
        """
        _check_amount(amount, "amount")
        self._roll()
        limits = self._tier_limits(tier)

        def subject() -> str:  # formatted only for a refusal: this check runs on every call
            return f"{model}'s estimate {usd(amount)}" if model else f"The estimate {usd(amount)}"

        if amount > limits.per_request_usd + _EPSILON:
            return (
                f"{subject()} exceeds the {tier.value} tier's "
                f"{usd(limits.per_request_usd)} per-request cap."
            )
        account = self._accounts.get(user) or _Account()
        reserved = account.reserved_total()
        for period, spent, limit in (
            ("daily", account.today, limits.daily_usd if daily is None else daily),
            ("monthly", account.month, limits.monthly_usd if monthly is None else monthly),
        ):
            if limit is not None and spent + reserved + amount > limit + _EPSILON:
                return (
                    f"{subject()} would pass {user}'s {period} budget ({usd(spent)} spent, "
                    f"{usd(reserved)} reserved, limit {usd(limit)})."
                )
        return None

    def reserve(
        self,
        user: str,
        tier: Tier,
        amount: float,
        *,
        daily: float | None = None,
        monthly: float | None = None,
        model: str | None = None,
    ) -> Reservation:
        """Set `amount` aside for a call, or raise OverBudget with the reason."""
        reason = self.over(user, tier, amount, daily=daily, monthly=monthly, model=model)
        if reason is not None:
            raise OverBudget(reason)
        day = self._day
        reservation = Reservation(next(self._ids), user, amount, day, (day.year, day.month))
        self._account(user).reserved[reservation.id] = amount
        self._open[reservation.id] = reservation
        return reservation

    def settle(self, r: Reservation, actual: float) -> None:
        """The call ended: `actual` is spent (even above the estimate) and the rest is freed.

        A reservation already settled or released is left alone: no double count.
        """
        _check_amount(actual, "actual cost")
        if self._open.pop(r.id, None) is None:
            return
        self._roll()
        account = self._account(r.user)
        account.reserved.pop(r.id, None)
        account.today += actual
        account.month += actual

    def release(self, r: Reservation, keep: float = 0.0) -> None:
        """The call failed or was cancelled: only `keep` (e.g. the input already paid) is spent."""
        self.settle(r, keep)

    def status(
        self, user: str, tier: Tier, *, daily: float | None = None, monthly: float | None = None
    ) -> BudgetStatus:
        """`user`'s spending and limits now; `daily`/`monthly` replace the tier's, as in `over`."""
        self._roll()
        limits = self._tier_limits(tier)
        account = self._accounts.get(user) or _Account()
        return BudgetStatus(
            tier=tier,
            user=user,
            spent_today=account.today,
            daily_limit=limits.daily_usd if daily is None else daily,
            spent_month=account.month,
            monthly_limit=limits.monthly_usd if monthly is None else monthly,
            reserved=account.reserved_total(),
            per_request_limit=limits.per_request_usd,
        )

    @property
    def open_reservations(self) -> int:
        """How many reservations are neither settled nor released."""
        return len(self._open)


def _price(model: ModelSpec) -> float:
    """Price of 1K input plus 1K output tokens: one figure to rank models by."""
    return model.cost(1000, 1000)


def suggest_downgrade(
    task: str,
    model: ModelSpec,
    stats: Mapping[str, ModelStats],
    registry_models: Iterable[ModelSpec],
    *,
    min_calls: int = 5,
    tolerance: float = 0.05,
) -> ModelSpec | None:
    """The cheapest model tagged for `task` whose success rate there is within `tolerance` of
    `model`'s, or None.

    `stats` maps model id -> that model's figures *for this task* (`Ledger.usage` lines give them,
    see `ledger.stats_by_model`). Both models need at least `min_calls` counted calls. "Cheaper"
    compares the price of 1K input plus 1K output tokens. Ties go to the higher success rate, then
    to the model id, so the answer is deterministic.
    """
    task = str(getattr(task, "value", task))
    current = stats.get(model.id)
    if current is None or current.calls < min_calls or current.success_rate is None:
        return None
    floor = current.success_rate - tolerance
    best: tuple[float, float, str] | None = None
    choice: ModelSpec | None = None
    for candidate in registry_models:
        if candidate.id == model.id or task not in candidate.tasks:
            continue
        if _price(candidate) >= _price(model):
            continue
        s = stats.get(candidate.id)
        if s is None or s.calls < min_calls or s.success_rate is None:
            continue
        if s.success_rate < floor - _EPSILON:
            continue
        key = (_price(candidate), -s.success_rate, candidate.id)
        if best is None or key < best:
            best, choice = key, candidate
    return choice
