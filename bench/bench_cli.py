"""`ace fix` end to end, as a user runs it: process start, ruff, the local fixer and the gate.

Also splits out what the interpreter start-up and imports cost, since they dominate.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.figures import Figure, Report

RUNS = 15
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "broken.py"


def _time(cmd: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append((time.perf_counter() - t0) * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return times


def main() -> Report:
    fix = _time([sys.executable, "-m", "ace_lsp.server", "fix", str(SAMPLE)])
    imports = _time(
        [
            sys.executable,
            "-c",
            "import ace_lsp.server.cli, ace_lsp.orchestrator.ace,"
            " ace_lsp.orchestrator.providers.local",
        ]
    )
    bare = _time([sys.executable, "-c", "pass"])
    print(f"`ace fix samples/broken.py` ({RUNS} runs, diff printed, file untouched):")
    print(f"  wall time median {statistics.median(fix):.0f} ms   max {max(fix):.0f} ms")
    print(
        f"  of which Python start-up {statistics.median(bare):.0f} ms, "
        f"start-up + imports {statistics.median(imports):.0f} ms"
    )
    report = Report()
    report.add(
        Figure(
            "`ace fix samples/broken.py` wall time",
            statistics.median(fix),
            statistics.median(bare),
            "ms",
            None,
            "bare interpreter",
        ),
    )
    return report


if __name__ == "__main__":
    main()
