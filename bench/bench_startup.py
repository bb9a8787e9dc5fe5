"""`ace serve` from spawn to the `initialize` answer, and its memory once initialized.

Target from issue 4: spawn-to-initialize < 600 ms (imports are lazy: no model client is loaded
for a provider without a key).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import IO

from bench.figures import Figure, Report

RUNS = 10


def _send(stdin: IO[bytes], obj: dict[str, object]) -> None:
    body = json.dumps(obj).encode()
    stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    stdin.flush()


def _read(stdout: IO[bytes]) -> dict[str, object]:
    length = 0
    while line := stdout.readline().strip():
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    message: dict[str, object] = json.loads(stdout.read(length))
    return message


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> Report:
    times, rss = [], []
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env["ACE_HOME"] = home
        for _ in range(RUNS):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "ace_lsp.server"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            assert proc.stdin is not None and proc.stdout is not None
            _send(
                proc.stdin,
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"processId": os.getpid(), "capabilities": {}},
                },
            )
            while _read(proc.stdout).get("id") != 1:
                pass
            times.append((time.perf_counter() - t0) * 1000)
            _send(proc.stdin, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
            _read(proc.stdout)  # the first ace/budget: the orchestrator is open
            rss.append(_rss_kb(proc.pid) / 1024)
            _send(proc.stdin, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
            _send(proc.stdin, {"jsonrpc": "2.0", "method": "exit"})
            proc.wait(timeout=10)
    print(
        f"spawn to initialize answer, {RUNS} runs: median {statistics.median(times):.0f} ms, "
        f"max {max(times):.0f} ms (target < 600 ms)"
    )
    print(f"RSS once initialized (no API key): median {statistics.median(rss):.1f} MB")
    report = Report()
    report.add(
        Figure(
            "`ace serve` spawn to initialize answer", statistics.median(times), target="< 600 ms"
        ),
        Figure("`ace serve` RSS once initialized", statistics.median(rss), unit="MB"),
    )
    return report


if __name__ == "__main__":
    main()
