"""The server's pure parts: settings parsing and position conversion between encodings."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp

from ace_lsp.orchestrator.budget import Budget
from ace_lsp.orchestrator.types import Position, RiskLevel, TaskType, Tier
from ace_lsp.server.positions import from_client, to_client
from ace_lsp.server.settings import Settings, parse_settings

LINES = ['s = "é😀x"\n', "plain\n"]


@pytest.mark.parametrize(
    ("encoding", "client", "utf16"),
    [
        pytest.param("utf-16", 7, 7, id="utf16-identity"),
        pytest.param("utf-8", 5, 5, id="utf8-ascii-prefix"),
        pytest.param("utf-8", 7, 6, id="utf8-after-e-acute"),
        pytest.param("utf-8", 11, 8, id="utf8-after-emoji"),
        pytest.param("utf-32", 7, 8, id="utf32-after-emoji"),
        pytest.param("utf-32", 99, 10, id="utf32-clamped"),
    ],
)
def test_positions_round_trip(encoding: str, client: int, utf16: int) -> None:
    pos = from_client(LINES, lsp.Position(0, client), encoding)
    assert pos == Position(0, utf16)
    if client != 99:
        assert to_client(LINES, pos, encoding) == lsp.Position(0, client)


@pytest.mark.parametrize(
    ("raw", "expected", "problems"),
    [
        pytest.param(None, Settings(), 0, id="none"),
        pytest.param({}, Settings(), 0, id="empty"),
        pytest.param(
            {"tier": "pro", "userId": "ana", "riskLevel": "conservative", "other": 1},
            Settings(tier=Tier.PRO, user_id="ana", risk_level=RiskLevel.CONSERVATIVE),
            1,  # "other" is unknown: reported, ignored
            id="all-set",
        ),
        pytest.param(
            {"tier": "gold", "userId": "ana"}, Settings(user_id="ana"), 1, id="bad-tier-reset"
        ),
        pytest.param({"tier": "gold", "riskLevel": 3}, Settings(), 2, id="two-bad"),
        pytest.param(["tier"], Settings(), 1, id="not-an-object"),
    ],
)
def test_settings(raw: Any, expected: Settings, problems: int) -> None:
    settings, messages = parse_settings(raw)
    assert settings == expected
    assert len(messages) == problems
    assert all((m.endswith(".") and "ACE setting" in m) or "ACE settings" in m for m in messages)


def test_null_in_a_later_source_resets_a_setting() -> None:
    settings, problems = parse_settings({"dailyBudget": 3, "tier": "pro"}, {"dailyBudget": None})
    assert settings.daily_budget is None and settings.tier is Tier.PRO and problems == []


def test_a_misspelt_setting_is_reported() -> None:
    settings, problems = parse_settings({"userid": "ana", "trace": {"server": "off"}})
    assert settings.user_id == "local"
    assert problems == [
        "ACE setting 'userid' is unknown, so it was ignored; ACE knows: dailyBudget, hedging, "
        "hoverReview, maskSecrets, models, monthlyBudget, prefetch, riskLevel, tier, userId."
    ]


# A repository's .vscode/settings.json arrives under "workspace": it may only tighten.
@pytest.mark.parametrize(
    ("user", "workspace", "expect", "refused"),
    [
        pytest.param({"tier": "pro"}, {"tier": "ultimate"}, {"tier": Tier.PRO}, True, id="tier-up"),
        pytest.param({"tier": "pro"}, {"tier": "free"}, {"tier": Tier.FREE}, False, id="tier-down"),
        pytest.param({}, {"riskLevel": "aggressive"}, {}, True, id="risk-up"),
        pytest.param({}, {"riskLevel": "conservative"}, {}, False, id="risk-down"),
        pytest.param({}, {"hoverReview": "auto"}, {"hover_review": "cached"}, True, id="hover-up"),
        pytest.param({}, {"hoverReview": "off"}, {"hover_review": "off"}, False, id="hover-off"),
        pytest.param({}, {"prefetch": True}, {"prefetch": False}, True, id="prefetch-on"),
        pytest.param({"prefetch": True}, {"prefetch": False}, {"prefetch": False}, False, id="pf"),
        pytest.param({}, {"hedging": True}, {"hedging": None}, True, id="hedging-on"),
        pytest.param({}, {"hedging": False}, {"hedging": False}, False, id="hedging-off"),
        pytest.param({}, {"maskSecrets": False}, {"mask_secrets": True}, True, id="unmask"),
        pytest.param({}, {"userId": "victim"}, {"user_id": "local"}, True, id="user-id"),
        pytest.param({}, {"models": {"AUTO_FIX": "claude-3-opus"}}, {"models": {}}, True, id="m"),
        pytest.param({}, {"dailyBudget": 1e9}, {"workspace_daily_cap": 1e9}, False, id="cap"),
        pytest.param({}, {"tier": "gold"}, {"tier": Tier.FREE}, True, id="invalid"),
    ],
)
def test_workspace_settings_only_tighten(
    user: dict[str, Any], workspace: dict[str, Any], expect: dict[str, Any], refused: bool
) -> None:
    settings, problems = parse_settings({**user, "workspace": workspace})
    for name, value in expect.items():
        assert getattr(settings, name) == value
    assert bool(problems) is refused
    if refused:
        assert "may only tighten" in problems[0] and repr(next(iter(workspace))) in problems[0]


def test_a_workspace_budget_only_lowers_the_users() -> None:
    budget = Budget()  # the tiers' defaults: free $0.50 a day, $5 a month
    settings, _ = parse_settings({"workspace": {"dailyBudget": 1e9, "monthlyBudget": 1}})
    options = settings.call_options(TaskType.AUTO_FIX, budget)
    assert (options.daily_usd, options.monthly_usd) == (0.50, 1)
    settings, _ = parse_settings({"dailyBudget": 2, "workspace": {"dailyBudget": 0.25}})
    assert settings.call_options(TaskType.AUTO_FIX, budget).daily_usd == 0.25
    settings, _ = parse_settings({"dailyBudget": 2})
    assert settings.call_options(TaskType.AUTO_FIX, budget).daily_usd == 2  # the user's own
