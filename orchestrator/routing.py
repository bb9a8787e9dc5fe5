"""Routing: (task, tier, what can be called now, health, budget) -> the ordered chain of models.

The table (`data/routing.toml`) gives, per tier and task, the tier's primary models, and per task
a primary with fallbacks (both tables: docs/architecture.md, "Routing"). The
candidates for (task, tier) are the tier's primaries, then the strategy's primary and fallbacks,
de-duplicated, in that order; `RoutingTable` computes them once, when it is loaded.

`route()` then walks the candidates (a user's preferred model first) and keeps each model that can
be called now; every other one is recorded as a `Skip` with a one-sentence reason: a name the
registry lacks (user registries can remove models), a provider that cannot be called (its own
reason, e.g. a missing key), an open circuit, a prompt that does not fit, a cost over a cap.
A half-open circuit is kept: the call is its probe. The `local` provider is never over budget.

Everything here is pure: no I/O, no clock. The caller gathers provider availability, circuit
states and the budget check, and passes them in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any

from ace_lsp.orchestrator.compat import tomllib
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.health import OPEN
from ace_lsp.orchestrator.registry import LOCAL, ModelSpec, Registry
from ace_lsp.orchestrator.types import TaskType, Tier

CIRCUIT_OPEN_REASON = "Circuit open after repeated failures; it will be retried after a cool-down."


@dataclass(frozen=True)
class Skip:
    """A candidate the router left out, and why (one sentence)."""

    model: str  # the model id, or the name as written when the registry does not know it
    reason: str


@dataclass(frozen=True)
class Route:
    """The models to try, in order, and the candidates left out."""

    chain: tuple[ModelSpec, ...]
    skipped: tuple[Skip, ...] = ()

    @property
    def ids(self) -> tuple[str, ...]:
        """The chain's model ids, in order."""
        return tuple(m.id for m in self.chain)


@dataclass(frozen=True)
class Strategy:
    """One row of the fallback-chain table (docs/architecture.md, "Routing")."""

    primary: str
    fallbacks: tuple[str, ...] = ()

    @property
    def models(self) -> tuple[str, ...]:
        """The primary model, then its fallbacks."""
        return (self.primary, *self.fallbacks)


