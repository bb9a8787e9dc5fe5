"""Health: percentiles (censored ones too), success rates, circuit transitions (injected clock) and
warming."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.health import Health, Latency, ModelStats, censored_percentile, percentile
from ace_lsp.orchestrator.ledger import LedgerRow


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(
    window: int = 100, failure_threshold: int = 3, cooldown_s: float = 30.0
) -> tuple[Health, Clock]:
    clock = Clock()
    health = Health(
        window=window, failure_threshold=failure_threshold, cooldown_s=cooldown_s, clock=clock
    )
    return health, clock


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([5.0], 50, 5.0),
        ([5.0], 95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([1.0, 2.0, 3.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([float(i) for i in range(1, 101)], 95, 95.05),
        ([float(i) for i in range(1, 101)], 50, 50.5),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_rejects_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def ok(*ms: float) -> list[Latency]:
    return [Latency(x) for x in ms]


def cut(*ms: float) -> list[Latency]:
    """Calls cancelled after `ms`: each would have taken longer."""
    return [Latency(x, censored=True) for x in ms]


@pytest.mark.parametrize(
    ("observations", "q", "expected"),
    [
        pytest.param([], 95, None, id="empty"),
        pytest.param(ok(4.0, 1.0, 3.0, 2.0), 50, 2.5, id="uncensored-is-percentile"),
        pytest.param(ok(*map(float, range(1, 101))), 95, 95.05, id="uncensored-100"),
        pytest.param(cut(5.0, 7.0), 50, None, id="only-lower-bounds"),
        # cancelled before any call finished: says nothing, as if it were not there
        pytest.param(cut(1.0) + ok(10.0, 20.0, 30.0, 40.0), 50, 25.0, id="censored-below-all"),
        # its share moves to the calls above it: 30 and 40 count 1.5 calls each, 10 still 1
        pytest.param(ok(10.0, 30.0, 40.0) + cut(20.0), 50, 30.0, id="censored-inside"),
        pytest.param(ok(10.0, 30.0, 40.0) + cut(20.0), 25, 10.0 + 20.0 * 0.75, id="inside-q25"),
        # nothing finished above it: it stands for itself, at least that slow
        pytest.param(ok(10.0, 20.0) + cut(30.0), 95, 29.0, id="censored-on-top"),
        pytest.param(ok(10.0) + cut(20.0, 30.0), 50, 20.0, id="two-on-top"),
        pytest.param(ok(20.0) + cut(*[1000.0] * 10), 95, 1000.0, id="hedged-tail"),
        # at a tie the finished call is the faster; the cancelled one was slower than 10
        pytest.param(ok(10.0, 20.0) + cut(10.0), 50, 20.0, id="tie"),
        # 90 fast calls, a hedged tail whose slowest finished: the censored shares pile on it
        pytest.param(
            ok(*[100.0] * 90, 1080.0, 1120.0, 1160.0, 1200.0)
            + cut(957.8, 1057.6, 1145.0, 1176.7, 1192.5, 1192.5),
            95,
            1200.0,
            id="tail-ending-finished",
        ),
        pytest.param(ok(10.0, 20.0) + cut(5.0, 30.0), 0, 10.0, id="q0-first-finished"),
        pytest.param(ok(10.0, 20.0) + cut(5.0, 30.0), 100, 30.0, id="q100-last-bound"),
    ],
)
def test_censored_percentile(observations: list[Latency], q: float, expected: float | None) -> None:
    assert censored_percentile(observations, q) == pytest.approx(expected)


def test_censored_percentile_rejects_bad_q() -> None:
    with pytest.raises(ValueError):
        censored_percentile(cut(1.0) + ok(2.0), -1)


FINISHED = [float(x) for x in (3, 10, 12, 20, 35, 36, 50, 80, 81, 120, 400)]


@pytest.mark.parametrize("q", [0, 5, 25, 50, 90, 95, 99, 100])
def test_censored_percentile_bounds(q: float) -> None:
    plain = percentile(FINISHED, q)
    assert plain is not None
    # cancelled before anything finished: no information, the same as leaving it out
    assert censored_percentile(cut(1.0, 2.0) + ok(*FINISHED), q) == pytest.approx(plain)
    # cancelled after everything finished: at least that slow, the same as finishing then
    for k in (1, 4, 10):
        mixed = ok(*FINISHED[:k]) + cut(*FINISHED[k:])
        assert censored_percentile(mixed, q) == pytest.approx(plain)
    # anywhere else: never below the figure without it
    for bound in (11.0, 36.0, 100.0, 1000.0):
        got = censored_percentile(ok(*FINISHED) + cut(bound, bound + 1), q)
        assert got is not None and got >= plain - 1e-9


@pytest.mark.parametrize(
    ("outcomes", "calls", "rate"),
    [
        ([], 0, None),
        (["ok"] * 4, 4, 1.0),
        (["ok", "server_error", "ok", "invalid_patch"], 4, 0.5),
        (["ok", "cancelled", "cancelled", "timeout"], 2, 0.5),  # cancelled is not counted
        (["cancelled"], 0, None),
        (["rate_limited", "ok"], 2, 0.5),
    ],
)
def test_success_rate(outcomes: list[str], calls: int, rate: float | None) -> None:
    h, _ = make()
    for o in outcomes:
        h.record("m", o, 100.0)
    s = h.stats("m")
    assert s.calls == calls
    assert s.success_rate == rate


def test_latency_percentiles_come_from_ok_calls_only() -> None:
    h, _ = make()
    for ms in (100.0, 200.0, 300.0, 400.0, 500.0):
        h.record("m", "ok", ms)
    h.record("m", "timeout", 60_000.0)
    h.record("m", "invalid_patch", 9_000.0)
    s = h.stats("m")
    assert s.p50_ms == 300.0
    assert s.p95_ms == pytest.approx(480.0)
    assert h.p95("m") == pytest.approx(480.0)
    assert h.p95("unknown") is None
    assert h.stats("unknown") == ModelStats(0, None, None, None)


def test_a_cancelled_call_counts_as_at_least_that_slow() -> None:
    h, _ = make()
    for _ in range(19):
        h.record("m", "ok", 100.0)
    h.record("m", "ok", 200.0)
    assert h.p95("m") == pytest.approx(105.0)
    h.record("m", "cancelled", 900.0)  # the hedge won after 900 ms: this call was slower
    h.record("m", "cancelled", 950.0)
    assert h.p95("m") == pytest.approx(percentile([100.0] * 19 + [200.0, 900.0, 950.0], 95))
    s = h.stats("m")
    assert s.p95_ms == h.p95("m")
    assert (s.calls, s.success_rate) == (20, 1.0)  # a cancel says nothing about success
    h.record("n", "cancelled", 50.0)
    assert h.p95("n") is None  # no call finished: no figure


def p95_under_hedging(record_cancelled: bool) -> float:
    """The p95 after 500 calls of a model whose latency is 100 ms, or 1000-1400 ms one call in
    ten, when every call that passes the current p95 is hedged and the hedge answers 40 ms later
    (the primary is cancelled then, unless it finished first)."""
    h, _ = make()
    tail = [1000.0 + 40.0 * i for i in range(11)]
    latencies = [tail[i // 10 % 11] if i % 10 == 9 else 100.0 for i in range(600)]
    for ms in latencies[:100]:  # warm: the model as it is, unhedged
        h.record("m", "ok", ms)
    for ms in latencies[100:]:
        trigger = h.p95("m")
        assert trigger is not None
        if ms <= trigger + 40.0:
            h.record("m", "ok", ms)
        elif record_cancelled:
            h.record("m", "cancelled", trigger + 40.0)
    p95 = h.p95("m")
    assert p95 is not None
    return p95


def test_hedging_does_not_shrink_the_p95_that_triggers_it() -> None:
    warmed = percentile(sorted([100.0] * 90 + [1000.0 + 40.0 * i for i in range(10)]), 95)
    assert warmed is not None and warmed > 1000.0
    # dropping the cancelled primaries keeps only the calls that beat the trigger: it spirals down
    assert p95_under_hedging(record_cancelled=False) == pytest.approx(100.0)
    # counted as censored, the slow calls keep the trigger in the tail
    assert p95_under_hedging(record_cancelled=True) >= 1000.0


def test_window_keeps_only_recent_calls() -> None:
    h, _ = make(window=10)
    for _ in range(10):
        h.record("m", "server_error", 1.0)
    for i in range(10):
        h.record("m", "ok", float(i))
    s = h.stats("m")
    assert (s.calls, s.success_rate) == (10, 1.0)
    for _ in range(5):
        h.record("m", "ok", 1000.0)
    assert h.stats("m").p50_ms == pytest.approx(1000.0 * 0.5 + 9.0 * 0.5)  # 5..9 and 5 x 1000


@pytest.mark.parametrize(
    ("outcomes", "state"),
    [
        ([], "closed"),
        (["server_error"] * 2, "closed"),
        (["server_error"] * 3, "open"),
        (["server_error", "overloaded", "timeout"], "open"),
        (["unavailable", "bad_response", "timeout"], "open"),
        (["timeout", "timeout", "ok", "timeout", "timeout"], "closed"),  # ok resets
        (["timeout", "timeout", "invalid_patch", "timeout", "timeout"], "closed"),  # answered
        # issue 13, bug 4: an unreadable review is an answer too
        (["timeout", "timeout", "invalid_review", "timeout", "timeout"], "closed"),
        (["timeout", "timeout", "check_timeout", "timeout"], "open"),  # ACE's check: neutral
        (["timeout", "timeout", "rate_limited", "timeout"], "open"),  # neutral: no reset
        (["timeout", "auth", "quota_exhausted", "cancelled", "timeout", "timeout"], "open"),
        (["context_too_long", "bad_request"] * 5, "closed"),  # neutral: never opens
        (["rate_limited"] * 10, "closed"),
        (["over_budget", "unsupported"] * 5, "closed"),  # unknown kinds are neutral
        (["timeout", "timeout", "something_new", "timeout"], "open"),
    ],
)
def test_circuit_opens_on_consecutive_failures(outcomes: list[str], state: str) -> None:
    h, _ = make()
    for o in outcomes:
        h.record("m", o, 10.0)
    assert h.state("m") == state
    assert h.allow("m") is (state == "closed")


def test_threshold_is_configurable() -> None:
    h, _ = make(failure_threshold=1)
    h.record("m", "timeout", 1.0)
    assert h.state("m") == "open"


def test_cool_down_then_single_probe_then_close() -> None:
    h, clock = make(cooldown_s=30.0)
    for _ in range(3):
        h.record("m", "server_error", 10.0)
    assert h.state("m") == "open"
    clock.t += 29.9
    assert not h.allow("m")
    assert h.state("m") == "open"
    clock.t += 0.1
    assert h.state("m") == "half_open"
    assert h.circuits() == {"m": "half_open"}
    assert h.allow("m")  # the probe
    assert not h.allow("m")  # only one at a time
    assert not h.allow("m")
    h.record("m", "ok", 50.0)
    assert h.state("m") == "closed"
    assert h.allow("m") and h.allow("m")


def test_failed_probe_reopens_for_another_cool_down() -> None:
    h, clock = make(cooldown_s=30.0)
    for _ in range(3):
        h.record("m", "timeout", 10.0)
    clock.t += 30
    assert h.allow("m")
    clock.t += 5
    h.record("m", "timeout", 5000.0)
    assert h.state("m") == "open"
    clock.t += 29
    assert not h.allow("m")
    clock.t += 1
    assert h.allow("m")
    h.record("m", "invalid_patch", 10.0)  # the model answered: closes
    assert h.state("m") == "closed"


def test_an_unreadable_review_closes_a_half_open_circuit() -> None:
    h, clock = make(cooldown_s=30.0)
    for _ in range(3):
        h.record("m", "timeout", 10.0)
    clock.t += 30
    assert h.allow("m")
    h.record("m", "invalid_review", 10.0)  # the probe's model answered, unreadably: closes
    assert h.state("m") == "closed"


def test_neutral_probe_outcome_frees_the_slot() -> None:
    h, clock = make()
    for _ in range(3):
        h.record("m", "timeout", 10.0)
    clock.t += 30
    assert h.allow("m")
    h.record("m", "rate_limited", 10.0)
    assert h.state("m") == "half_open"
    assert h.allow("m")
    assert not h.allow("m")


def test_lost_probe_is_given_up_after_a_cool_down() -> None:
    h, clock = make(cooldown_s=10.0)
    for _ in range(3):
        h.record("m", "timeout", 10.0)
    clock.t += 10
    assert h.allow("m")
    clock.t += 9.9
    assert not h.allow("m")
    clock.t += 0.1
    assert h.allow("m")


def test_late_outcomes_while_open_do_not_change_the_circuit() -> None:
    h, clock = make()
    for _ in range(3):
        h.record("m", "timeout", 10.0)
    h.record("m", "ok", 10.0)  # a call that started before the circuit opened
    assert h.state("m") == "open"
    assert h.stats("m").calls == 4  # but its figures count
    clock.t += 30
    h.record("m", "ok", 10.0)  # after the cool-down: counts as the probe's answer
    assert h.state("m") == "closed"


def test_circuits_are_per_model() -> None:
    h, _ = make()
    for _ in range(3):
        h.record("a", "timeout", 10.0)
    h.record("b", "ok", 10.0)
    assert h.circuits() == {"a": "open", "b": "closed"}
    assert h.allow("never-seen")
    assert h.state("never-seen") == "closed"


def row(model: str, outcome: str, ms: float, ts: float) -> LedgerRow:
    return LedgerRow(ts, "r", "u", "AUTO_FIX", "free", model, "p", 1, 1, 0.0, ms, outcome, 0)


def test_warm_loads_figures_but_not_circuits() -> None:
    h, _ = make(window=4)
    rows = [row("a", "timeout", 9.0, float(t)) for t in range(10)]
    rows += [row("a", "ok", 100.0 * t, 100.0 + t) for t in range(1, 4)]
    rows.append(row("b", "ok", 42.0, 5.0))
    rows.append(row("c", "ok", 10.0, 1.0))
    rows.append(row("c", "cancelled", 500.0, 2.0))
    h.warm(reversed(rows))  # any order: applied oldest first
    assert h.state("a") == "closed"
    assert h.allow("a")
    s = h.stats("a")
    assert s.calls == 4  # window of 4: one timeout and the three ok
    assert s.success_rate == 0.75
    assert s.p50_ms == 200.0
    assert h.stats("b") == ModelStats(1, 42.0, 42.0, 1.0)
    assert h.p95("c") == pytest.approx(percentile([10.0, 500.0], 95))  # cancelled: censored
    # warming does not count towards the breaker: two more failures do not open it
    h.record("a", "timeout", 1.0)
    h.record("a", "timeout", 1.0)
    assert h.state("a") == "closed"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Health(window=0)
    with pytest.raises(ValueError):
        Health(failure_threshold=0)


def test_each_error_kind_counts_one_way() -> None:
    """How health counts an error is its class's `verdict`; one kind, one verdict."""
    from ace_lsp.orchestrator import errors

    verdicts: dict[str, set[errors.Verdict]] = {}
    for cls in errors._tree(errors.AceError):
        verdicts.setdefault(cls.kind, set()).add(cls.verdict)
    assert all(len(v) == 1 for v in verdicts.values()), verdicts
    assert errors.verdict("ok") is errors.Verdict.ANSWERED
    assert errors.verdict("cancelled") is errors.verdict("interrupted") is errors.Verdict.NEUTRAL
