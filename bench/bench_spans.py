"""Time span extraction on a generated 10,000-line Python file; prints figures, asserts nothing."""

from __future__ import annotations

import random
import statistics
import time

from ace_lsp.orchestrator.code import spans
from ace_lsp.orchestrator.code.source import Source
from ace_lsp.orchestrator.types import Position, TextRange
from bench.figures import Figure, Report

LINES = 10_000
RANGES = 1_000
NO_TREE_RUNS = 20


def build_file(lines: int = LINES) -> str:
    """Classes with decorated methods and nested helpers, plus module-level functions and code."""
    out: list[str] = ["import os", "import sys", ""]
    n = 0
    while len(out) < lines:
        out += [
            "",
            f"@register('cls{n}')",
            f"class Service{n}(Base):",
            f'    """Service number {n}: café ☕."""',
            "",
            f"    limit = {n}",
            "",
            "    def __init__(self, value):",
            "        self.value = value",
            "",
            "    @property",
            "    def doubled(self):",
            "        def helper(x):",
            "            return x * 2",
            "        return helper(self.value)",
            "",
            "    async def fetch(self, url):",
            "        for attempt in range(3):",
            "            if attempt:",
            "                await sleep(attempt)",
            "        return await get(url, timeout=self.limit)",
            "",
            "",
            f"def function_{n}(a, b=1):",
            "    total = 0",
            "    for i in range(a):",
            "        total += i * b",
            "    return total",
            "",
            f"CONSTANT_{n} = function_{n}(3)",
        ]
        n += 1
    return "\n".join(out[:lines]) + "\n"


def random_ranges(source: Source, count: int, seed: int = 7) -> list[TextRange]:
    """Ranges of one to three lines starting anywhere, like diagnostics spread over a file."""
    rng = random.Random(seed)
    ranges: list[TextRange] = []
    last = source.line_count - 1
    for _ in range(count):
        line = rng.randint(0, last)
        end_line = min(line + rng.randint(0, 2), last)
        start = Position(line, rng.randint(0, len(source.line_text(line))))
        end = Position(end_line, rng.randint(0, len(source.line_text(end_line))))
        ranges.append(TextRange(start, max(start, end)))
    return ranges


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(fraction * len(ordered)), len(ordered) - 1)]


def main() -> Report:
    text = build_file()
    source = Source(text)

    t0 = time.perf_counter()
    tree = spans.parse(source, "python")
    parse_ms = (time.perf_counter() - t0) * 1000
    if tree is None:
        raise SystemExit("no Python grammar installed")

    ranges = random_ranges(source, RANGES)
    times: list[float] = []
    kinds: dict[str, int] = {}
    for rng in ranges:
        t0 = time.perf_counter()
        span = spans.extract(source, "python", rng, tree=tree)
        times.append((time.perf_counter() - t0) * 1000)
        kinds[span.kind] = kinds.get(span.kind, 0) + 1

    no_tree: list[float] = []
    for rng in ranges[:NO_TREE_RUNS]:
        t0 = time.perf_counter()
        spans.extract(source, "python", rng)
        no_tree.append((time.perf_counter() - t0) * 1000)

    print(f"file: {source.line_count} lines, {len(source.data):,} bytes")
    print(f"full parse:               {parse_ms:8.2f} ms")
    print(f"extract with tree ({RANGES}):  median {statistics.median(times) * 1000:7.1f} µs")
    print(f"                           p99    {percentile(times, 0.99) * 1000:7.1f} µs")
    print(f"                           max    {max(times) * 1000:7.1f} µs")
    print(f"extract without tree ({NO_TREE_RUNS}): median {statistics.median(no_tree):6.2f} ms")
    print("kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    report = Report()
    report.add(
        Figure(
            "span extraction, 10,000 lines, tree given: median",
            statistics.median(times) * 1000,
            statistics.median(no_tree) * 1000,
            "µs",
            None,
            "without tree (full parse)",
        ),
        Figure(
            "span extraction, 10,000 lines, tree given: p99",
            percentile(times, 0.99) * 1000,
            unit="µs",
        ),
        Figure("full parse, 10,000 lines", parse_ms),
    )
    return report


if __name__ == "__main__":
    main()
