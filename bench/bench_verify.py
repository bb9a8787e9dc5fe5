"""Latency ruff verification adds after the patch gate (issue 14 §1): a 2,000-line Python file, an
E711 fixed, the verdict computed 20 times after one warm-up. Prints, never asserts (target:
under 50 ms)."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from ace_lsp.orchestrator.code import patches
from ace_lsp.orchestrator.code.verify import verify
from ace_lsp.orchestrator.types import CodeIssue, LineRange, Position, TextRange
from bench.figures import Figure, Report

RUNS = 20


def main() -> Report:
    lines = ["import os", ""]
    for i in range(400):
        lines += [f"def f{i}(a, b):", f"    x = a + b * {i}", "    return x", "", ""]
    lines[-3] = "    return x == None"
    original = "\n".join(lines) + "\n"
    count = original.count("\n")
    fixed = original.replace("x == None", "x is None")
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ruff.toml").write_text('[lint]\nselect = ["E", "F"]\n')
        path = str(Path(folder) / "big.py")
        diff = patches.unified_diff(original, fixed, "big.py")
        started = time.perf_counter()
        patch = patches.validate(original, diff, (LineRange(0, count - 1),), path=path)
        gate_ms = (time.perf_counter() - started) * 1000
        line = next(i for i, text in enumerate(lines) if "== None" in text)
        target = CodeIssue(TextRange(Position(line, 11), Position(line, 15)), "m", "E711", "ruff")
        verify(original, patch, path, None, [target])  # warm: ruff's lookup, the page cache
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            verdict = verify(original, patch, path, None, [target])
            times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    print(f"{count} lines; {verdict.message}")
    print(
        f"verify: median {median:.1f} ms, max {max(times):.1f} ms; the gate alone {gate_ms:.1f} ms"
    )
    report = Report()
    report.add(Figure("ruff verification, 2,000-line file: median", median, gate_ms, "ms",
                      "< 50 ms", "the patch gate alone"))  # fmt: skip
    return report
