"""The retry policy's pure parts: reading retry-after headers and the backoff delays."""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.retry import backoff_delay, parse_retry_after, retry_delay

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, None, id="none"),
        pytest.param({"retry-after": "7"}, 7.0, id="seconds"),
        pytest.param({"Retry-After": "1.5"}, 1.5, id="fraction-any-case"),
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after-ms": "250", "retry-after": "9"}, 0.25, id="ms-wins"),
        pytest.param({"retry-after-ms": "soon", "retry-after": "9"}, 9.0, id="bad-ms-falls-back"),
        pytest.param({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0, id="http-date"),
        pytest.param({"retry-after": "Tue, 14 Nov 2023 22:00:00 GMT"}, 0.0, id="date-in-the-past"),
        pytest.param({"retry-after": "-3"}, 0.0, id="negative"),
        pytest.param({"retry-after": "whenever"}, None, id="garbage"),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=lambda: NOW) == expected


@pytest.mark.parametrize(
    ("retry", "rand", "expected"),
    [
        pytest.param(1, 0.0, 0.5, id="first-no-jitter"),
        pytest.param(1, 1.0, 0.375, id="first-full-jitter"),
        pytest.param(2, 0.0, 1.0, id="second"),
        pytest.param(3, 0.0, 2.0, id="third"),
        pytest.param(5, 0.0, 8.0, id="capped"),
        pytest.param(9, 0.5, 7.0, id="capped-jitter"),
    ],
)
def test_backoff_delay(retry: int, rand: float, expected: float) -> None:
    assert backoff_delay(retry, rand=lambda: rand) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("retry_after", "limit", "expected"),
    [
        pytest.param(None, 60.0, 1.0, id="backoff-when-no-header"),
        pytest.param(3.0, 60.0, 3.0, id="header-honoured"),
        pytest.param(60.0, 60.0, 60.0, id="at-the-bound"),
        pytest.param(61.0, 60.0, None, id="beyond-the-bound-give-up"),
    ],
)
def test_retry_delay(retry_after: float | None, limit: float, expected: float | None) -> None:
    assert retry_delay(2, retry_after, limit=limit, rand=lambda: 0.0) == expected
