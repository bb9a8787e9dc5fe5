"""`python -m bench`: run every benchmark in bench/, print its figures, and write the report.

`python -m bench` runs them all and writes bench/results.md (figure, ACE, baseline, ratio, target)
and bench/results.png (matplotlib, if installed). `python -m bench spans overhead` runs only the
benchmarks whose name contains one of the words, and writes no report (it would be partial). The
soak test (bench_soak) is not in the default run: `python -m bench soak`, or set ACE_SOAK_MINUTES
to include it. Nothing is asserted: the figures are for people to read.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

import bench
from bench.figures import Report
from bench.report import write_report

NOT_BY_DEFAULT = ("bench_soak",)


def main(argv: list[str]) -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    if argv:
        chosen = [n for n in names if any(a in n for a in argv)]
    else:
        soak = bool(os.environ.get("ACE_SOAK_MINUTES"))
        chosen = [n for n in names if soak or n not in NOT_BY_DEFAULT]
    reports: dict[str, Report] = {}
    started = time.time()
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        got = importlib.import_module(f"bench.{name}").main()
        if isinstance(got, Report):
            reports[name] = got
        print(f"({name} took {time.perf_counter() - t0:.1f} s)", flush=True)
    if argv:
        print("\n(a filtered run writes no report; `python -m bench` writes bench/results.md)")
    else:
        write_report(reports, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
