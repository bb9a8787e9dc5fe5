"""instrumented_call(): the one entry point for model calls (docs/architecture.md: one fix's flow).

`instrumented_call(task, tier, user, messages)` is all a one-off call needs;
`Orchestrator.call(request, validate)` is the same pipeline on a long-lived orchestrator, and
returns the value the caller's check made of the reply.

Route the request (by task, tier, keys, circuits, context window and budget), then try the chain:
reserve the estimate, call, run the caller's validator (in a worker thread, within a time limit:
the event loop stays free; a refused reply moves on to the next model), settle the real cost,
write one ledger row per attempt and feed the health stats. A retryable error moves on to the
next model at once; the same model is retried (jittered backoff, `retry-after` honoured up to a
bound) only when no other model is left. Optionally hedge: when the running model passes its p95
latency, start the next one too and keep the first valid answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from ace_lsp.orchestrator import budget as budgeting
from ace_lsp.orchestrator import caps
from ace_lsp.orchestrator.cache import ResponseCache, cache_key
from ace_lsp.orchestrator.config import AceConfig, load_config
from ace_lsp.orchestrator.errors import (
    AceError,
    AuthError,
    CheckTimeout,
    NoFix,
    OverBudget,
    ProviderError,
    QuotaExhausted,
    Timeout,
)
from ace_lsp.orchestrator.health import Health
from ace_lsp.orchestrator.ledger import InFlight, Ledger, LedgerError, LedgerRow, UsageLedger
from ace_lsp.orchestrator.providers import make_provider
from ace_lsp.orchestrator.providers.base import Provider
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.retry import retry_delay
from ace_lsp.orchestrator.routing import (
    Route,
    RoutingTable,
    Skip,
    load_routing,
    route,
    too_small,
)
from ace_lsp.orchestrator.types import (
    CACHED,
    CANCELLED,
    OK,
    Attempt,
    LLMRequest,
    LLMResult,
    Message,
    ProviderReply,
    TaskType,
    Tier,
    Usage,
)

if TYPE_CHECKING:
    from ace_lsp.orchestrator.team.shared import TeamLedger

log = logging.getLogger(__name__)
T = TypeVar("T")
Validator = Callable[[ProviderReply], T]

MIN_HEDGE_DELAY_S = 0.05


@dataclass(frozen=True)
class Progress:
    """What a caller can show while a model works: which model, attempt n of m, tokens so far."""

    model: str
    attempt: int  # 1-based position in the chain
    of: int  # chain length
    output_tokens: int = 0


@dataclass(frozen=True)
class CallOptions:
    """How one call runs: retries, time limits, hedging, budgets, which models, streaming, cache."""

    hedging: bool | None = None  # None: the tier's setting from the config
    max_retries: int = 2  # per model, for retryable errors only
    retry_after_limit_s: float = 20.0  # a longer `retry-after` moves on to the next model
    attempt_timeout_s: float | None = None  # wall-clock bound per attempt (None: provider's)
    daily_usd: float | None = None  # this user's budgets, overriding the tier's
    monthly_usd: float | None = None
    preferred_model: str | None = None
    models: tuple[str, ...] | None = None  # an explicit chain instead of the routing table's
    on_progress: Callable[[Progress], None] | None = None  # set: the call streams
    use_cache: bool = True


DEFAULT_OPTIONS = CallOptions()


@dataclass(frozen=True)
class Called(Generic[T]):
    """A validated value and the call that produced it."""

    value: T
    result: LLMResult


@dataclass
class _Call:
    request: LLMRequest
    options: CallOptions
    request_id: str
    prompt_tokens: int
    chain: Sequence[ModelSpec]
    attempts: list[Attempt] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # provider instance -> why no more of its models are tried in this call (key refused, quota
    # used up: the same for every model behind that key)
    dead_providers: dict[str, str] = field(default_factory=dict)
    budget_refusals: list[str] = field(default_factory=list)

    def refused(self, model: ModelSpec, reason: str) -> None:
        """A budget refused `model`'s estimate: a skip, and a reason for OverBudget."""
        self.skipped.append((model.id, reason))
        self.budget_refusals.append(reason)


