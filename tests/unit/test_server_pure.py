"""The server's pure parts: settings parsing and position conversion between encodings."""

from __future__ import annotations

from typing import Any

import pytest
from lsprotocol import types as lsp

from ace_lsp.orchestrator.types import Position, RiskLevel, Tier
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
