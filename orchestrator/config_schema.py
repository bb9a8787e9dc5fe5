"""The typed schema of ACE's config files (`config.toml`, `models.toml`, a workspace's `ace.toml`).

`check(data, text, path)` validates one parsed file: a wrong type, a negative or zero budget,
timeout or retry count is an `InputError` of one sentence naming the file, the line and the key;
an unknown section or key is dropped with a warning that names them too and suggests the nearest
known name ("did you mean `budget`?"). The result is flattened to dotted keys
(`budget.pro.daily_usd`), the form `config.py` merges layers in; `[models]` tables are kept as
tables for the registry, which checks their keys itself.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ace_lsp.orchestrator.errors import InputError

# The wire protocols ACE speaks (a provider's `kind`); each is the module providers/<kind>.py.
Kind = Literal["openai", "anthropic", "mistral", "gemini", "local"]
KINDS: tuple[str, ...] = get_args(Kind)


_SHOWN_KEY = 80  # characters of an unknown key a warning repeats


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Usd = Annotated[float, Field(gt=0, lt=1_000_000, allow_inf_nan=False)]


class ProviderTable(_Table):
    """A `[providers.<name>]` table: wire protocol, base URL, key variables and timeouts."""

    kind: Kind | None = None
    base_url: str | None = None
    key_env: str | list[str] | None = None
    key_required: bool | None = None
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] | None = None
    read_timeout_s: Annotated[float, Field(gt=0, le=3600)] | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not hold a user name or password")
        return value.strip().rstrip("/")


class TierBudget(_Table):
    """A `[budget.<tier>]` table: the tier's caps in USD; `false` lifts the daily or monthly one."""

    per_request_usd: Usd | None = None
    daily_usd: Usd | Literal[False] | None = None  # false: no daily limit
    monthly_usd: Usd | Literal[False] | None = None


class Budget(_Table):
    """The `[budget]` section: a table per tier."""

    free: TierBudget | None = None
    pro: TierBudget | None = None
    ultimate: TierBudget | None = None


class Hedging(_Table):
    """The `[hedging]` section: per tier, whether a model past its p95 gets the next one started."""

    free: bool | None = None
    pro: bool | None = None
    ultimate: bool | None = None


class Calls(_Table):
    """The `[calls]` section: retries per model, the longest `retry-after` waited, timeouts."""

    max_retries: Annotated[int, Field(ge=0, le=10)] | None = None
    retry_after_limit_s: Annotated[float, Field(gt=0, le=600)] | None = None
    attempt_timeout_s: Annotated[float, Field(gt=0, le=3600)] | None = None


class Cache(_Table):
    """The `[cache]` section: how long a reply is reused (0: never)."""

    ttl_s: Annotated[float, Field(ge=0, le=30 * 86400)] | None = None


class Team(_Table):
    """The `[team]` section: the offline allowance, reservations, reconnecting and shared health."""

    offline_usd: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    reservation_ttl_s: Positive | None = None
    reconnect_s: Positive | None = None
    share_health: bool | None = None
    health_refresh_s: Positive | None = None
    connect_timeout_s: Positive | None = None


class ConfigFile(_Table):
    """One config file: every section optional, `[models]` tables left for the registry to check."""

    providers: dict[str, ProviderTable] = Field(default_factory=dict)
    models: dict[str, Any] = Field(default_factory=dict)  # checked by the registry
    budget: Budget | None = None
    hedging: Hedging | None = None
    calls: Calls | None = None
    cache: Cache | None = None
    ledger_url: str | None = None
    team: Team | None = None


@dataclass(frozen=True)
class CheckedFile:
    """One file's settings as dotted keys, its `[models]` table, and what was dropped from it."""

    path: Path
    values: Mapping[str, Any]  # "budget.pro.daily_usd" -> 5.0 (None: no limit)
    models: Mapping[str, Any]
    warnings: tuple[str, ...]
    lines: Mapping[str, int]  # dotted key -> 1-based line, where found


def locate(text: str, dotted: tuple[str, ...]) -> int | None:
    """The 1-based line of `dotted` (a key or a table) in a TOML text, or None if not found.

    A plain line scan: table headers, then `key =` lines; enough to point a person at the line.
    """
    header: tuple[str, ...] = ()
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            end = line.find("]")
            if end < 0:
                continue
            header = _split(line[2 if line.startswith("[[") else 1 : end])
            if header == dotted or (header and header[: len(dotted)] == dotted):
                return number
            if best is None and dotted[: len(header)] == header and header:
                best = number
            continue
        key, sep, _ = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        full = header + _split(key)
        if full == dotted:
            return number
        if best is None and dotted[: len(full)] == full:
            best = number  # an inline table holds the key
    return best


