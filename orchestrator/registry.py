"""The model registry: every model ACE can call, its provider, prices and limits, from TOML data.

The packaged table (`data/models.toml`) holds the models of docs/architecture.md ("Models"); a
user's `[models]` tables (see `AceConfig.model_tables`) are merged over it in order. A user table
for a known model (by id or alias) updates only the keys it gives, a new id adds a model, and
`enabled = false` removes one.

Prices may be written per 1M or per 1K tokens (`price_per_1m`, `input_per_1m`, `output_per_1m`,
`price_per_1k`, `input_per_1k`, `output_per_1k`); a `ModelSpec` keeps USD per 1K tokens. Within one
table an input or output figure wins over the shared `price_*` one, and a later table's figure for
one side replaces only that side.

Names resolve case-insensitively, with runs of spaces read as one "-": a model's id, its aliases,
then its wire name (wire names may repeat across models: an id or alias always wins).
Every problem is an `InputError` whose message is one sentence naming the model and the key.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ace_lsp.orchestrator.compat import tomllib
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.types import TaskType

LOCAL = "local"  # the embedded provider instance: no key, no cost

# price key -> (sides it sets, divisor to USD per 1K tokens)
_PRICE_KEYS: Mapping[str, tuple[tuple[str, ...], float]] = {
    "price_per_1k": (("input_per_1k", "output_per_1k"), 1.0),
    "price_per_1m": (("input_per_1k", "output_per_1k"), 1000.0),
    "input_per_1k": (("input_per_1k",), 1.0),
    "input_per_1m": (("input_per_1k",), 1000.0),
    "output_per_1k": (("output_per_1k",), 1.0),
    "output_per_1m": (("output_per_1k",), 1000.0),
}
_OTHER_KEYS = (
    "provider",
    "wire_name",
    "context_window",
    "max_output",
    "tasks",
    "aliases",
    "enabled",
)
KEYS: tuple[str, ...] = (*_OTHER_KEYS[:2], *_PRICE_KEYS, *_OTHER_KEYS[2:])
_TASKS = {t.value: t.value for t in TaskType}


@dataclass(frozen=True)
class ModelSpec:
    """One model ACE can call: provider, wire name, prices, limits and the tasks it suits."""

    id: str
    provider: str  # provider instance name (config.py): openai, mistral, devstral, …, or a user's
    wire_name: str  # the model name the vendor's API expects
    input_per_1k: float  # USD per 1,000 input tokens
    output_per_1k: float  # USD per 1,000 output tokens
    context_window: int  # tokens in: prompt and reply together
    max_output: int  # most tokens in one reply
    tasks: tuple[str, ...] = ()  # TaskType values the model is good at
    aliases: tuple[str, ...] = ()

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for this many tokens."""
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000


def _key(name: str) -> str:
    """The form names are compared in: lower case, runs of whitespace as one '-'."""
    return "-".join(name.strip().lower().split())


class Registry:
    """Models by id, found by id, alias or wire name."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._models: dict[str, ModelSpec] = {}
        self._names: dict[str, str] = {}
        specs = list(models)
        for spec in specs:
            if spec.id in self._models:
                raise InputError(f"Model '{spec.id}' is defined twice in the registry.")
            self._models[spec.id] = spec
        for spec in specs:
            for name in (spec.id, *spec.aliases):
                owner = self._names.setdefault(_key(name), spec.id)
                if owner != spec.id:
                    raise InputError(
                        f"Model '{spec.id}' has the name '{name}' that model '{owner}' already "
                        "uses; ids and aliases must be unique."
                    )
        for spec in specs:
            self._names.setdefault(_key(spec.wire_name), spec.id)

    @classmethod
    def from_tables(cls, tables: Sequence[Mapping[str, Any]], *, packaged: bool = True) -> Registry:
        """The packaged table, then `tables` merged over it in order (without it: `packaged=False`).

        Each table maps model ids to tables of keys, as a `[models]` table in TOML does.
        """
        layers: list[Mapping[str, Any]] = [_packaged_table()] if packaged else []
        layers.extend(tables)
        return cls(_build(layers))

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._names

    def find(self, name: str) -> ModelSpec | None:
        """The model `name` (an id, alias or wire name) means, or None."""
        model_id = self._names.get(_key(name))
        return None if model_id is None else self._models[model_id]

    def get(self, name: str) -> ModelSpec:
        """The model `name` means; an unknown name is an `InputError` listing the known ids."""
        spec = self.find(name)
        if spec is None:
            raise InputError(f"Unknown model '{name}'; known models are: {', '.join(self.ids())}.")
        return spec

    def ids(self) -> tuple[str, ...]:
        """Every model id, sorted."""
        return tuple(sorted(self._models))

    def providers(self) -> tuple[str, ...]:
        """Every provider instance some model needs, sorted."""
        return tuple(sorted({m.provider for m in self._models.values()}))

    def for_task(self, task: str) -> list[ModelSpec]:
        """Models tagged for `task` (a TaskType value), in registry order."""
        return [m for m in self._models.values() if task in m.tasks]


# --- parsing and merging --------------------------------------------------------------------------


def _bad(model_id: str, key: str, expected: str, value: Any) -> InputError:
    return InputError(
        f"Model '{model_id}' has an invalid `{key}`: expected {expected}, got {value!r}."
    )


def _text(model_id: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(model_id, key, "a non-empty string", value)
    return value.strip()


def _count(model_id: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _bad(model_id, key, "a whole number of tokens above 0", value)
    return value


def _price(model_id: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(model_id, key, "a number of US dollars", value)
    if value < 0:
        raise _bad(model_id, key, "a price of 0 or more", value)
    return float(value)


def _names(model_id: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(model_id, key, "a list of strings", value)
    return tuple(_text(model_id, key, v) for v in value)


def _layer(model_id: str, table: Any) -> dict[str, Any]:
    """One table's keys for one model, checked; prices turned into per-1K input/output figures."""
    if not isinstance(table, Mapping):
        raise InputError(
            f"Model '{model_id}' must be a table of keys (provider, prices, context_window, …), "
            f"not {table!r}."
        )
    unknown = [k for k in table if k not in KEYS]
    if unknown:
        raise InputError(
            f"Model '{model_id}' has an unknown key `{unknown[0]}`; known keys are: "
            f"{', '.join(KEYS)}."
        )
    out: dict[str, Any] = {}
    for key in ("provider", "wire_name"):
        if key in table:
            out[key] = _text(model_id, key, table[key])
    # shared figures first, so that an input or output figure of the same table wins
    for group in (
        ("price_per_1k", "price_per_1m"),
        ("input_per_1k", "input_per_1m"),
        ("output_per_1k", "output_per_1m"),
    ):
        given = [k for k in group if k in table]
        if len(given) > 1:
            raise InputError(
                f"Model '{model_id}' sets both `{given[0]}` and `{given[1]}`; keep one of them."
            )
        for key in given:
            sides, divisor = _PRICE_KEYS[key]
            for side in sides:
                out[side] = _price(model_id, key, table[key]) / divisor
    for key in ("context_window", "max_output"):
        if key in table:
            out[key] = _count(model_id, key, table[key])
    if "tasks" in table:
        tasks = []
        for task in _names(model_id, "tasks", table["tasks"]):
            if task.upper() not in _TASKS:
                raise InputError(
                    f"Model '{model_id}' has an unknown task '{task}' in `tasks`; known tasks "
                    f"are: {', '.join(_TASKS)}."
                )
            tasks.append(_TASKS[task.upper()])
        out["tasks"] = tuple(tasks)
    if "aliases" in table:
        out["aliases"] = _names(model_id, "aliases", table["aliases"])
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise _bad(model_id, "enabled", "true or false", table["enabled"])
        out["enabled"] = table["enabled"]
    return out


