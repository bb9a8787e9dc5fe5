"""Tighten-only merging: what a workspace layer may change in settings the user layer made.

Pure functions over dotted keys (`budget.pro.daily_usd`) and `[models]` tables. A workspace may
lower caps, budgets, retries and timeouts, turn hedging off, raise prices, lower a model's
output or context, and disable a model. It may never choose where requests go or with which
key (`providers.*`, a model's `provider`, `wire_name`, `aliases`, `tasks`, a new model), where
usage is written (`ledger_url`, `[team]`), nor loosen anything. Each refused key is returned
with the reason, so that one message can name them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ace_lsp.orchestrator.registry import Registry, layer_keys


@dataclass(frozen=True)
class Refusal:
    """A key a workspace layer may not set, and why."""

    key: str  # dotted: "providers.devstral.base_url"
    reason: str  # why a workspace may not set it: "chooses where requests and keys go"


_NEVER = {
    "providers": "chooses where requests and keys go",
    "ledger_url": "chooses where usage is written",
    "team": "changes how the team ledger is used",
}
_LOWER_ONLY = ("budget.", "calls.", "cache.")
_FALSE_ONLY = ("hedging.",)


def _as_number(value: Any) -> float:
    """None means no limit: larger than every number."""
    return math.inf if value is None else float(value)


def tighten(
    current: Mapping[str, Any], workspace: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Refusal]]:
    """The workspace's values that only tighten `current`, and a refusal for each other one."""
    kept: dict[str, Any] = {}
    refused: list[Refusal] = []
    for key, value in workspace.items():
        section = key.split(".", 1)[0]
        if section in _NEVER:
            refused.append(Refusal(key, _NEVER[section]))
        elif key.startswith(_LOWER_ONLY):
            if _as_number(value) <= _as_number(current.get(key)):
                kept[key] = value
            else:
                refused.append(Refusal(key, f"raises it above {_show(current.get(key))}"))
        elif key.startswith(_FALSE_ONLY):
            if value is False or current.get(key) is True:
                kept[key] = value
            else:
                refused.append(Refusal(key, "turns it on (it spends more)"))
        else:
            refused.append(Refusal(key, "is not a setting a workspace may change"))
    return kept, refused


def _show(value: Any) -> str:
    return "no limit" if value is None else repr(value)


_MODEL_NEVER = {
    "provider": "chooses where requests and keys go",
    "wire_name": "chooses which model is billed",
    "aliases": "renames models",
    "tasks": "changes routing",
}


def tighten_models(
    registry: Registry, table: Mapping[str, Any]
) -> tuple[dict[str, dict[str, Any]], list[Refusal]]:
    """A workspace's `[models]` table reduced to what only tightens `registry`'s models.

    Returns a table in the registry's own per-1K keys, keyed by model id.
    """
    kept: dict[str, dict[str, Any]] = {}
    refused: list[Refusal] = []
    for raw_id, body in table.items():
        name = str(raw_id)
        spec = registry.find(name)
        if spec is None:
            refused.append(Refusal(f"models.{name}", "adds a model"))
            continue
        keys = layer_keys(spec.id, body)
        out: dict[str, Any] = {}
        for key, value in keys.items():
            where = f"models.{name}.{key}"
            if key in _MODEL_NEVER:
                if not (key == "wire_name" and value == spec.wire_name):
                    refused.append(Refusal(where, _MODEL_NEVER[key]))
            elif key == "enabled":
                if value is False:
                    out[key] = value
                else:
                    refused.append(Refusal(where, "enables a model"))
            elif key in ("input_per_1k", "output_per_1k"):
                if value >= getattr(spec, key):
                    out[key] = value
                else:
                    refused.append(Refusal(where, "lowers its price (budgets would see less)"))
            elif key in ("context_window", "max_output"):
                if value <= getattr(spec, key):
                    out[key] = value
                else:
                    refused.append(Refusal(where, "raises it"))
            else:  # pragma: no cover - layer_keys returns only the keys above
                refused.append(Refusal(where, "is not a setting a workspace may change"))
        if out:
            kept[spec.id] = out
    return kept, refused
