"""ACE's configuration: providers (keys, base URLs), budgets, hedging and the cache, in layers.

The user layer, later ones winning: built-in defaults, `$ACE_HOME/models.toml`,
`$ACE_HOME/config.toml`, a workspace `ace.toml` the user ran `ace trust` on, then environment
variables (`ACE_OPENAI_BASE_URL`, `ACE_LEDGER_URL`, `OPENAI_API_KEY`, …). The workspace layer —
an `ace.toml` found from the workspace up to its repository root (trust.py) that the user did not
trust — comes last and may only tighten (layers.py): a cloned repository cannot choose where
requests and keys go, nor raise what is spent. API keys come only from the environment, from
variables named `*_API_KEY` or `*_TOKEN` that are not well-known non-LLM secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ace_lsp.orchestrator import layers, trust
from ace_lsp.orchestrator.compat import tomllib
from ace_lsp.orchestrator.config_schema import KINDS, CheckedFile, check
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.paths import ace_home
from ace_lsp.orchestrator.types import Tier

__all__ = ["KINDS", "AceConfig", "ProviderSettings", "TierLimits", "load_config"]


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
    # Devstral and Codestral are served by Mistral's API, same key (docs/architecture.md, "Models")
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
    """A tier's caps in USD: per request, per day and per month."""

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
    """ACE's settings with every layer merged, the files read and where each value came from."""

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
    # what a person should read once: unknown keys, a workspace's refused keys, ignored files
    notices: tuple[str, ...] = ()
    origins: Mapping[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (value, where)
    refused: tuple[tuple[Path, layers.Refusal], ...] = ()  # a workspace's keys, not applied
    workspace_file: Path | None = None
    workspace_trusted: bool = False

    @property
    def ledger_path(self) -> Path:
        """The personal SQLite usage ledger, in ACE's home."""
        return self.home / "ledger.sqlite3"

    @property
    def spool_path(self) -> Path:
        """Where team-mode rows wait while the team ledger is unreachable."""
        return self.home / "team-spool.sqlite3"


def _defaults() -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, default in DEFAULT_PROVIDERS.items():
        values[f"providers.{name}.kind"] = default.kind
        values[f"providers.{name}.base_url"] = default.base_url
        values[f"providers.{name}.key_env"] = default.key_env
    for tier, limits in DEFAULT_LIMITS.items():
        values[f"budget.{tier.value}.per_request_usd"] = limits.per_request_usd
        values[f"budget.{tier.value}.daily_usd"] = limits.daily_usd
        values[f"budget.{tier.value}.monthly_usd"] = limits.monthly_usd
    values.update({"hedging.free": False, "hedging.pro": False, "hedging.ultimate": True})
    values.update(
        {"calls.max_retries": 2, "calls.retry_after_limit_s": 20.0, "calls.attempt_timeout_s": None}
    )
    values["cache.ttl_s"] = 3600.0
    values["ledger_url"] = None
    return values


# Secrets that are not an LLM provider's key: a config file may never send one as "Bearer …".
_DENIED_PREFIXES = (
    "AWS_", "AZURE_", "GCP_", "GOOGLE_CLOUD_", "GITHUB_", "GH_", "GITLAB_", "CI_", "ACTIONS_",
    "NPM_", "PYPI_", "TWINE_", "DOCKER_", "SLACK_", "STRIPE_", "TWILIO_", "SENDGRID_", "HEROKU_",
    "VAULT_", "CODECOV_", "SENTRY_", "CLOUDFLARE_", "DIGITALOCEAN_", "NETLIFY_", "VERCEL_",
    "CIRCLE_", "TRAVIS_", "BUILDKITE_", "DATADOG_", "DD_", "NEW_RELIC_", "SNYK_", "SONAR_",
    "TF_", "TERRAFORM_", "KUBE", "SSH_",
)  # fmt: skip
_KEY_SUFFIXES = ("_API_KEY", "_TOKEN")


def _check_key_env(name: str, provider: str, where: str) -> None:
    upper = name.upper()
    if not upper.endswith(_KEY_SUFFIXES) or upper.startswith(_DENIED_PREFIXES):
        raise InputError(
            f"Provider '{provider}' in {where} reads its key from {name}, which ACE refuses: "
            "key_env may name only variables ending in _API_KEY or _TOKEN that are not "
            "well-known non-LLM secrets (AWS_*, GITHUB_TOKEN, NPM_TOKEN, …)."
        )


def _read(path: Path) -> tuple[CheckedFile | None, bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, b""
    except OSError as exc:
        raise InputError(f"Cannot read ACE's config file {path} ({exc.strerror}).") from None
    return _parse(path, raw), raw


def _parse(path: Path, raw: bytes) -> CheckedFile:
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise InputError(f"ACE's config file {path} is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"ACE's config file {path} is not valid TOML ({exc}).") from None
    return check(data, text, path)


class _Layers:
    """Dotted values with where each came from, merged file by file."""

    def __init__(self) -> None:
        self.values = _defaults()
        self.origins: dict[str, tuple[Any, str]] = {
            k: (v, "default") for k, v in self.values.items()
        }
        self.models: list[Mapping[str, Any]] = []
        self.notices: list[str] = []
        self.sources: list[Path] = []
        self.where: dict[str, str] = {}  # dotted key -> "file:line", for error messages

    def user_file(self, checked: CheckedFile) -> None:
        self.sources.append(checked.path)
        self.notices.extend(checked.warnings)
        for key, value in checked.values.items():
            line = checked.lines.get(key)
            self.set(key, value, f"{checked.path}:{line}" if line else str(checked.path))
        if "ledger_url" in checked.values:
            _ledger_url(checked.values["ledger_url"], str(checked.path), file=True)
        if checked.models:
            self.models.append(checked.models)

    def set(self, key: str, value: Any, where: str) -> None:
        self.values[key] = value
        self.origins[key] = (value, where)
        self.where[key] = where


def _workspace(
    start: Path | None, home: Path, env: Mapping[str, str], merged: _Layers
) -> tuple[CheckedFile | None, bool]:
    """The workspace's ace.toml (checked) and whether the user trusted it; notices on the way."""
    if start is None:
        return None, False
    path = trust.find(start, env)
    if path is None:
        return None, False
    found, why = trust.read(path, home)
    if found is None:
        merged.notices.append(why or f"ACE ignored {path}.")
        return None, False
    checked = _parse(path, found.data)
    if not found.trusted and str(path.resolve()) in trust.trusted(home):
        merged.notices.append(
            f"{path} changed since you ran `ace trust` on it, so it only tightens ACE's settings "
            "again; run `ace trust` once more if you made the change."
        )
    return checked, found.trusted


def _env(merged: _Layers, env: Mapping[str, str]) -> None:
    for name, default in DEFAULT_PROVIDERS.items():
        if default.base_url_env and env.get(default.base_url_env):
            merged.set(
                f"providers.{name}.base_url",
                env[default.base_url_env].rstrip("/"),
                default.base_url_env,
            )
    if env.get("ACE_LEDGER_URL"):
        merged.set(
            "ledger_url",
            _ledger_url(env["ACE_LEDGER_URL"], "ACE_LEDGER_URL", file=False),
            "ACE_LEDGER_URL",
        )


def _refusal_notice(path: Path, refused: list[layers.Refusal], checked: CheckedFile) -> str:
    parts = []
    for r in refused:
        line = checked.lines.get(r.key) or checked.lines.get(".".join(r.key.split(".")[:2]))
        parts.append(f"`{r.key}`" + (f" (line {line})" if line else "") + f" {r.reason}")
    return (
        f"ACE ignored {len(refused)} setting{'s' if len(refused) != 1 else ''} in {path} that a "
        f"repository may not set: {'; '.join(parts)}. A workspace's ace.toml may only tighten "
        "ACE (lower caps, higher prices, models off); if you wrote this file, run "
        f"`ace trust {path}` to allow it."
    )


def _providers(merged: _Layers, env: Mapping[str, str]) -> dict[str, ProviderSettings]:
    names = sorted({key.split(".")[1] for key in merged.values if key.startswith("providers.")})
    out: dict[str, ProviderSettings] = {}
    for name in names:

        def get(key: str, default: Any = None, name: str = name) -> Any:
            return merged.values.get(f"providers.{name}.{key}", default)

        where = merged.where.get(f"providers.{name}.kind") or next(
            (w for k, w in merged.where.items() if k.startswith(f"providers.{name}.")), "defaults"
        )
        kind = get("kind")
        if kind not in KINDS:
            raise InputError(
                f"Provider '{name}' in {where} needs `kind`, one of: {', '.join(KINDS)}."
            )
        key_env: tuple[str, ...] = tuple(get("key_env", ()))
        if merged.origins.get(f"providers.{name}.key_env", (None, "default"))[1] != "default":
            for variable in key_env:
                _check_key_env(variable, name, merged.where[f"providers.{name}.key_env"])
        default_required = kind != "local" and (name in DEFAULT_PROVIDERS or bool(key_env))
        out[name] = ProviderSettings(
            name=name,
            kind=kind,
            base_url=str(get("base_url", "")),
            api_key=next((env[e] for e in key_env if env.get(e)), None),
            key_env=key_env,
            key_required=bool(get("key_required", default_required)),
            connect_timeout_s=float(get("connect_timeout_s", 5.0)),
            read_timeout_s=float(get("read_timeout_s", 60.0)),
        )
    return out


def _limits(values: Mapping[str, Any]) -> dict[Tier, TierLimits]:
    return {
        tier: TierLimits(
            float(values[f"budget.{tier.value}.per_request_usd"]),
            values[f"budget.{tier.value}.daily_usd"],
            values[f"budget.{tier.value}.monthly_usd"],
        )
        for tier in Tier
    }


def load_config(workspace: Path | None = None, env: Mapping[str, str] | None = None) -> AceConfig:
    """The layers in order (see the module docstring); `workspace` is the folder to look up from."""
    env = os.environ if env is None else env
    home = ace_home(env)
    merged = _Layers()
    for name in ("models.toml", "config.toml"):
        checked, _ = _read(home / name)
        if checked is not None:
            merged.user_file(checked)
    ws, ws_trusted = _workspace(workspace, home, env, merged)
    if ws is not None and ws_trusted:
        merged.user_file(ws)
    _env(merged, env)
    refused: list[tuple[Path, layers.Refusal]] = []
    if ws is not None and not ws_trusted:
        from ace_lsp.orchestrator.registry import Registry

        merged.sources.append(ws.path)
        merged.notices.extend(ws.warnings)
        kept, no = layers.tighten(merged.values, ws.values)
        for key, value in kept.items():
            line = ws.lines.get(key)
            merged.set(key, value, f"{ws.path}:{line}" if line else str(ws.path))
        models, no_models = layers.tighten_models(Registry.from_tables(merged.models), ws.models)
        if models:
            merged.models.append(models)
        no += no_models
        if no:
            merged.notices.append(_refusal_notice(ws.path, no, ws))
            refused = [(ws.path, r) for r in no]
    values = merged.values
    team = {key.split(".", 1)[1]: value for key, value in values.items() if key.startswith("team.")}
    return AceConfig(
        home=home,
        providers=_providers(merged, env),
        limits=_limits(values),
        hedging={tier: bool(values[f"hedging.{tier.value}"]) for tier in Tier},
        cache_ttl_s=float(values["cache.ttl_s"]),
        max_retries=int(values["calls.max_retries"]),
        retry_after_limit_s=float(values["calls.retry_after_limit_s"]),
        attempt_timeout_s=values["calls.attempt_timeout_s"],
        model_tables=tuple(merged.models),
        sources=tuple(merged.sources),
        ledger_url=values["ledger_url"],
        team=team,
        notices=tuple(merged.notices),
        origins=dict(merged.origins),
        refused=tuple(refused),
        workspace_file=ws.path if ws is not None else None,
        workspace_trusted=ws_trusted,
    )


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
