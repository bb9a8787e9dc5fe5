"""Per-model health: rolling latency and success figures, and a circuit breaker.

`Health` is fed one outcome per attempt (`record`) and answers two questions for routing and
hedging: may this model be called now (`allow`, `circuits`), and how fast is it (`stats`, `p95`).
It lives on one asyncio event loop; its methods are synchronous, so each is atomic there.

Circuit rules, per model:

- *closed*: calls go through. Each outcome counts by its `errors.verdict`: `failure_threshold`
  FAILED outcomes in a row open it; an ANSWERED one (the model replied, even with a patch or a
  review we refused) resets the count; a NEUTRAL one (or a kind errors.py does not define) neither
  counts nor resets.
- *open*: calls are refused until `cooldown_s` has passed since it opened; then it is *half_open*.
  Outcomes of calls that were already in flight when it opened change nothing.
- *half_open*: one probe at a time is let through. An answered probe closes the circuit, a failed
  probe re-opens it for another cool-down, a neutral outcome frees the probe slot. A probe whose
  outcome is never recorded is given up after `cooldown_s`, so a lost caller cannot wedge it.

Figures come from the last `window` attempts: the success rate is ok / every outcome except
"cancelled" (whose result says nothing about the model). Latency percentiles come from the last
`window` "ok" and "cancelled" calls (a failure's latency is the time it took to fail, not to
answer). A cancelled call is a *censored* observation: it was stopped after `latency_ms`, so it
would have taken at least that long. Dropping those would bias the figures low — a hedge cancels
exactly the primary's slowest calls, so a p95 fed only the calls that finished shrinks, which fires
more hedges, which cancel more slow calls — hence `censored_percentile` (Kaplan-Meier).
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ace_lsp.orchestrator.errors import Verdict, verdict
from ace_lsp.orchestrator.stats import ModelStats, percentile
from ace_lsp.orchestrator.types import CANCELLED, OK

if TYPE_CHECKING:
    from ace_lsp.orchestrator.ledger import LedgerRow

CLOSED = "closed"
OPEN = "open"  # the one state in which routing skips the model
HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Latency:
    """One call's latency; `censored`: the call was cancelled then, it would have taken longer."""

    ms: float
    censored: bool = False


