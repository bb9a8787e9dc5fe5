"""Routing: the seed's tier and strategy tables as chains, and what the router skips and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.registry import ModelSpec, Registry, load, load_default
from ace_lsp.orchestrator.routing import (
    CIRCUIT_OPEN_REASON,
    Route,
    RoutingTable,
    Skip,
    candidates,
    load_routing,
    route,
)
from ace_lsp.orchestrator.types import TaskType, Tier

T = TaskType
FREE, PRO, ULTIMATE = Tier.FREE, Tier.PRO, Tier.ULTIMATE

SONNET, OPUS, HAIKU = "claude-3-5-sonnet", "claude-3-opus", "claude-3-haiku"
AUTO_FIX_TAIL = (SONNET, "codestral", "gpt-4o", "gpt-4o-mini", "local")
REVIEW = (SONNET, "codestral", "gpt-4o", OPUS)
TALK = (HAIKU, "mistral-small", "gpt-4o-mini")
MULTIMODAL = (SONNET, "gpt-4o", "gemini-1.5-pro", "gemini-2.0-flash", "gpt-4o-mini")
CODE_GEN = ("devstral-small", "codestral", "devstral-medium", SONNET, "gpt-4o")
REFACTOR = ("devstral-small", "devstral-medium", "codestral", SONNET, "gpt-4o")
ANALYSIS = (OPUS, SONNET, "gpt-4o", "gemini-1.5-pro", "mistral-large")
LONG = ("gemini-1.5-flash", "gemini-2.0-flash", "gemini-1.5-pro", SONNET)

# (task, tier) -> the chain when every provider can be called and nothing is over budget:
# the tier's primaries (seed "Routing Logic"), then the strategy's primary and fallbacks.
EXPECTED: dict[tuple[TaskType, Tier], tuple[str, ...]] = {
    (T.AUTO_FIX, FREE): ("devstral-small", *AUTO_FIX_TAIL),
    (T.AUTO_FIX, PRO): ("devstral-small", *AUTO_FIX_TAIL),
    (T.AUTO_FIX, ULTIMATE): ("devstral-small", *AUTO_FIX_TAIL),  # devstral-small or sonnet
    (T.CODE_REVIEW, FREE): REVIEW,
    (T.CODE_REVIEW, PRO): REVIEW,  # Pro: Code Review -> claude-3.5-sonnet
    (T.CODE_REVIEW, ULTIMATE): (SONNET, OPUS, "codestral", "gpt-4o"),  # sonnet or opus
    (T.CHAT, FREE): TALK,
    (T.CHAT, PRO): TALK,
    (T.CHAT, ULTIMATE): (SONNET, *TALK),  # Ultimate: Chat -> claude-3.5-sonnet
    (T.PLANNING, FREE): ("mistral-small", HAIKU, "gpt-4o-mini"),  # mistral-small or haiku
    (T.PLANNING, PRO): TALK,
    (T.PLANNING, ULTIMATE): TALK,
    (T.MULTIMODAL, FREE): MULTIMODAL,
    (T.MULTIMODAL, PRO): MULTIMODAL,
    (T.MULTIMODAL, ULTIMATE): MULTIMODAL,
    (T.CODE_GEN, FREE): CODE_GEN,
    (T.CODE_GEN, PRO): CODE_GEN,
    (T.CODE_GEN, ULTIMATE): CODE_GEN,
    (T.REFACTOR, FREE): REFACTOR,
    (T.REFACTOR, PRO): REFACTOR,
    (T.REFACTOR, ULTIMATE): REFACTOR,
    (T.COMPLEX_ANALYSIS, FREE): ANALYSIS,
    (T.COMPLEX_ANALYSIS, PRO): ANALYSIS,
    (T.COMPLEX_ANALYSIS, ULTIMATE): ANALYSIS,  # Ultimate: Complex Analysis -> claude-3-opus
    (T.LONG_CONTEXT, FREE): LONG,
    (T.LONG_CONTEXT, PRO): LONG,
    (T.LONG_CONTEXT, ULTIMATE): LONG,
}

ANTHROPIC_KEY = "anthropic needs an API key: set ANTHROPIC_API_KEY."


def never_over(model: ModelSpec) -> str | None:
    return None


def go(
    task: TaskType,
    tier: Tier,
    *,
    registry: Registry | None = None,
    table: RoutingTable | None = None,
    unavailable: Mapping[str, str] | None = None,
    circuits: Mapping[str, str] | None = None,
    over_budget: Callable[[ModelSpec], str | None] = never_over,
    preferred: str | None = None,
    prompt_tokens: int = 0,
    reply_tokens: int = 0,
) -> Route:
    return route(
        task,
        tier,
        table=table or load_routing(),
        registry=registry or load_default(),
        unavailable=unavailable or {},
        circuits=circuits or {},
        over_budget=over_budget,
        preferred=preferred,
        prompt_tokens=prompt_tokens,
        reply_tokens=reply_tokens,
    )


def test_every_task_and_tier_is_covered() -> None:
    assert set(EXPECTED) == {(task, tier) for task in TaskType for tier in Tier}


@pytest.mark.parametrize(
    ("task", "tier", "chain"),
    [
        pytest.param(task, tier, chain, id=f"{task.value}-{tier.value}")
        for (task, tier), chain in EXPECTED.items()
    ],
)
def test_chain_per_tier_and_task(task: TaskType, tier: Tier, chain: tuple[str, ...]) -> None:
    assert candidates(load_routing(), task, tier) == chain
    routed = go(task, tier)
    assert routed.ids == chain
    assert routed.skipped == ()


@pytest.mark.parametrize(
    ("task", "primary", "fallbacks"),
    [
        # the seed's "Model Strategy" table, in its own names: each row is the start of the chain
        pytest.param(T.AUTO_FIX, "DevStral", ["Claude Sonnet", "Codestral", "GPT-4o"], id="fix"),
        pytest.param(
            T.CODE_REVIEW, "Claude Sonnet", ["Codestral", "GPT-4o", "Claude Opus"], id="review"
        ),
        pytest.param(T.CHAT, "Claude Haiku", ["Mistral Small", "GPT-4o-mini"], id="chat"),
        pytest.param(T.PLANNING, "Claude Haiku", ["Mistral Small", "GPT-4o-mini"], id="planning"),
        pytest.param(T.MULTIMODAL, "Claude Sonnet", ["GPT-4o", "Gemini Pro"], id="multimodal"),
    ],
)
def test_strategy_rows_follow_the_seed(task: TaskType, primary: str, fallbacks: list[str]) -> None:
    registry = load_default()
    row = load_routing().strategy[task]
    seed = tuple(registry.get(name).id for name in (primary, *fallbacks))
    assert row.models[: len(seed)] == seed


@pytest.mark.parametrize("tier", list(Tier), ids=[t.value for t in Tier])
def test_local_ends_every_auto_fix_chain_and_no_other(tier: Tier) -> None:
    assert go(T.AUTO_FIX, tier).ids[-1] == "local"
    for task in TaskType:
        if task is not T.AUTO_FIX:
            assert "local" not in go(task, tier).ids


@pytest.mark.parametrize("tier", list(Tier), ids=[t.value for t in Tier])
def test_seed_automatic_fallback_without_an_anthropic_key(tier: Tier) -> None:
    """The seed: devstral-small-2505 -> codestral-latest -> gpt-4o -> gpt-4o-mini."""
    routed = go(T.AUTO_FIX, tier, unavailable={"anthropic": ANTHROPIC_KEY})
    wires = [m.wire_name for m in routed.chain]
    assert wires == ["devstral-small-2505", "codestral-latest", "gpt-4o", "gpt-4o-mini", "ruff"]
    assert routed.skipped == (Skip(SONNET, ANTHROPIC_KEY),)


@pytest.mark.parametrize(
    ("task", "tier", "unavailable", "chain", "skipped"),
    [
        pytest.param(
            T.CHAT,
            PRO,
            {"anthropic": ANTHROPIC_KEY},
            ("mistral-small", "gpt-4o-mini"),
            (HAIKU,),
            id="no-anthropic-key",
        ),
        pytest.param(
            T.AUTO_FIX,
            FREE,
            {
                "devstral": "devstral needs an API key: set MISTRAL_API_KEY.",
                "anthropic": ANTHROPIC_KEY,
                "openai": "openai needs an API key: set OPENAI_API_KEY.",
            },
            ("local",),
            ("devstral-small", SONNET, "codestral", "gpt-4o", "gpt-4o-mini"),
            id="no-key-at-all-leaves-local",
        ),
        pytest.param(
            T.MULTIMODAL,
            ULTIMATE,
            {"gemini": "gemini needs an API key: set GOOGLE_AI_API_KEY or GEMINI_API_KEY."},
            (SONNET, "gpt-4o", "gpt-4o-mini"),
            ("gemini-1.5-pro", "gemini-2.0-flash"),
            id="no-gemini-then-gpt-4o-mini",
        ),
    ],
)
def test_unavailable_providers_are_skipped_with_their_reason(
    task: TaskType,
    tier: Tier,
    unavailable: dict[str, str],
    chain: tuple[str, ...],
    skipped: tuple[str, ...],
) -> None:
    routed = go(task, tier, unavailable=unavailable)
    assert routed.ids == chain
    assert tuple(s.model for s in routed.skipped) == skipped
    registry = load_default()
    for skip in routed.skipped:
        assert skip.reason == unavailable[registry.get(skip.model).provider]


@pytest.mark.parametrize(
    ("circuits", "chain", "skipped"),
    [
        pytest.param(
            {"claude-3-haiku": "open"}, ("mistral-small", "gpt-4o-mini"), (HAIKU,), id="open"
        ),
        pytest.param({"claude-3-haiku": "half_open"}, TALK, (), id="half-open-kept"),
        pytest.param({"claude-3-haiku": "closed"}, TALK, (), id="closed"),
        pytest.param(
            {"claude-3-haiku": "open", "gpt-4o-mini": "open", "mistral-small": "half_open"},
            ("mistral-small",),
            (HAIKU, "gpt-4o-mini"),
            id="two-open",
        ),
    ],
)
def test_circuits(
    circuits: dict[str, str], chain: tuple[str, ...], skipped: tuple[str, ...]
) -> None:
    routed = go(T.CHAT, PRO, circuits=circuits)
    assert routed.ids == chain
    assert tuple(s.model for s in routed.skipped) == skipped
    assert all(s.reason == CIRCUIT_OPEN_REASON for s in routed.skipped)


def test_open_circuit_on_local_skips_it() -> None:
    assert "local" not in go(T.AUTO_FIX, FREE, circuits={"local": "open"}).ids


def cap(
    usd: float, tokens_in: int = 3000, tokens_out: int = 2000
) -> Callable[[ModelSpec], str | None]:
    def over(model: ModelSpec) -> str | None:
        cost = model.cost(tokens_in, tokens_out)
        if cost > usd:
            return f"The estimate ${cost:.4f} exceeds the ${usd:.2f} per-request cap."
        return None

    return over


@pytest.mark.parametrize(
    ("task", "tier", "usd", "chain"),
    [
        # 3,000 tokens in, 2,000 out: codestral $0.0015, gpt-4o $0.0125, sonnet $0.015, opus $0.075,
        # gemini-1.5-pro $0.01375, mistral-large $0.018
        pytest.param(T.CODE_REVIEW, FREE, 0.01, ("codestral",), id="free-review"),
        pytest.param(T.CODE_REVIEW, PRO, 0.10, REVIEW, id="pro-review"),
        pytest.param(T.COMPLEX_ANALYSIS, FREE, 0.01, (), id="free-analysis-nothing-fits"),
        pytest.param(
            T.COMPLEX_ANALYSIS, PRO, 0.016, (SONNET, "gpt-4o", "gemini-1.5-pro"), id="pro-analysis"
        ),
        pytest.param(T.AUTO_FIX, FREE, 0.0, ("local",), id="zero-cap-keeps-local"),
    ],
)
def test_over_budget_models_are_skipped(
    task: TaskType, tier: Tier, usd: float, chain: tuple[str, ...]
) -> None:
    routed = go(task, tier, over_budget=cap(usd))
    assert routed.ids == chain
    all_ids = set(EXPECTED[(task, tier)])
    assert {s.model for s in routed.skipped} == all_ids - set(chain)
    assert all(s.reason.startswith("The estimate $") for s in routed.skipped)


def test_local_is_never_asked_about_budget() -> None:
    asked: list[str] = []

    def over(model: ModelSpec) -> str | None:
        asked.append(model.id)
        return "Over the cap."

    routed = go(T.AUTO_FIX, FREE, over_budget=over)
    assert routed.ids == ("local",)
    assert "local" not in asked
    assert asked == list(EXPECTED[(T.AUTO_FIX, FREE)][:-1])


def test_budget_is_not_asked_for_models_already_skipped() -> None:
    asked: list[str] = []

    def over(model: ModelSpec) -> str | None:
        asked.append(model.id)
        return None

    go(
        T.CHAT,
        PRO,
        unavailable={"anthropic": ANTHROPIC_KEY},
        circuits={"gpt-4o-mini": "open"},
        over_budget=over,
    )
    assert asked == ["mistral-small"]


@pytest.mark.parametrize(
    ("preferred", "chain", "skipped"),
    [
        pytest.param("gpt-4o", ("gpt-4o", *TALK), (), id="not-in-the-chain-goes-first"),
        pytest.param("mistral-small", ("mistral-small", HAIKU, "gpt-4o-mini"), (), id="moved-up"),
        pytest.param("Claude Sonnet", (SONNET, *TALK), (), id="by-alias"),
        pytest.param(HAIKU, TALK, (), id="already-first"),
        pytest.param("", TALK, (), id="empty-is-none"),
        pytest.param(OPUS, TALK, (OPUS,), id="unroutable-is-skipped"),
        pytest.param("gpt-9", TALK, ("gpt-9",), id="unknown-is-skipped"),
    ],
)
def test_preferred_model(preferred: str, chain: tuple[str, ...], skipped: tuple[str, ...]) -> None:
    routed = go(T.CHAT, PRO, preferred=preferred, circuits={OPUS: "open"})
    assert routed.ids == chain
    assert tuple(s.model for s in routed.skipped) == skipped


def test_unknown_preferred_model_lists_known_ones() -> None:
    (skip,) = go(T.CHAT, PRO, preferred="gpt-9").skipped
    assert "gpt-9" in skip.reason and "claude-3-haiku" in skip.reason
    assert skip.reason.endswith(".")


def test_model_removed_from_the_registry_is_skipped_not_fatal() -> None:
    registry = load([{"codestral": {"enabled": False}}])
    routed = go(T.CODE_REVIEW, PRO, registry=registry)
    assert routed.ids == (SONNET, "gpt-4o", OPUS)
    (skip,) = routed.skipped
    assert skip.model == "codestral"
    assert "not in the model registry" in skip.reason


def test_table_names_are_resolved_through_aliases_and_deduplicated() -> None:
    table = load_routing(
        """
        [tiers.pro]
        CODE_REVIEW = ["claude-3.5-sonnet", "Claude Opus", "ghost", "GHOST"]

        [strategy.CODE_REVIEW]
        primary = "claude-3-5-sonnet"
        fallbacks = ["claude-opus", "codestral-latest", "ghost"]
        """
    )
    assert candidates(table, T.CODE_REVIEW, PRO) == (
        "claude-3.5-sonnet",
        "Claude Opus",
        "ghost",
        "claude-3-5-sonnet",  # same model, other name: the router dedupes it after resolving
        "codestral-latest",  # "claude-opus" is "Claude Opus" again
    )
    routed = go(T.CODE_REVIEW, PRO, table=table)
    assert routed.ids == (SONNET, OPUS, "codestral")
    assert routed.skipped == (
        Skip(
            "ghost",
            "The routing table names 'ghost', which is not in the model registry "
            "(removed, or misspelled).",
        ),
    )
    assert candidates(table, T.CHAT, PRO) == ()
    assert go(T.CHAT, PRO, table=table) == Route((), ())


@pytest.mark.parametrize(
    ("needs", "chain"),
    [
        pytest.param(0, LONG, id="unchecked"),
        pytest.param(150_000, LONG, id="fits-all"),
        pytest.param(500_000, LONG[:3], id="too-big-for-sonnet"),
        pytest.param(1_500_000, ("gemini-1.5-pro",), id="only-pro"),
        pytest.param(3_000_000, (), id="nothing"),
    ],
)
def test_context_window(needs: int, chain: tuple[str, ...]) -> None:
    routed = go(T.LONG_CONTEXT, ULTIMATE, prompt_tokens=needs)
    assert routed.ids == chain
    assert all("context window" in s.reason for s in routed.skipped)


@pytest.mark.parametrize(
    ("prompt", "reply", "kept"),
    [
        pytest.param(190_000, 4_096, (OPUS, SONNET), id="prompt-and-reply-fit"),
        pytest.param(197_000, 4_096, (), id="no-room-for-the-reply"),
        # the allowance counts within each model's max_output (opus 4,096, sonnet 8,192)
        pytest.param(193_000, 100_000, (OPUS,), id="allowance-within-max-output"),
    ],
)
def test_context_window_keeps_room_for_the_reply(
    prompt: int, reply: int, kept: tuple[str, ...]
) -> None:
    routed = go(T.COMPLEX_ANALYSIS, ULTIMATE, prompt_tokens=prompt, reply_tokens=reply)
    assert tuple(m for m in routed.ids if m in (OPUS, SONNET)) == kept
    assert {s.model for s in routed.skipped} >= {"gpt-4o", "mistral-large"}  # 128k, 131k


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("[tiers.gold]\nCHAT = ['gpt-4o']", "unknown tier 'gold'", id="tier"),
        pytest.param("[tiers.pro]\nDANCE = ['gpt-4o']", "unknown task 'DANCE'", id="task"),
        pytest.param("[tiers.pro]\nCHAT = 'gpt-4o'", "list of model names", id="not-a-list"),
        pytest.param("[tiers.pro]\nCHAT = ['']", "list of model names", id="empty-name"),
        pytest.param("[strategy.CHAT]\nfallbacks = ['gpt-4o']", "needs `primary`", id="primary"),
        pytest.param("[strategy.CHAT]\nprimary = 'a'\nfallback = []", "`fallback`", id="key"),
        pytest.param("[strategy.SING]\nprimary = 'a'", "unknown task 'SING'", id="strategy-task"),
        pytest.param("[strategy]\nCHAT = 'a'", "must be a table", id="row-not-table"),
        pytest.param("[routes]\nx = 1", "unknown section [routes]", id="section"),
        pytest.param("[tiers\n", "not valid TOML", id="toml"),
    ],
)
def test_bad_routing_tables(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        load_routing(text)
    assert fragment in str(err.value)


def test_packaged_table_is_loaded_once_and_covers_every_task() -> None:
    table = load_routing()
    assert table is load_routing()
    assert set(table.strategy) == set(TaskType)
    assert set(table.tiers) == set(Tier)


def test_route_leaves_its_inputs_alone() -> None:
    unavailable = {"anthropic": ANTHROPIC_KEY}
    circuits = {"gpt-4o": "open"}
    go(T.AUTO_FIX, PRO, unavailable=unavailable, circuits=circuits, preferred="gpt-4o-mini")
    assert unavailable == {"anthropic": ANTHROPIC_KEY}
    assert circuits == {"gpt-4o": "open"}
    assert candidates(load_routing(), T.AUTO_FIX, PRO) == EXPECTED[(T.AUTO_FIX, PRO)]
