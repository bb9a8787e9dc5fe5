"""Settings: the typed tree of what a client may set, from `initializationOptions` and
`workspace/configuration` (section `ace`), which carry the same flat, camelCase keys.

`{"tier": "pro", "userId": "ana", "riskLevel": "balanced", "dailyBudget": 2, "monthlyBudget": 20,
"hoverReview": "cached", "prefetch": false, "hedging": null, "models": {"AUTO_FIX": "gpt-4o"}}`.
An invalid value is reported once and replaced by its default. API keys never travel through
settings: a key-like field is refused.

Values a client read from the *workspace's* settings (a repository's `.vscode/settings.json`)
come under the key `"workspace"`, and may only tighten what the user set (issue 12): a lower
tier, risk, hover mode or budget, prefetch and hedging off, masking on. Anything else from there
is ignored with one message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ace_lsp.orchestrator.budget import Budget
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
    # budgets a workspace's settings asked for: they can only lower the user's (or the tier's)
    workspace_daily_cap: float | None = Field(default=None, ge=0)
    workspace_monthly_cap: float | None = Field(default=None, ge=0)

    @field_validator("models", mode="before")
    @classmethod
    def _upper_tasks(cls, v: object) -> object:
        if isinstance(v, Mapping):
            return {str(k).upper(): val for k, val in v.items()}
        return v

    def call_options(
        self, task: TaskType, budget: Budget | None = None, **more: Any
    ) -> CallOptions:
        """The orchestrator options these settings imply for one task (`budget`: the tier's
        limits, which a workspace's cap may lower)."""
        daily, monthly = self.daily_budget, self.monthly_budget
        if budget is not None and (self.workspace_daily_cap, self.workspace_monthly_cap) != (
            None,
            None,
        ):
            daily, monthly = budget.limits(self.tier, daily=daily, monthly=monthly)
        return CallOptions(
            hedging=self.hedging,
            daily_usd=_lowest(daily, self.workspace_daily_cap),
            monthly_usd=_lowest(monthly, self.workspace_monthly_cap),
            preferred_model=self.models.get(task),
            **more,
        )


def _lowest(limit: float | None, cap: float | None) -> float | None:
    """None is no limit."""
    if cap is None:
        return limit
    return cap if limit is None else min(limit, cap)


_ORDER: dict[str, tuple[Any, ...]] = {
    "tier": (Tier.FREE, Tier.PRO, Tier.ULTIMATE),
    "risk_level": (RiskLevel.CONSERVATIVE, RiskLevel.BALANCED, RiskLevel.AGGRESSIVE),
    "hover_review": ("off", "cached", "auto"),
}


def _tighten(user: Settings, raw: Mapping[str, Any]) -> tuple[Settings, list[str]]:
    """`user` with the workspace's values that only tighten it; the others' names."""
    changes: dict[str, Any] = {}
    refused: list[str] = []
    for key, value in raw.items():
        if value is None:
            continue
        try:
            name, typed = _one(key, value)
        except (ValueError, KeyError):
            refused.append(key)
            continue
        current = getattr(user, name)
        if name in _ORDER:
            order = _ORDER[name]
            ok = order.index(typed) <= order.index(current)
        elif name in ("prefetch", "hedging"):
            ok = typed is False
        elif name == "mask_secrets":
            ok = typed is True
        elif name in ("daily_budget", "monthly_budget"):
            name = f"workspace_{name.split('_')[0]}_cap"
            ok = True  # a cap: applied as the lower of it and the user's budget
        else:  # userId, models: who pays and which model is called are the user's to say
            ok = False
        if ok:
            changes[name] = typed
        else:
            refused.append(key)
    return user.model_copy(update=changes), refused


def _one(key: str, value: Any) -> tuple[str, Any]:
    """One setting's field name and typed value; ValueError when invalid or unknown."""
    for name, field in Settings.model_fields.items():
        if key in (name, field.alias) and not name.startswith("workspace_"):
            try:
                parsed = Settings.model_validate({key: value})
            except ValidationError:
                raise ValueError(key) from None
            return name, getattr(parsed, name)
    raise KeyError(key)


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
    workspace: dict[str, Any] = {}
    for raw in sources:
        if raw is None:
            continue
        if not isinstance(raw, Mapping):
            problems.append("ACE settings must be an object; using defaults for them.")
            continue
        flat = _flatten(raw)
        ws = flat.pop("workspace", None)
        if isinstance(ws, Mapping):
            workspace = _flatten(ws)  # each source carries the workspace's whole set
        for key, value in flat.items():
            if value is None:  # null in a later source resets the key to its default
                merged.pop(key, None)
            else:
                merged[key] = value
    user, problems = _validate(merged, problems)
    if not workspace:
        return user, problems
    settings, refused = _tighten(user, workspace)
    if refused:
        problems.append(
            f"ACE ignored the workspace setting{'s' if len(refused) > 1 else ''} "
            f"{', '.join(repr(k) for k in refused)}: a workspace's settings may only tighten ACE "
            "(a lower tier, risk or budget, prefetch and hedging off, masking on); set them in "
            "your user settings instead."
        )
    return settings, problems


def _validate(merged: dict[str, Any], problems: list[str]) -> tuple[Settings, list[str]]:
    """The user's settings, dropping (and reporting) unknown, key-like and invalid fields."""
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