def censored_percentile(observations: Iterable[Latency], q: float) -> float | None:
    """The q-th percentile (0..100) of latencies some of which are only lower bounds.

    The distribution is the Kaplan-Meier estimate: a censored call's share of the probability
    moves to the calls above it (at a tie, a finished call counts as the faster). The share left
    after the last finished call, which nothing observed can place, stays on the censored calls
    above it, each at its own time: a lower bound, so the figure is never below what is known.
    Each point then counts as its share over the first point's share (an uncensored sample's
    points count 1 each), and `percentile`'s rule — linear between order statistics — is applied
    to those counts; with nothing censored this is exactly `percentile`. None until a call has
    finished: lower bounds alone say nothing about how fast the model answers.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    obs = sorted(observations, key=lambda o: (o.ms, o.censored))
    if not any(o.censored for o in obs):
        return percentile([o.ms for o in obs], q)
    finished = [i for i, o in enumerate(obs) if not o.censored]
    if not finished:
        return None
    points: list[tuple[float, float]] = []  # (ms, probability), ascending; shares never shrink
    survival = 1.0
    for i in finished:
        share = survival / (len(obs) - i)  # what survives, split among the calls still at risk
        points.append((obs[i].ms, share))
        survival -= share
    above = obs[finished[-1] + 1 :]
    points += [(o.ms, survival / len(above)) for o in above]
    # In probability units, a point of share w holds its value for w - unit, then rises linearly
    # to the next point over one unit; the target is q% of (1 - unit), as `percentile` has it.
    unit = points[0][1]
    target = q / 100.0 * (1.0 - unit)
    below = 0.0
    for (ms, share), (next_ms, _) in itertools.pairwise(points):
        held = below + max(share - unit, 0.0)
        below += share
        if target <= held:
            return ms
        if target < below:
            return ms + (next_ms - ms) * (target - held) / (below - held)
    return points[-1][0]


@dataclass
class _Model:
    outcomes: deque[str]
    latencies: deque[Latency]  # of "ok" calls, and of "cancelled" ones as censored
    state: str = CLOSED
    failures: int = 0  # consecutive, while closed
    opened_at: float = 0.0
    probe_since: float | None = None  # when the half-open probe was let through


class Health:
    """Rolling figures and a circuit breaker per model id."""

    def __init__(
        self,
        *,
        window: int = 100,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1 or failure_threshold < 1 or cooldown_s < 0:
            raise ValueError("window and failure_threshold must be >= 1, cooldown_s >= 0")
        self.window = window
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._models: dict[str, _Model] = {}

    def _get(self, model: str) -> _Model:
        m = self._models.get(model)
        if m is None:
            m = _Model(deque(maxlen=self.window), deque(maxlen=self.window))
            self._models[model] = m
        return m

    def _add(self, m: _Model, outcome: str, latency_ms: float) -> None:
        m.outcomes.append(outcome)
        if outcome in (OK, CANCELLED) and math.isfinite(latency_ms) and latency_ms >= 0:
            m.latencies.append(Latency(latency_ms, censored=outcome == CANCELLED))

    def record(self, model: str, outcome: str, latency_ms: float) -> None:
        """One finished attempt of `model`: its outcome kind and how long it took."""
        m = self._get(model)
        self._add(m, outcome, latency_ms)
        self._tick(m)
        if m.state == OPEN:
            return  # a call from before the circuit opened: figures only
        said = verdict(outcome)
        if said is Verdict.FAILED:
            if m.state == HALF_OPEN:
                self._open(m)
            else:
                m.failures += 1
                if m.failures >= self.failure_threshold:
                    self._open(m)
        elif said is Verdict.ANSWERED:
            m.failures = 0
            if m.state == HALF_OPEN:
                m.state = CLOSED
                m.probe_since = None
        elif m.state == HALF_OPEN:
            m.probe_since = None  # neutral: the probe proved nothing, let another one through

    def _open(self, m: _Model) -> None:
        m.state = OPEN
        m.opened_at = self._clock()
        m.failures = 0
        m.probe_since = None

    def _tick(self, m: _Model) -> None:
        """Time-driven transitions: open -> half_open after the cool-down; drop a stale probe."""
        now = self._clock()
        if m.state == OPEN and now - m.opened_at >= self.cooldown_s:
            m.state = HALF_OPEN
            m.probe_since = None
        elif (
            m.state == HALF_OPEN
            and m.probe_since is not None
            and now - m.probe_since >= self.cooldown_s
        ):
            m.probe_since = None

    def state(self, model: str) -> str:
        """The circuit: closed, open, or half_open (an open one whose cool-down has passed)."""
        m = self._models.get(model)
        if m is None:
            return CLOSED
        self._tick(m)
        return m.state

    def allow(self, model: str) -> bool:
        """May `model` be called now? In half_open, True only for the one probe in flight."""
        m = self._models.get(model)
        if m is None:
            return True
        self._tick(m)
        if m.state == CLOSED:
            return True
        if m.state == HALF_OPEN and m.probe_since is None:
            m.probe_since = self._clock()
            return True
        return False

    def circuits(self) -> dict[str, str]:
        """Every model seen so far and its circuit state."""
        return {model: self.state(model) for model in self._models}

    def stats(self, model: str) -> ModelStats:
        """`model`'s recent latency percentiles and success rate; cancelled attempts not counted."""
        m = self._models.get(model)
        if m is None:
            return ModelStats(0, None, None, None)
        counted = [o for o in m.outcomes if o != CANCELLED]
        ok = sum(1 for o in counted if o == OK)
        return ModelStats(
            calls=len(counted),
            p50_ms=censored_percentile(m.latencies, 50),
            p95_ms=censored_percentile(m.latencies, 95),
            success_rate=ok / len(counted) if counted else None,
        )

    def p95(self, model: str) -> float | None:
        """The model's p95 latency in ms, cancelled calls counted as censored (None before its
        first success)."""
        m = self._models.get(model)
        return censored_percentile(m.latencies, 95) if m else None

    def warm(self, rows: Iterable[LedgerRow]) -> None:
        """Load figures from ledger rows (any order; applied oldest first). Circuits stay closed."""
        for row in sorted(rows, key=lambda r: r.ts):
            self._add(self._get(row.model), row.outcome, row.latency_ms)
