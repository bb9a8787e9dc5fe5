"""The model registry: every model ACE can call, its provider, prices and limits, from TOML data."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from orchestrator.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


@dataclass(frozen=True)
class ModelSpec:
    id: str
    provider: str
    wire_name: str
    input_per_1k: float  # USD per 1,000 input tokens
    output_per_1k: float  # USD per 1,000 output tokens
    context_window: int
    max_output: int
    tasks: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000


class Registry:
    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._models: dict[str, ModelSpec] = {}
        self._names: dict[str, str] = {}
        for spec in models:
            self._models[spec.id] = spec
            for name in (spec.id, spec.wire_name, *spec.aliases):
                self._names[name] = spec.id

    def __iter__(self) -> Any:
        return iter(self._models.values())

    def get(self, name: str) -> ModelSpec:
        try:
            return self._models[self._names[name]]
        except KeyError:
            known = ", ".join(sorted(self._models))
            raise InputError(f"Unknown model '{name}'; known models are: {known}.") from None

    def for_task(self, task: str) -> list[ModelSpec]:
        return [m for m in self._models.values() if task in m.tasks]


def _spec(model_id: str, table: Mapping[str, Any]) -> ModelSpec:
    try:
        price = table.get("price_per_1k")
        return ModelSpec(
            id=model_id,
            provider=str(table["provider"]),
            wire_name=str(table.get("wire_name", model_id)),
            input_per_1k=float(table.get("input_per_1k", price if price is not None else 0.0)),
            output_per_1k=float(table.get("output_per_1k", price if price is not None else 0.0)),
            context_window=int(table["context_window"]),
            max_output=int(table["max_output"]),
            tasks=tuple(table.get("tasks", ())),
            aliases=tuple(table.get("aliases", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"Model '{model_id}' in the registry is incomplete or invalid ({exc})."
        ) from exc


def parse(text: str) -> list[ModelSpec]:
    data = tomllib.loads(text)
    return [_spec(model_id, table) for model_id, table in data.get("models", {}).items()]


def load_default() -> Registry:
    text = resources.files("orchestrator.data").joinpath("models.toml").read_text("utf-8")
    return Registry(parse(text))
