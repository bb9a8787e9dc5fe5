"""Settings: the typed tree of what a client may set, from `initializationOptions` and
`workspace/configuration` (section `ace`), which carry the same flat, camelCase keys.

`{"tier": "pro", "userId": "ana", "riskLevel": "balanced", "dailyBudget": 2, "monthlyBudget": 20,
"hoverReview": "cached", "prefetch": false, "hedging": null, "models": {"AUTO_FIX": "gpt-4o"}}`.
An invalid value is reported once and replaced by its default. API keys never travel through
settings: a key-like field is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ace_lsp.orchestrator.call import CallOptions
from ace_lsp.orchestrator.types import RiskLevel, TaskType, Tier

HoverMode = Literal["off", "cached", "auto"]


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    tier: Tier = Tier.FREE
    user_id: str = Field(default="local", alias="userId", min_length=1, max_length=200)
    risk_level: RiskLevel = Field(default=RiskLevel.BALANCED, alias="riskLevel")
    daily_budget: float | None = Field(default=None, alias="dailyBudget", ge=0)
    monthly_budget: float | None = Field(default=None, alias="monthlyBudget", ge=0)
    hover_review: HoverMode = Field(default="cached", alias="hoverReview")
    prefetch: bool = False
    hedging: bool | None = None  # None: the tier's default from the config
    # mask secret-shaped text (keys, passwords) in code sent to a provider
    mask_secrets: bool = Field(default=True, alias="maskSecrets")
    models: dict[TaskType, str] = Field(default_factory=dict)  # preferred model per task

    @field_validator("models", mode="before")
    @classmethod
    def _upper_tasks(cls, v: object) -> object:
        if isinstance(v, Mapping):
            return {str(k).upper(): val for k, val in v.items()}
        return v

    def call_options(self, task: TaskType, **more: Any) -> CallOptions:
        """The orchestrator options these settings imply for one task."""
        return CallOptions(
            hedging=self.hedging,
            daily_usd=self.daily_budget,
            monthly_usd=self.monthly_budget,
            preferred_model=self.models.get(task),
            **more,
        )


_KEYISH = ("apikey", "api_key", "key", "token", "secret")
_CLIENT_ONLY = ("server", "trace")  # editor-side settings (how to start ACE) a client may pass


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Accept `{"ace": {...}}` as well as the flat form, and `budget.daily`-style nesting."""
    data = dict(raw.get("ace", raw)) if isinstance(raw.get("ace"), Mapping) else dict(raw)
    budget = data.pop("budget", None)
    if isinstance(budget, Mapping):
        data.setdefault("dailyBudget", budget.get("daily"))
        data.setdefault("monthlyBudget", budget.get("monthly"))
    return data


def parse_settings(*sources: Any) -> tuple[Settings, list[str]]:
    """Settings from the client's JSON (later sources win), and one message per invalid field."""
    problems: list[str] = []
    merged: dict[str, Any] = {}
    for raw in sources:
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            problems.append("ACE settings must be an object; using defaults for them.")
            continue
        for key, value in _flatten(raw).items():
            if value is None:  # null in a later source resets the key to its default
                merged.pop(key, None)
            else:
                merged[key] = value
    known = {f.alias or name for name, f in Settings.model_fields.items()} | set(
        Settings.model_fields
    )
    for key in [k for k in merged if k not in known and k not in _CLIENT_ONLY]:
        if key.replace("-", "_").lower() in _KEYISH:
            continue  # refused below, with its own message
        merged.pop(key)
        problems.append(
            f"ACE setting '{key}' is unknown, so it was ignored; "
            f"ACE knows: {', '.join(sorted(k for k in known if k[0].islower() and '_' not in k))}."
        )
    for key in [k for k in merged if k.replace("-", "_").lower() in _KEYISH]:
        merged.pop(key)
        problems.append(
            f"ACE setting '{key}' looks like an API key; keys belong in the server's "
            "environment, never in settings, so it was ignored."
        )
    for _ in range(len(Settings.model_fields) + 1):
        try:
            return Settings.model_validate(merged), problems
        except ValidationError as exc:
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                problems.append(
                    f"ACE setting '{key}' is invalid ({err['msg']}); using its default."
                )
                merged.pop(key, None)
    return Settings(), problems