def _name_key(name: str) -> str:
    """Names are compared as the registry compares them: case-insensitive, spaces as '-'."""
    return "-".join(name.strip().lower().split())


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        key = _name_key(name)
        if key not in seen:
            seen.add(key)
            out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class RoutingTable:
    """The parsed routing table, with every (task, tier) candidate list computed up front."""

    tiers: Mapping[Tier, Mapping[TaskType, tuple[str, ...]]]
    strategy: Mapping[TaskType, Strategy]
    chains: Mapping[tuple[TaskType, Tier], tuple[str, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        chains: dict[tuple[TaskType, Tier], tuple[str, ...]] = {}
        for task in TaskType:
            strategy = self.strategy.get(task)
            for tier in Tier:
                primaries = self.tiers.get(tier, {}).get(task, ())
                chains[(task, tier)] = _dedupe((*primaries, *(strategy.models if strategy else ())))
        object.__setattr__(self, "chains", MappingProxyType(chains))

    def models(self) -> tuple[str, ...]:
        """Every model name the table mentions, once, in the order first met."""
        return _dedupe(name for chain in self.chains.values() for name in chain)


# --- loading ------------------------------------------------------------------------------------


def _task(name: Any, where: str) -> TaskType:
    try:
        return TaskType(str(name).upper())
    except ValueError:
        known = ", ".join(t.value for t in TaskType)
        raise InputError(
            f"The routing table names an unknown task '{name}' in {where}; "
            f"known tasks are: {known}."
        ) from None


def _model_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(
            f"The routing table's {where} must be a list of model names, not {value!r}."
        )
    return tuple(v.strip() for v in value)


def _table(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"The routing table's {where} must be a table, not {value!r}.")
    return value


def _parse(data: Mapping[str, Any]) -> RoutingTable:
    unknown = [k for k in data if k not in ("tiers", "strategy")]
    if unknown:
        raise InputError(
            f"The routing table has an unknown section [{unknown[0]}]; it knows [tiers] and "
            "[strategy]."
        )
    tiers: dict[Tier, Mapping[TaskType, tuple[str, ...]]] = {}
    for tier_name, body in _table(data.get("tiers", {}), "[tiers]").items():
        try:
            tier = Tier(str(tier_name).lower())
        except ValueError:
            known = ", ".join(t.value for t in Tier)
            raise InputError(
                f"The routing table names an unknown tier '{tier_name}'; known tiers are: {known}."
            ) from None
        where = f"[tiers.{tier_name}]"
        tiers[tier] = MappingProxyType(
            {
                _task(task, where): _model_list(models, f"{where} {task}")
                for task, models in _table(body, where).items()
            }
        )
    strategy: dict[TaskType, Strategy] = {}
    for task_name, body in _table(data.get("strategy", {}), "[strategy]").items():
        where = f"[strategy.{task_name}]"
        task = _task(task_name, "[strategy]")
        row = _table(body, where)
        extra = [k for k in row if k not in ("primary", "fallbacks")]
        if extra:
            raise InputError(
                f"The routing table's {where} has an unknown key `{extra[0]}`; it takes "
                "`primary` and `fallbacks`."
            )
        primary = row.get("primary")
        if not isinstance(primary, str) or not primary.strip():
            raise InputError(f"The routing table's {where} needs `primary`, a model name.")
        fallbacks = _model_list(row.get("fallbacks", []), f"{where} fallbacks")
        strategy[task] = Strategy(primary.strip(), fallbacks)
    return RoutingTable(MappingProxyType(tiers), MappingProxyType(strategy))


@functools.lru_cache(maxsize=1)
def _packaged() -> RoutingTable:
    text = resources.files("ace_lsp.orchestrator.data").joinpath("routing.toml").read_text("utf-8")
    return _loads(text, "orchestrator/data/routing.toml")


def _loads(text: str, where: str) -> RoutingTable:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"The routing table {where} is not valid TOML ({exc}).") from None
    return _parse(data)


def load_routing(text: str | None = None) -> RoutingTable:
    """The routing table from TOML `text`; None: the packaged `data/routing.toml` (read once)."""
    return _packaged() if text is None else _loads(text, "given")


# --- routing --------------------------------------------------------------------------------------


def candidates(table: RoutingTable, task: TaskType, tier: Tier) -> tuple[str, ...]:
    """The model names to consider for (task, tier), before any filtering."""
    return table.chains.get((task, tier), ())


def too_small(spec: ModelSpec, prompt_tokens: int, reply_tokens: int) -> str | None:
    """Why `spec`'s context window cannot hold the prompt and room for the reply (the request's
    allowance, within the model's `max_output`), or None. 0 prompt tokens: not checked."""
    if prompt_tokens <= 0:
        return None
    needs = prompt_tokens + min(reply_tokens, spec.max_output)
    if needs <= spec.context_window:
        return None
    return (
        f"Its context window ({spec.context_window:,} tokens) is too small for this request "
        f"({needs:,} tokens with room for the reply)."
    )


def _why_not(
    spec: ModelSpec,
    unavailable: Mapping[str, str],
    circuits: Mapping[str, str],
    over_budget: Callable[[ModelSpec], str | None],
    prompt_tokens: int,
    reply_tokens: int,
) -> str | None:
    reason = unavailable.get(spec.provider)
    if reason is not None:
        return reason
    if circuits.get(spec.id) == OPEN:
        return CIRCUIT_OPEN_REASON
    reason = too_small(spec, prompt_tokens, reply_tokens)
    if reason is not None:
        return reason
    if spec.provider == LOCAL:
        return None
    return over_budget(spec)


def route(
    task: TaskType,
    tier: Tier,
    *,
    table: RoutingTable,
    registry: Registry,
    unavailable: Mapping[str, str],
    circuits: Mapping[str, str],
    over_budget: Callable[[ModelSpec], str | None],
    preferred: str | None = None,
    prompt_tokens: int = 0,
    reply_tokens: int = 0,
) -> Route:
    """The models to try for (task, tier), in order, and every candidate left out with its reason.

    - `unavailable`: provider instance -> why it cannot be called (e.g. no key). A provider not
      in it is taken as callable, so a caller lists there every provider it has no client for.
    - `circuits`: model id -> its circuit state (health.py; missing: closed); OPEN skips.
    - `over_budget(model)`: why this model's estimated cost breaks a cap, or None. Not asked for
      the `local` provider, which costs nothing.
    - `preferred`: a user's model override (id or alias), tried first when it can be called.
    - `prompt_tokens`, `reply_tokens`: the prompt's (estimated) size and the reply allowance it
      asks for; a model whose context window cannot hold both is skipped. 0 prompt tokens: not
      checked.
    """
    todo = list(candidates(table, task, tier))
    if preferred and preferred.strip():
        todo.insert(0, preferred.strip())
        from_table = 1
    else:
        from_table = 0
    chain: list[ModelSpec] = []
    skipped: list[Skip] = []
    seen: set[str] = set()  # model ids
    unknown: set[str] = set()  # names the registry lacks, compared as names are
    for i, name in enumerate(todo):
        spec = registry.find(name)
        if spec is None:
            if _name_key(name) in unknown:
                continue
            unknown.add(_name_key(name))
            if i < from_table:
                reason = (
                    f"The preferred model '{name}' is not in the model registry; known models "
                    f"are: {', '.join(registry.ids())}."
                )
            else:
                reason = (
                    f"The routing table names '{name}', which is not in the model registry "
                    "(removed, or misspelled)."
                )
            skipped.append(Skip(name, reason))
            continue
        if spec.id in seen:
            continue
        seen.add(spec.id)
        why = _why_not(spec, unavailable, circuits, over_budget, prompt_tokens, reply_tokens)
        if why is None:
            chain.append(spec)
        else:
            skipped.append(Skip(spec.id, why))
    return Route(tuple(chain), tuple(skipped))