def _split(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.strip().rstrip("]").split("."))


def _fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The names known where `loc` points (for suggestions)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = _inner(field.annotation)
        else:  # a dict of tables: the part is a name, the value type follows
            current = _inner(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner(annotation: Any) -> Any:
    """The table type inside `X | None` or `dict[str, X]`."""
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        found = _inner(arg)
        if found is not None:
            return found
    return annotation if isinstance(annotation, type) else None


def _drop(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    target: Any = data
    for part in loc[:-1]:
        target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            return
    if isinstance(target, dict):
        target.pop(loc[-1], None)


def _where(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def check(data: Mapping[str, Any], text: str, path: Path) -> CheckedFile:
    """`data` (the parsed TOML of `text`, read from `path`) checked against the schema."""
    work: dict[str, Any] = _copy(data)
    warnings: list[tuple[int, str]] = []  # (line, message): reported in file order
    for _ in range(100):  # each round drops the unknown keys pydantic found
        try:
            parsed = ConfigFile.model_validate(work)
            break
        except ValidationError as exc:
            errors = exc.errors()
            unknown = [e for e in errors if e["type"] == "extra_forbidden"]
            if len(unknown) < len(errors):
                raise _input_error(
                    next(e for e in errors if e not in unknown), text, path
                ) from None
            for err in unknown:
                loc = tuple(err["loc"])
                name = str(loc[-1])[:_SHOWN_KEY]
                known = _fields(ConfigFile, loc)
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean `{close[0]}`?" if close else f"; known: {', '.join(known)}."
                if loc[-1] == "api_key":
                    raise InputError(
                        f"{_where(path, locate(text, tuple(map(str, loc))))} holds an API key; "
                        "keys belong in the environment, never in files."
                    ) from None
                dotted = ".".join(str(p) for p in loc)
                if len(dotted) > _SHOWN_KEY:  # a repository's file may hold a 1 MB key name
                    dotted = dotted[:_SHOWN_KEY] + "…"
                line = locate(text, tuple(map(str, loc)))
                warnings.append(
                    (
                        line or 0,
                        f"{_where(path, line)}: ACE ignored the unknown key `{dotted}`{hint}",
                    )
                )
                _drop(work, loc)
    else:  # pragma: no cover - a file cannot nest 100 levels of unknown keys
        raise InputError(f"ACE's config file {path} could not be read.")
    values: dict[str, Any] = {}
    for name, table in parsed.providers.items():
        for key, value in table.model_dump(exclude_none=True).items():
            if key == "key_env" and isinstance(value, str):
                value = [value]
            values[f"providers.{name}.{key}"] = tuple(value) if key == "key_env" else value
    for section in ("budget", "hedging", "calls", "cache", "team"):
        table_model = getattr(parsed, section)
        if table_model is None:
            continue
        for key, value in table_model.model_dump(exclude_none=True).items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    values[f"{section}.{key}.{sub}"] = None if v is False else v
            else:
                values[f"{section}.{key}"] = value
    if parsed.ledger_url is not None:
        values["ledger_url"] = parsed.ledger_url
    lines = {
        key: line for key in values if (line := locate(text, tuple(key.split(".")))) is not None
    }
    return CheckedFile(path, values, parsed.models, tuple(m for _, m in sorted(warnings)), lines)


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


_UNION_TAG = re.compile(r"(constrained-|literal\[|function-|list\[|dict\[)|(float|int|str|bool)$")


def _input_error(err: Any, text: str, path: Path) -> InputError:
    loc: tuple[str, ...] = ()
    for part in map(str, err["loc"]):
        if _UNION_TAG.match(part):  # pydantic names the union member that failed: not a key
            break
        loc += (part,)
    dotted = ".".join(loc)
    where = _where(path, locate(text, loc))
    value = err.get("input")
    message = str(err["msg"]).removeprefix("Value error, ")
    if isinstance(value, float) and not math.isfinite(value):
        message = "must be a finite number"
    return InputError(f"{where}: `{dotted}` is invalid ({message}, got {value!r}).")
