"""Time the patch gate and `unified_diff` on generated Python files; prints, never asserts.

The reply is a fenced 3-hunk diff as a model writes it; the original's tree is parsed once and
passed in, as the server does, so the figures exclude that parse but include the incremental one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from ace_lsp.orchestrator.code.languages import parser, resolve
from ace_lsp.orchestrator.code.patches import unified_diff, validate
from ace_lsp.orchestrator.types import LineRange
from bench.figures import Figure, Report

RUNS = 300


def build_file(lines: int) -> str:
    """Functions of five lines each, with a little non-ASCII, until `lines` lines."""
    out: list[str] = []
    n = 0
    while len(out) < lines:
        out += [
            f"def compute_{n}(a, b):",
            f'    """Step {n}: café ☕."""',
            f"    total = a + b * {n}",
            "    return total",
            "",
        ]
        n += 1
    return "\n".join(out[:lines]) + "\n"


def edit(text: str, at: list[int]) -> str:
    lines = text.splitlines(keepends=True)
    for i in at:
        lines[i] = lines[i].replace("a + b", "(a + b)")
    return "".join(lines)


def timed(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    fn()  # warm caches (parser, regexes)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples) * 1e3, samples[min(len(samples) - 1, int(runs * 0.99))] * 1e3


def report(label: str, lines: int, at: list[int], out: Report) -> None:
    original = build_file(lines)
    new = edit(original, at)
    reply = f"Here is the fix:\n\n```diff\n{unified_diff(original, new, 'mod.py')}```\n\nDone.\n"
    spec = resolve("python")
    tree = parser(spec).parse(original.encode()) if spec else None
    whole = LineRange(0, lines - 1)

    def gate() -> object:
        return validate(original, reply, whole, path="mod.py", original_tree=tree)

    if validate(original, reply, whole, path="mod.py", original_tree=tree).new_text != new:
        print(f"validate  {label}: WRONG RESULT, figures below are meaningless")
    med, p99 = timed(gate)
    print(f"validate  {label:<34} median {med:6.3f} ms   p99 {p99:6.3f} ms")
    out.add(Figure(f"patch gate (validate), {label}: median", med))
    out.add(Figure(f"patch gate (validate), {label}: p99", p99))
    med, p99 = timed(lambda: unified_diff(original, new, "mod.py"))
    print(f"unified_diff {label:<31} median {med:6.3f} ms   p99 {p99:6.3f} ms")


def main() -> Report:
    out = Report()
    print(f"{RUNS} runs each; 3 hunks; original tree passed in")
    report("300 lines", 300, [72, 152, 232], out)
    report("5,000 lines, hunks within 60 lines", 5000, [2502, 2527, 2557], out)
    report("5,000 lines, hunks spread over file", 5000, [1002, 2502, 4002], out)
    return out


if __name__ == "__main__":
    main()