@dataclass
class _Try:
    """One attempt of one model: the money held for it, and what its ledger row needs besides
    how it ended. A cache hit holds nothing, has no marker and is not timed."""

    model: ModelSpec
    position: int
    retry: int
    cached: bool = False
    estimate: float = 0.0
    reservation: budgeting.Reservation | None = None  # this process's budget's
    shared: str | None = None  # the team budget's reservation id, in team mode
    row_id: str | None = None  # shared with its in-flight marker
    t0: float = 0.0  # perf_counter when the call started (0: not timed)


@dataclass(frozen=True)
class _Success(Generic[T]):
    value: T
    reply: ProviderReply
    model: ModelSpec


class Orchestrator:
    """The registry, one live client per provider, the router, budgets, ledger, health, cache."""

    def __init__(
        self,
        registry: Registry,
        providers: Mapping[str, Provider],
        *,
        routing: RoutingTable | None = None,
        budget: budgeting.Budget | None = None,
        ledger: UsageLedger | None = None,
        team: TeamLedger | None = None,
        health: Health | None = None,
        cache: ResponseCache | None = None,
        hedging: Mapping[Tier, bool] | None = None,
        defaults: CallOptions = DEFAULT_OPTIONS,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self.registry = registry
        self.providers = dict(providers)
        self.routing = routing or load_routing()
        self.budget = budget or budgeting.Budget()
        self.ledger = ledger
        self.team = team  # the team's shared ledger and budget (then also `ledger`), or None
        self.health = health or Health()
        self.cache = cache or ResponseCache()
        self.hedging = dict(hedging or {})
        self.defaults = defaults
        self._sleep = sleep

    @classmethod
    async def open(
        cls, config: AceConfig | None = None, workspace: Path | None = None
    ) -> Orchestrator:
        """Everything from the config: providers with their keys, the ledger's totals and stats."""
        from ace_lsp.orchestrator.registry import load

        config = config or load_config(workspace)
        providers = {name: make_provider(s) for name, s in config.providers.items()}
        ledger: UsageLedger | None = None
        team: TeamLedger | None = None
        health = Health()
        spent: dict[str, tuple[float, float]] = {}
        try:
            if config.ledger_url is not None:
                from ace_lsp.orchestrator.team.shared import open_team

                ledger = team = await open_team(config)
            else:
                ledger = Ledger(config.ledger_path)
            day, month = budgeting.period_starts(budgeting.utc_today())
            spent = await ledger.spent_by_user(day, month)
            health.warm(await ledger.recent())
        except LedgerError as exc:
            # fixes matter more than bookkeeping: go on without the ledger, say so once
            log.warning("%s ACE goes on without a usage ledger.", exc.reason)
            if ledger is not None:
                await ledger.close()
            ledger = team = None
        if team is not None:
            team.share_health(health)
        return cls(
            load(config.model_tables),
            providers,
            budget=budgeting.Budget(config.limits, spent=spent),
            ledger=ledger,
            team=team,
            health=health,
            cache=ResponseCache(config.cache_ttl_s),
            hedging=config.hedging,
            defaults=CallOptions(
                max_retries=config.max_retries,
                retry_after_limit_s=config.retry_after_limit_s,
                attempt_timeout_s=config.attempt_timeout_s,
            ),
        )

    async def aclose(self) -> None:
        """Close every provider's connections and the ledger."""
        for provider in self.providers.values():
            await provider.aclose()
        if self.ledger is not None:
            await self.ledger.close()

    # -- routing -------------------------------------------------------------------------------

    def unavailable(self) -> dict[str, str]:
        """Provider instance -> why it cannot be called now (no key, not configured)."""
        out = {
            name: reason
            for name, provider in self.providers.items()
            if (reason := provider.available()) is not None
        }
        for model in self.registry:
            if model.provider not in self.providers:
                out.setdefault(
                    model.provider, f"No provider named '{model.provider}' is configured."
                )
        return out

    def route(self, request: LLMRequest, options: CallOptions | None = None) -> Route:
        """The chain `request` would try now, and the models passed over, each with why."""
        return self._route(request, options or self.defaults)[0]

    def _route(self, request: LLMRequest, options: CallOptions) -> tuple[Route, list[str]]:
        """The chain, and the reasons models were passed over for budget (for OverBudget)."""
        estimate_tokens = budgeting.count_tokens(request.messages)
        refusals: list[str] = []

        def over_budget(model: ModelSpec) -> str | None:
            cost = budgeting.estimate_cost(model, estimate_tokens, self._max_output(model, request))
            reason = self.budget.over(
                request.user,
                request.tier,
                cost,
                daily=options.daily_usd,
                monthly=options.monthly_usd,
                model=model.id,
            )
            if reason is not None:
                refusals.append(reason)
            return reason

        def fits(model: ModelSpec) -> str | None:
            return too_small(model, estimate_tokens, request.max_output_tokens)

        if options.models is not None:
            return self._explicit(options.models, fits, over_budget), refusals
        routed = route(
            request.task,
            request.tier,
            table=self.routing,
            registry=self.registry,
            unavailable=self.unavailable(),
            circuits=self.health.circuits(),
            over_budget=over_budget,
            preferred=options.preferred_model,
            prompt_tokens=estimate_tokens,
            reply_tokens=request.max_output_tokens,
        )
        return routed, refusals

    def _explicit(
        self,
        names: Sequence[str],
        fits: Callable[[ModelSpec], str | None],
        over_budget: Callable[[ModelSpec], str | None],
    ) -> Route:
        """The given models, in order, minus those that cannot be called (with the reason)."""
        unavailable = self.unavailable()
        chain: list[ModelSpec] = []
        skipped: list[Skip] = []
        for name in names:
            model = self.registry.get(name)
            reason = unavailable.get(model.provider) or fits(model) or over_budget(model)
            if reason is None:
                chain.append(model)
            else:
                skipped.append(Skip(model.id, reason))
        return Route(tuple(chain), tuple(skipped))

    def _same_account(self, name: str) -> list[str]:
        """Provider instances that use the same key at the same service as `name` (Mistral and
        Devstral share MISTRAL_API_KEY: a refused key or a spent quota is both's)."""

        def account(provider: Provider) -> tuple[object, object] | None:
            s = getattr(provider, "settings", None)
            key = getattr(s, "api_key", None)
            return None if key is None else (getattr(s, "base_url", None), key)

        mine = account(self.providers[name])
        if mine is None:
            return [name]
        return [n for n, p in self.providers.items() if n == name or account(p) == mine]

    @staticmethod
    def _max_output(model: ModelSpec, request: LLMRequest) -> int:
        return min(request.max_output_tokens, model.max_output)

    # -- the call ------------------------------------------------------------------------------

    async def call(
        self, request: LLMRequest, validate: Validator[T], options: CallOptions | None = None
    ) -> Called[T]:
        """Route, then try models until one's reply passes `validate`; see the module docstring.

        `options` None means the orchestrator's defaults (from the config).
        """
        options = options or self.defaults
        if self.team is not None and request.user != self.team.user:
            # the team's books know this process by its database role, whatever the editor says
            request = dataclasses.replace(request, user=self.team.user)
        routed, refusals = self._route(request, options)
        ctx = _Call(
            request=request,
            options=options,
            request_id=uuid.uuid4().hex,
            prompt_tokens=budgeting.count_tokens(request.messages),
            chain=routed.chain,
            skipped=[(s.model, s.reason) for s in routed.skipped],
        )
        if not routed.chain:
            if refusals:
                raise OverBudget(f"No model fits the budget; {refusals[0]}")
            reasons = [s.reason for s in routed.skipped]
            detail = f": {reasons[0]}" if reasons else "."
            raise NoFix(f"No model can do {request.task.value} for this tier{detail}")
        hedge = options.hedging if options.hedging is not None else self.hedging.get(request.tier)
        run = self._hedged if hedge else self._sequential
        outcome = await run(ctx, validate)
        if outcome is not None:
            return Called(outcome.value, self._result(ctx, outcome.model, outcome.reply))
        if ctx.budget_refusals and not ctx.attempts:
            raise OverBudget(f"No model fits the budget; {ctx.budget_refusals[0]}")
        raise NoFix(_summary(ctx), tuple(ctx.attempts))

    def _callable(self, ctx: _Call) -> Iterator[tuple[int, ModelSpec]]:
        """The chain's models in order, passing over providers that refused their key meanwhile."""
        for position, model in enumerate(ctx.chain):
            if model.provider in ctx.dead_providers:
                ctx.skipped.append((model.id, ctx.dead_providers[model.provider]))
                continue
            yield position, model

    async def _sequential(self, ctx: _Call, validate: Validator[T]) -> _Success[T] | None:
        for position, model in self._callable(ctx):
            outcome = await self._run_model(ctx, position, model, validate)
            if outcome is not None:
                return outcome
        return None

    async def _hedged(self, ctx: _Call, validate: Validator[T]) -> _Success[T] | None:
        """As _sequential, but once the running model passes its p95, the next one starts too."""
        models = self._callable(ctx)
        pending: dict[asyncio.Task[_Success[T] | None], tuple[float, ModelSpec]] = {}
        hedged = False

        def launch() -> bool:
            following = next(models, None)
            if following is None:
                return False
            position, model = following
            task = asyncio.ensure_future(self._run_model(ctx, position, model, validate))
            pending[task] = (time.monotonic(), model)
            return True

        try:
            while pending or launch():
                timeout = None
                if not hedged and len(pending) == 1:
                    started, model = next(iter(pending.values()))
                    timeout = self._hedge_delay(model, started)
                done, _ = await asyncio.wait(
                    pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    hedged = True
                    launch()
                    continue
                for task in done:
                    del pending[task]
                    outcome = task.result()
                    if outcome is not None:
                        return outcome
        finally:
            await _cancel(pending)
        return None

    def _hedge_delay(self, model: ModelSpec, started: float) -> float | None:
        p95 = self.health.p95(model.id)
        if p95 is None:
            return None
        return max(p95 / 1000, MIN_HEDGE_DELAY_S) - (time.monotonic() - started)

    def _result(self, ctx: _Call, model: ModelSpec, reply: ProviderReply) -> LLMResult:
        return LLMResult(
            text=reply.text,
            model=model.id,
            provider=model.provider,
            cost_usd=sum(a.cost_usd for a in ctx.attempts),
            attempts=tuple(ctx.attempts),
            request_id=ctx.request_id,
            skipped=tuple(ctx.skipped),
        )

    async def _run_model(
        self, ctx: _Call, position: int, model: ModelSpec, validate: Validator[T]
    ) -> _Success[T] | None:
        """Try one model, with retries; never raises but CancelledError.

        The cache first, then the circuit; then each try holds its estimate, starts, sends, and
        either ends a failed send (waiting to retry when nothing else is left) or settles the
        real cost and checks the reply.
        """
        key = cache_key(model.id, ctx.request) if ctx.options.use_cache else None
        hit = await self._cached(ctx, position, model, key, validate)
        if hit is not None:
            return hit
        if not self.health.allow(model.id):
            ctx.skipped.append(
                (model.id, f"{model.id}'s circuit is half-open; a probe is in flight.")
            )
            return None
        for retry in range(1, ctx.options.max_retries + 2):
            tried = await self._hold(ctx, model, position, retry)
            if tried is None:
                return None  # over a budget: the skip is recorded
            self._start(ctx, tried)
            try:
                reply = await self._send(self.providers[model.provider], model, ctx, position)
            except asyncio.CancelledError:
                self._end_cancelled(ctx, tried)
                raise
            except ProviderError as exc:
                self._end_failed(ctx, tried, exc)
                delay = self._retry_delay(ctx, tried, exc)
                if delay is None:
                    return None
                await self._sleep(delay)  # type: ignore[misc]
                continue
            return await self._accept(ctx, tried, reply, key, validate)
        return None  # pragma: no cover - the loop always returns

    async def _cached(
        self,
        ctx: _Call,
        position: int,
        model: ModelSpec,
        key: str | None,
        validate: Validator[T],
    ) -> _Success[T] | None:
        """This model's cached reply to this request, if the caller's check still accepts it."""
        reply = None if key is None else self.cache.get(key)
        if reply is None:
            return None
        try:
            value = await _check(validate, reply, model)
        except AceError:
            return None  # the file moved on since: ask the model again
        self._record(ctx, _Try(model, position, 1, cached=True), OK, 0.0, reply.usage, None)
        return _Success(value, reply, model)

    async def _hold(self, ctx: _Call, model: ModelSpec, position: int, retry: int) -> _Try | None:
        """Reserve the try's estimated cost in this process's budget and, in team mode, in the
        database's too (a user's budgets hold across all their machines). None: a budget refused
        it, and the refusal is recorded as a skip."""
        request, options = ctx.request, ctx.options
        estimate = budgeting.estimate_cost(
            model, ctx.prompt_tokens, self._max_output(model, request)
        )
        try:
            reservation = self.budget.reserve(
                request.user,
                request.tier,
                estimate,
                daily=options.daily_usd,
                monthly=options.monthly_usd,
                model=model.id,
            )
        except OverBudget as exc:
            ctx.refused(model, exc.reason)
            return None
        tried = _Try(model, position, retry, estimate=estimate, reservation=reservation)
        if self.team is None:
            return tried
        tried.shared = uuid.uuid4().hex
        daily, monthly = self.budget.limits(
            request.tier, daily=options.daily_usd, monthly=options.monthly_usd
        )
        try:
            await self.team.reserve(
                tried.shared, request.user, estimate, daily=daily, monthly=monthly, model=model.id
            )
        except OverBudget as exc:
            self.budget.release(reservation)
            ctx.refused(model, exc.reason)
            return None
        except asyncio.CancelledError:
            self.budget.release(reservation)
            self.team.release_soon(tried.shared)
            raise
        return tried

    def _start(self, ctx: _Call, tried: _Try) -> None:
        """The try's in-flight marker (its row, sharing its id, ends it), progress, the clock."""
        request, model = ctx.request, tried.model
        tried.row_id = uuid.uuid4().hex
        if self.ledger is not None:
            self.ledger.begin(
                InFlight(
                    tried.row_id, time.time(), ctx.request_id, request.user,
                    request.task.value, request.tier.value, model.id, model.provider,
                    tried.estimate, tried.position, tried.retry,
                )
            )  # fmt: skip
        self._progress(ctx, model, tried.position, 0)
        tried.t0 = time.perf_counter()

    def _end_cancelled(self, ctx: _Call, tried: _Try) -> None:
        """The caller stopped waiting: the vendor has read the prompt, so its cost is kept."""
        input_cost = tried.model.cost(ctx.prompt_tokens, 0)
        self._release(tried, keep=input_cost)
        self._record(ctx, tried, CANCELLED, input_cost, Usage(ctx.prompt_tokens, 0), None)

    def _end_failed(self, ctx: _Call, tried: _Try, exc: ProviderError) -> None:
        """A failed send: give the estimate back (a timeout keeps the prompt's cost: the vendor
        read it), record the attempt, and after a refused key or an account's spent quota pass
        over every provider on that account for the rest of the call."""
        model = tried.model
        keep = model.cost(ctx.prompt_tokens, 0) if isinstance(exc, Timeout) else 0.0
        self._release(tried, keep=keep)
        usage = Usage(ctx.prompt_tokens if keep else 0, 0)
        self._record(ctx, tried, exc.kind, keep, usage, exc.reason)
        why = _account_down(exc)
        if why is not None:
            for name in self._same_account(model.provider):
                ctx.dead_providers[name] = f"{model.provider} {why} earlier."

    def _retry_delay(self, ctx: _Call, tried: _Try, exc: ProviderError) -> float | None:
        """How long to wait before trying the same model again; None: move on.

        Falling back is the retry: an editor waits for no backoff while another model could
        answer. The same model is retried only when nothing is left after it.
        """
        options = ctx.options
        if not exc.retryable or tried.retry > options.max_retries:
            return None
        if _fallback(ctx, tried.position):
            return None
        return retry_delay(tried.retry, exc.retry_after, limit=options.retry_after_limit_s)

    async def _accept(
        self,
        ctx: _Call,
        tried: _Try,
        reply: ProviderReply,
        key: str | None,
        validate: Validator[T],
    ) -> _Success[T] | None:
        """Settle the reply's real cost, run the caller's check, record the attempt and cache an
        accepted reply; None when the check refused it."""
        model = tried.model
        cost = model.cost(reply.usage.input_tokens, reply.usage.output_tokens)
        if tried.reservation is not None:
            self.budget.settle(tried.reservation, cost)
        try:
            value = await _check(validate, reply, model)
        except asyncio.CancelledError:
            self._record(ctx, tried, CANCELLED, cost, reply.usage, None)
            raise
        except AceError as exc:
            self._record(ctx, tried, exc.kind, cost, reply.usage, exc.reason)
            return None
        self._record(ctx, tried, OK, cost, reply.usage, None)
        if key is not None:
            self.cache.put(key, reply)
        return _Success(value, reply, model)

    def _release(self, tried: _Try, keep: float) -> None:
        if tried.reservation is not None:
            self.budget.release(tried.reservation, keep=keep)

    async def _send(
        self, provider: Provider, model: ModelSpec, ctx: _Call, position: int
    ) -> ProviderReply:
        request, options = ctx.request, ctx.options
        if options.on_progress is None:
            coro = provider.complete(model, request)
        else:
            coro = self._stream(provider, model, ctx, position)
        if options.attempt_timeout_s is None:
            return await coro
        try:
            return await asyncio.wait_for(coro, options.attempt_timeout_s)
        except asyncio.TimeoutError:
            raise Timeout(
                f"{model.id} did not finish within {options.attempt_timeout_s:g} s."
            ) from None

    async def _stream(
        self, provider: Provider, model: ModelSpec, ctx: _Call, position: int
    ) -> ProviderReply:
        parts: list[str] = []
        usage: Usage | None = None
        size = 0
        async for chunk in provider.stream(model, ctx.request):
            parts.append(chunk.text)
            size += len(chunk.text)
            if chunk.usage is not None:
                usage = chunk.usage
            self._progress(ctx, model, position, size // 4)
        text = "".join(parts)
        return ProviderReply(
            text, usage or Usage(ctx.prompt_tokens, len(text) // 4), model.wire_name
        )

    def _progress(self, ctx: _Call, model: ModelSpec, position: int, tokens: int) -> None:
        if ctx.options.on_progress is not None:
            ctx.options.on_progress(Progress(model.id, position + 1, len(ctx.chain), tokens))

    def _record(
        self,
        ctx: _Call,
        tried: _Try,
        outcome: str,
        cost: float,
        usage: Usage,
        reason: str | None,
    ) -> None:
        model, position, retry = tried.model, tried.position, tried.retry
        latency = round((time.perf_counter() - tried.t0) * 1000, 2) if tried.t0 else 0.0
        attempt = Attempt(
            model=model.id,
            provider=model.provider,
            outcome=outcome,
            latency_ms=latency,
            cost_usd=cost,
            reason=reason,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            chain_position=position,
            retry=retry,
            cached=tried.cached,
        )
        ctx.attempts.append(attempt)
        if not tried.cached:  # no call was made: nothing learnt about the model
            self.health.record(model.id, outcome, latency)
        if self.ledger is not None:
            request = ctx.request
            self.ledger.record_nowait(
                LedgerRow(
                    ts=time.time(),
                    request_id=ctx.request_id,
                    user=request.user,
                    task=request.task.value,
                    tier=request.tier.value,
                    model=model.id,
                    provider=model.provider,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=cost,
                    latency_ms=latency,
                    outcome=CACHED if tried.cached else outcome,
                    chain_position=position,
                    attempt=retry,
                    reservation_id=tried.shared,
                    **({} if tried.row_id is None else {"row_id": tried.row_id}),
                )
            )


async def off_loop(work: Callable[[], T], what: str, then: str) -> T:
    """`work()` in a worker thread, so that the event loop goes on answering other requests and
    `$/cancelRequest` meanwhile; past caps.CHECK_TIMEOUT_S, CheckTimeout("<what> took over N s;
    <then>."). A thread cannot be stopped: it finishes in the background, its result dropped."""
    limit = caps.CHECK_TIMEOUT_S
    try:
        return await asyncio.wait_for(asyncio.to_thread(work), limit)
    except asyncio.TimeoutError:  # not yet the built-in TimeoutError on Python 3.10
        raise CheckTimeout(f"{what} took over {limit:g} s; {then}.") from None


async def _check(validate: Validator[T], reply: ProviderReply, model: ModelSpec) -> T:
    """The caller's check of a reply (the patch gate), off the event loop."""
    return await off_loop(
        functools.partial(validate, reply), f"Checking {model.id}'s reply", "ACE refused it"
    )


def _account_down(exc: ProviderError) -> str | None:
    """Why every model behind the failed model's key is out for this call (a refused key, an
    account's spent quota), or None when the failure is the model's alone."""
    if isinstance(exc, AuthError):
        return "refused its key"
    if isinstance(exc, QuotaExhausted) and not exc.per_model:
        return "has no quota left"
    return None


def _fallback(ctx: _Call, position: int) -> bool:
    """Is there a model after `position` in the chain that may still be tried?"""
    return any(m.provider not in ctx.dead_providers for m in ctx.chain[position + 1 :])


async def _cancel(pending: Mapping[asyncio.Task[_Success[T] | None], object]) -> None:
    tasks = list(pending)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    if isinstance(pending, dict):
        pending.clear()


def _summary(ctx: _Call) -> str:
    """One sentence for the user: what each model did, and why the first one failed.

    The first failure is the informative one: later models are fallbacks (the last is often the
    offline fixer, whose "set an API key" hint would mislead when keys are set).
    """
    if not ctx.attempts:
        reason = ctx.skipped[-1][1] if ctx.skipped else "no model could be called."
        return f"No model was tried: {reason}"
    first = ctx.attempts[0]
    if len(ctx.attempts) == 1:
        return first.reason or f"{first.model} failed ({first.outcome})."
    tried = ", ".join(
        dict.fromkeys(f"{a.model} {a.outcome.replace('_', ' ')}" for a in ctx.attempts)
    )
    why = (first.reason or first.outcome).rstrip(".")
    return f"No model produced a valid answer ({tried}); {first.model}: {why}."


def default_orchestrator() -> Orchestrator:
    """The offline set-up, synchronous, without ledger: the registry and the `local` provider."""
    from ace_lsp.orchestrator.providers.local import LocalProvider
    from ace_lsp.orchestrator.registry import load_default

    return Orchestrator(load_default(), {"local": LocalProvider()})


async def instrumented_call(
    task: TaskType,
    tier: Tier,
    user: str,
    messages: Sequence[Message],
    *,
    orchestrator: Orchestrator | None = None,
    options: CallOptions | None = None,
    validate: Callable[[ProviderReply], object] | None = None,
    max_output_tokens: int = 2048,
    temperature: float = 0.0,
) -> LLMResult:
    """One model call, routed, budgeted, logged and retried.

    The models for (`task`, `tier`) are tried in order until one answers (and its reply passes
    `validate`, when given: it raises an AceError to refuse a reply); `user`'s budgets are
    checked and charged, every attempt is a ledger row, and the result lists them all. Raises
    OverBudget when no model fits a budget, NoFix when every model failed.

    `orchestrator` None opens one from the user's config for this call alone (and closes it);
    a long-lived caller opens one with `Orchestrator.open()` and passes it, so that clients,
    the ledger and health figures are kept between calls. For the validated value rather than
    the reply's text, call `Orchestrator.call` directly.
    """
    request = LLMRequest(
        task,
        tuple(messages),
        tier=tier,
        user=user,
        max_output_tokens=max_output_tokens,
        temperature=temperature,
    )
    check: Validator[object] = validate or _accept_any
    if orchestrator is not None:
        return (await orchestrator.call(request, check, options)).result
    opened = await Orchestrator.open()
    try:
        return (await opened.call(request, check, options)).result
    finally:
        await opened.aclose()


def _accept_any(reply: ProviderReply) -> object:
    return reply.text
