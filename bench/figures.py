"""What a benchmark's `main()` returns besides printing: rows for bench/results.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    """One row of the report. `baseline` is the alternative measured side by side in the same run
    (raw httpx, LiteLLM, hedging off, …), named in `versus`; the ratio is ace / baseline."""

    name: str
    ace: float
    baseline: float | None = None
    unit: str = "ms"
    target: str | None = None
    versus: str | None = None  # what the baseline is
    lower_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ace / self.baseline


@dataclass
class Report:
    """Rows plus raw series for the plots (e.g. latency samples), keyed by a plot name."""

    figures: list[Figure] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)

    def add(self, *figures: Figure) -> None:
        self.figures.extend(figures)
