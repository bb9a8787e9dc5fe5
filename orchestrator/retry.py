"""The retry policy, as pure functions: which errors to retry, and how long to wait.

As the OpenAI and Anthropic SDKs do: honour `retry-after-ms` / `retry-after` up to a bound, else
min(0.5 · 2ⁿ, 8) s with jitter. One retry layer only: providers never retry; `call.py` does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 60.0
BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait from `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000, 0.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(raw).timestamp() - now(), 0.0)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def backoff_delay(retry: int, rand: Callable[[], float] = random.random) -> float:
    """Delay before retry `retry` (1-based): min(0.5 · 2^(n-1), 8) s, minus up to 25% jitter."""
    base: float = min(BASE_DELAY_S * 2.0 ** (retry - 1), MAX_DELAY_S)
    return base * (1 - 0.25 * rand())


def retry_delay(
    retry: int,
    retry_after: float | None,
    *,
    limit: float = MAX_RETRY_AFTER_S,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """How long to wait before retry `retry`; None when the server asks for longer than `limit`."""
    if retry_after is not None:
        return retry_after if retry_after <= limit else None
    return backoff_delay(retry, rand)
