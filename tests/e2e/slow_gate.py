"""`ace serve` with a slow patch gate, for tests that must see the server work while it checks.

Each patch check first keeps the CPU busy with Python code for ACE_TEST_GATE_S seconds, as a
check of a huge or hostile reply would, after creating the file ACE_TEST_GATE_MARK (so a test
knows the check has begun); ACE_TEST_CHECK_LIMIT_S, when set, replaces the checks' time limit.
Run as `python -m tests.e2e.slow_gate` from the repository root.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ace_lsp.orchestrator import caps
from ace_lsp.orchestrator.code import patches
from ace_lsp.server.cli import main

_validate = patches.validate


def _slow_validate(*args: Any, **kwargs: Any) -> patches.Patch:
    Path(os.environ["ACE_TEST_GATE_MARK"]).touch()
    end = time.perf_counter() + float(os.environ["ACE_TEST_GATE_S"])
    while time.perf_counter() < end:
        pass
    return _validate(*args, **kwargs)


if __name__ == "__main__":
    patches.validate = _slow_validate  # type: ignore[assignment]
    if "ACE_TEST_CHECK_LIMIT_S" in os.environ:
        caps.CHECK_TIMEOUT_S = float(os.environ["ACE_TEST_CHECK_LIMIT_S"])
    sys.exit(main(["serve"]))
