"""ACE's configuration: providers (keys, base URLs), budgets, hedging and the cache.

Sources, later ones winning: built-in defaults, `$ACE_HOME/config.toml`, the workspace's `ace.toml`,
then environment variables (`ACE_OPENAI_BASE_URL`, `OPENAI_API_KEY`, …). API keys come only from
the environment; a key in a config file is refused so that it never lands in a repository.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.paths import ace_home
from ace_lsp.orchestrator.types import Tier

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

KINDS = ("openai", "anthropic", "mistral", "gemini", "local")


@dataclass(frozen=True)
class ProviderSettings:
    """One provider instance: a wire protocol (`kind`) at a base URL, with its key."""

    name: str
    kind: str
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)  # never printed, logged or stored
    key_env: tuple[str, ...] = ()  # where the key is read from, for messages
    key_required: bool = True
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def unavailable(self) -> str | None:
        """None when callable; else why not, in one sentence."""
        if self.key_required and not self.api_key:
            return f"{self.name} needs an API key: set {' or '.join(self.key_env)}."
        return None


@dataclass(frozen=True)
class _Default:
    kind: str
    base_url: str
    key_env: tuple[str, ...]
    base_url_env: str | None


DEFAULT_PROVIDERS: Mapping[str, _Default] = {
    "openai": _Default(
        "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",), "ACE_OPENAI_BASE_URL"
    ),
    "mistral": _Default(
        "mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), "ACE_MISTRAL_BASE_URL"
    ),
    # Devstral and Codestral are served by Mistral's API, same key (the seed's devstralClient)
    "devstral": _Default(
        "mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), "ACE_MISTRAL_BASE_URL"
    ),
    "anthropic": _Default(
        "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), "ACE_ANTHROPIC_BASE_URL"
    ),
    "gemini": _Default(
        "gemini",
        "https://generativelanguage.googleapis.com",
        ("GOOGLE_AI_API_KEY", "GEMINI_API_KEY"),
        "ACE_GEMINI_BASE_URL",
    ),
    "local": _Default("local", "", (), None),
}


@dataclass(frozen=True)
class TierLimits:
    per_request_usd: float
    daily_usd: float | None  # None: no limit
    monthly_usd: float | None


DEFAULT_LIMITS: Mapping[Tier, TierLimits] = {
    Tier.FREE: TierLimits(0.01, 0.50, 5.00),
    Tier.PRO: TierLimits(0.10, 5.00, 50.00),
    Tier.ULTIMATE: TierLimits(1.00, 50.00, 500.00),
}


@dataclass(frozen=True)
class AceConfig:
    home: Path
    providers: Mapping[str, ProviderSettings]
    limits: Mapping[Tier, TierLimits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    hedging: Mapping[Tier, bool] = field(
        default_factory=lambda: {Tier.FREE: False, Tier.PRO: False, Tier.ULTIMATE: True}
    )
    cache_ttl_s: float = 3600.0
    max_retries: int = 2  # per model, retryable errors only
    retry_after_limit_s: float = 20.0  # a longer `retry-after` moves on to the next model
    attempt_timeout_s: float | None = None  # wall-clock bound per attempt
    model_tables: tuple[Mapping[str, Any], ...] = ()  # [models] tables of user files, in order
    sources: tuple[Path, ...] = ()  # the files that were read
    ledger_url: str | None = None  # postgresql://…: the team ledger; None: SQLite in `home`
    team: Mapping[str, float | bool] = field(default_factory=dict)  # the [team] section

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite3"

    @property
    def spool_path(self) -> Path:
        """Where team-mode rows wait while the team ledger is unreachable."""
        return self.home / "team-spool.sqlite3"


def _read(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return data
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read ACE's config file {path} ({exc}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"ACE's config file {path} is not valid TOML ({exc}).") from None


def _provider(
    name: str, table: Mapping[str, Any], env: Mapping[str, str], where: Path
) -> ProviderSettings:
    base = DEFAULT_PROVIDERS.get(name)
    if "api_key" in table:
        raise InputError(
            f"{where} holds an API key for {name}; keys belong in the environment, not in files."
        )
    kind = str(table.get("kind", base.kind if base else ""))
    if kind not in KINDS:
        raise InputError(f"Provider '{name}' in {where} needs `kind`, one of: {', '.join(KINDS)}.")
    key_env: tuple[str, ...]
    raw_env = table.get("key_env")
    if isinstance(raw_env, str):
        key_env = (raw_env,)
    elif isinstance(raw_env, list):
        key_env = tuple(str(e) for e in raw_env)
    else:
        key_env = base.key_env if base else ()
    url = str(table.get("base_url", base.base_url if base else ""))
    if base and base.base_url_env and env.get(base.base_url_env):
        url = env[base.base_url_env]
    key = next((env[e] for e in key_env if env.get(e)), None)
    try:
        return ProviderSettings(
            name=name,
            kind=kind,
            base_url=url.rstrip("/"),
            api_key=key,
            key_env=key_env,
            key_required=bool(
                table.get("key_required", kind != "local" and (base is not None or bool(key_env)))
            ),
            connect_timeout_s=float(table.get("connect_timeout_s", 5.0)),
            read_timeout_s=float(table.get("read_timeout_s", 60.0)),
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"Provider '{name}' in {where} has an invalid value ({exc}).") from None


def _limits(
    table: Mapping[str, Any], current: Mapping[Tier, TierLimits], where: Path
) -> dict[Tier, TierLimits]:
    out = dict(current)
    for tier in Tier:
        raw = table.get(tier.value)
        if raw is None:
            continue
        try:
            cur = out[tier]

            def value(key: str, now: float | None, raw: Any = raw) -> float | None:
                v = raw.get(key, now)
                return None if v is None or v is False else float(v)

            per_request = value("per_request_usd", cur.per_request_usd)
            out[tier] = TierLimits(
                per_request if per_request is not None else cur.per_request_usd,
                value("daily_usd", cur.daily_usd),
                value("monthly_usd", cur.monthly_usd),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"[budget.{tier.value}] in {where} is invalid ({exc}).") from None
    return out


def _calls(table: Mapping[str, Any]) -> dict[str, Any]:
    """The [calls] section: retries and timeouts."""
    out: dict[str, Any] = {}
    try:
        if "max_retries" in table:
            out["max_retries"] = max(int(table["max_retries"]), 0)
        if "retry_after_limit_s" in table:
            out["retry_after_limit_s"] = float(table["retry_after_limit_s"])
        if "attempt_timeout_s" in table:
            out["attempt_timeout_s"] = float(table["attempt_timeout_s"]) or None
    except (TypeError, ValueError) as exc:
        raise InputError(f"The [calls] section of ACE's config is invalid ({exc}).") from None
    return out


_TEAM_KEYS = {
    "offline_usd": float,
    "reservation_ttl_s": float,
    "reconnect_s": float,
    "share_health": bool,
    "health_refresh_s": float,
    "connect_timeout_s": float,
}


def _team(table: Mapping[str, Any], where: Path) -> dict[str, float | bool]:
    """The [team] section: how the team ledger behaves (see orchestrator/team/shared.py)."""
    out: dict[str, float | bool] = {}
    for key, value in table.items():
        kind = _TEAM_KEYS.get(key)
        if kind is None:
            raise InputError(
                f"[team] in {where} has an unknown key '{key}'; known: {', '.join(_TEAM_KEYS)}."
            )
        if kind is bool:
            if not isinstance(value, bool):
                raise InputError(f"[team] {key} in {where} must be true or false.")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InputError(f"[team] {key} in {where} must be a non-negative number.")
        out[key] = float(value)
    return out


def _ledger_url(value: object, where: str, *, file: bool) -> str:
    url = str(value).strip()
    if not url.startswith(("postgresql://", "postgres://")):
        raise InputError(
            f"ledger_url in {where} must be a postgresql:// URL (leave it out for the personal "
            "SQLite ledger)."
        )
    if file:
        from urllib.parse import urlsplit

        if urlsplit(url).password or "password=" in url:
            raise InputError(
                f"ledger_url in {where} holds a password; passwords belong in ~/.pgpass or "
                "PGPASSWORD (or in ACE_LEDGER_URL), not in files."
            )
    return url


def load_config(workspace: Path | None = None, env: Mapping[str, str] | None = None) -> AceConfig:
    """Defaults, `$ACE_HOME/config.toml` and `models.toml`, `<workspace>/ace.toml`, then env."""
    env = os.environ if env is None else env
    home = ace_home(env)
    files = [home / "config.toml"]
    if workspace is not None:
        files.append(workspace / "ace.toml")
    provider_tables: dict[str, dict[str, Any]] = {name: {} for name in DEFAULT_PROVIDERS}
    provider_where: dict[str, Path] = {}
    limits: dict[Tier, TierLimits] = dict(DEFAULT_LIMITS)
    hedging = {Tier.FREE: False, Tier.PRO: False, Tier.ULTIMATE: True}
    cache_ttl = 3600.0
    calls: dict[str, Any] = {}
    models: list[Mapping[str, Any]] = []
    sources: list[Path] = []
    ledger_url: str | None = None
    team: dict[str, float | bool] = {}
    user_models = _read(home / "models.toml")
    if user_models:
        sources.append(home / "models.toml")
        models.append(user_models.get("models", {}))
    for path in files:
        data = _read(path)
        if not data:
            continue
        sources.append(path)
        for name, table in data.get("providers", {}).items():
            provider_tables.setdefault(name, {}).update(table)
            provider_where[name] = path
        limits = _limits(data.get("budget", {}), limits, path)
        for tier_name, on in data.get("hedging", {}).items():
            try:
                hedging[Tier(tier_name)] = bool(on)
            except ValueError:
                raise InputError(
                    f"[hedging] in {path} names an unknown tier '{tier_name}'."
                ) from None
        cache_ttl = float(data.get("cache", {}).get("ttl_s", cache_ttl))
        calls.update(data.get("calls", {}))
        if "models" in data:
            models.append(data["models"])
        if ("ledger_url" in data or "team" in data) and path != home / "config.toml":
            raise InputError(
                f"{path} sets the team ledger; only ACE's own config.toml or ACE_LEDGER_URL may "
                "(a workspace must not choose where usage goes)."
            )
        if "ledger_url" in data:
            ledger_url = _ledger_url(data["ledger_url"], str(path), file=True)
        team.update(_team(data.get("team", {}), path))
    if env.get("ACE_LEDGER_URL"):
        ledger_url = _ledger_url(env["ACE_LEDGER_URL"], "ACE_LEDGER_URL", file=False)
    providers = {
        name: _provider(name, table, env, provider_where.get(name, home / "config.toml"))
        for name, table in provider_tables.items()
    }
    return AceConfig(
        home=home,
        providers=providers,
        limits=limits,
        hedging=hedging,
        cache_ttl_s=cache_ttl,
        **_calls(calls),
        model_tables=tuple(models),
        sources=tuple(sources),
        ledger_url=ledger_url,
        team=team,
    )
