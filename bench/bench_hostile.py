"""Time ACE's readers on hostile input (issue 12): the secret masker, the reply parser and the
patch gate on what a repository, a model or a diagnostic can hand them. Prints, never asserts;
tests/unit/test_adversarial.py and test_secrets.py hold the generous pass/fail bounds.

Before issue 12 (same kind of machine): a 100 KB blank line in a reply took the diff parser
21-144 s, a 200 KB base64 run took the masker 20 s, a PEM block without END 4 KB long 161 s,
a hunk adding 1,000,000 lines 11-57 s and 1.2 GB.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from ace_lsp.orchestrator.code import diff_text, patches, secrets
from ace_lsp.orchestrator.errors import PatchError
from ace_lsp.orchestrator.types import LineRange
from bench.figures import Figure, Report

KB = 1000


def _time(fn: Callable[[], object]) -> float:
    """Milliseconds for one call (the inputs are large: one call is the figure)."""
    t0 = time.perf_counter()
    with contextlib.suppress(PatchError):  # a refusal is the patch-gate inputs' expected end
        fn()
    return (time.perf_counter() - t0) * 1000


def _gate(reply: str) -> Callable[[], object]:
    return lambda: patches.validate(
        "x = 1\n", reply, LineRange(0, 0), path="f.py", language="python"
    )


def main() -> Report:
    base64_run = ("QUJD" * 50 * KB)[: 200 * KB]
    cases: list[tuple[str, Callable[[], object]]] = [
        ("mask: 200 KB base64 run", lambda: secrets.mask(f'blob = "{base64_run}"\n')),
        ("mask: pwd_ x 16k", lambda: secrets.mask("pwd_" * 16_384)),
        (
            "mask: PEM without END, 100 KB",
            lambda: secrets.mask("-----BEGIN RSA PRIVATE KEY-----\n" + "n" * 100 * KB),
        ),
        ("mask: 1 MB of spaces", lambda: secrets.mask(" " * 1000 * KB)),
        (
            "reply: 100 KB blank line in a fence",
            lambda: diff_text.parse_reply("```diff\n" + " " * 100 * KB + "\n```\n"),
        ),
        (
            "reply: header with 100 KB of spaces",
            lambda: diff_text.parse_reply("--- a/f.py" + " " * 100 * KB + "x\n+++ b/f.py\n"),
        ),
        (
            "gate: hunk adding 1,000,000 lines",
            _gate("--- a/f.py\n+++ b/f.py\n@@ -1,1 +1,1000001 @@\n x = 1\n" + "+y\n" * 1_000_000),
        ),
        ("gate: bare 1,000,000 added lines", _gate("```diff\n x = 1\n" + "+y\n" * 1_000_000)),
    ]
    report = Report()
    for name, fn in cases:
        ms = min(_time(fn) for _ in range(3))
        print(f"{name}: {ms:.1f} ms")
        report.add(Figure(name, ms, unit="ms", target="< 1000 ms (linear)"))
    return report
