"""A model's recent figures (`ModelStats`) and the percentile rule they are computed with.

Shared by `health` (live figures), `ledger` (figures from stored rows) and `budget` (which reads
them to advise a downgrade), so that none of those has to import another for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelStats:
    """A model's recent figures; `calls` counts the outcomes behind `success_rate` (no cancels)."""

    calls: int
    p50_ms: float | None
    p95_ms: float | None
    success_rate: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of ascending values, interpolating linearly; None when empty."""
    if not sorted_values:
        return None
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac
