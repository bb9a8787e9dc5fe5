"""Settings: the typed tree of what a client may set, read from `initializationOptions`.

Keys are flat and camelCase on the wire (`{"tier": "pro", "riskLevel": "balanced"}`); an invalid
value is reported once and replaced by its default. API keys never travel through settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.types import RiskLevel, Tier


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    tier: Tier = Tier.FREE
    user_id: str = Field(default="local", alias="userId")
    risk_level: RiskLevel = Field(default=RiskLevel.BALANCED, alias="riskLevel")


def parse_settings(raw: Any) -> tuple[Settings, list[str]]:
    """Settings from a client's JSON, and one message per field that was invalid and reset."""
    if not isinstance(raw, dict):
        return Settings(), (
            [] if raw is None else ["ACE settings must be an object; using defaults."]
        )
    problems: list[str] = []
    clean = dict(raw)
    for _ in range(len(Settings.model_fields) + 1):
        try:
            return Settings.model_validate(clean), problems
        except ValidationError as exc:
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else ""
                problems.append(
                    f"ACE setting '{key}' is invalid ({err['msg']}); using its default."
                )
                clean.pop(key, None)
    return Settings(), problems