def layer_keys(model_id: str, table: Any) -> dict[str, Any]:
    """One `[models]` entry checked, with its prices as `input_per_1k` / `output_per_1k`."""
    return _layer(model_id, table)


def _finish(model_id: str, keys: Mapping[str, Any]) -> ModelSpec:
    """A ModelSpec from merged keys; a missing required key is an InputError."""
    if "provider" not in keys:
        raise InputError(
            f"Model '{model_id}' needs `provider`: the provider instance that serves it "
            "(openai, mistral, devstral, anthropic, gemini, local, or one of your own)."
        )
    for side, word in (("input_per_1k", "input"), ("output_per_1k", "output")):
        if side not in keys:
            raise InputError(
                f"Model '{model_id}' needs an {word} price: set `price_per_1m` "
                f"(or `{word}_per_1m`), in US dollars per million tokens."
            )
    for key in ("context_window", "max_output"):
        if key not in keys:
            raise InputError(f"Model '{model_id}' needs `{key}`: a whole number of tokens above 0.")
    if keys["max_output"] > keys["context_window"]:
        raise InputError(
            f"Model '{model_id}' has `max_output` ({keys['max_output']}) larger than its "
            f"`context_window` ({keys['context_window']})."
        )
    return ModelSpec(
        id=model_id,
        provider=keys["provider"],
        wire_name=keys.get("wire_name", model_id),
        input_per_1k=keys["input_per_1k"],
        output_per_1k=keys["output_per_1k"],
        context_window=keys["context_window"],
        max_output=keys["max_output"],
        tasks=keys.get("tasks", ()),
        aliases=keys.get("aliases", ()),
    )


def _build(tables: Iterable[Mapping[str, Any]]) -> list[ModelSpec]:
    """Merge `[models]` tables in order into the enabled models' specs."""
    merged: dict[str, dict[str, Any]] = {}
    for table in tables:
        if not isinstance(table, Mapping):
            raise InputError(
                f"A [models] table must map model ids to tables of keys, not {table!r}."
            )
        # a table may name a known model by id or alias: it then updates that model
        names: dict[str, str] = {}
        for model_id, keys in merged.items():
            for name in (model_id, *keys.get("aliases", ())):
                names.setdefault(_key(name), model_id)
        for raw_id, body in table.items():
            model_id = str(raw_id).strip()
            if not model_id:
                raise InputError("A model in a [models] table has an empty id.")
            layer = _layer(model_id, body)
            target = names.get(_key(model_id), model_id)
            merged.setdefault(target, {}).update(layer)
    return [
        _finish(model_id, keys) for model_id, keys in merged.items() if keys.get("enabled", True)
    ]


def _loads(text: str, where: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"The model table {where} is not valid TOML ({exc}).") from None
    return data


@functools.lru_cache(maxsize=1)
def _packaged_table() -> Mapping[str, Any]:
    """The packaged `[models]` table (read once; never mutated: merging copies)."""
    text = resources.files("ace_lsp.orchestrator.data").joinpath("models.toml").read_text("utf-8")
    models: Mapping[str, Any] = _loads(text, "orchestrator/data/models.toml").get("models", {})
    return models


def parse(text: str) -> list[ModelSpec]:
    """The models of one TOML text with a `[models]` table, on their own (no packaged table)."""
    return _build([_loads(text, "given").get("models", {})])


def load(user_tables: Sequence[Mapping[str, Any]] = ()) -> Registry:
    """The packaged registry with the user's `[models]` tables merged over it, in order."""
    return Registry.from_tables(user_tables)


def load_default() -> Registry:
    """The packaged registry alone."""
    return load()
