"""Request `ace/debugStats`: the server's own resource figures, for diagnostics and the soak bench.

It answers `{"rss_bytes", "open_fds", "tasks_pending", "request_futures", "threads"}`: resident
memory, open file descriptors (None where /proc is missing, as is RSS), asyncio tasks alive and
pygls' pending request futures, both not counting this request's own, and Python threads. It is
cheap (a few /proc reads, no orchestrator), so `bench/bench_soak.py` can poll it all run long to
see memory, descriptors or tasks leak. Editors have no use for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

from ace_lsp.server.base import AceServer, Feature

METHOD = "ace/debugStats"


@dataclasses.dataclass(frozen=True)
class Stats:
    rss_bytes: int | None
    open_fds: int | None
    tasks_pending: int
    request_futures: int
    threads: int


def rss_bytes() -> int | None:
    """Resident set size now (not the peak `getrusage` reports); None without /proc."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))  # counts the listing's own fd too: constant
    except OSError:
        return None


def snapshot(server: AceServer) -> Stats:
    me: object = asyncio.current_task()  # pygls files it among the futures too
    futures = server.protocol._request_futures
    return Stats(
        rss_bytes=rss_bytes(),
        open_fds=open_fds(),
        tasks_pending=sum(1 for t in asyncio.all_tasks() if t is not me),
        request_futures=sum(1 for f in list(futures.values()) if f is not me),
        threads=threading.active_count(),
    )


class DebugStats(Feature):
    name = "debug stats"

    def __init__(self, server: AceServer) -> None:
        self.server = server

    def register(self) -> None:
        @self.server.feature(METHOD)
        async def debug_stats(params: Any) -> dict[str, Any]:
            # async on purpose: pygls runs it as its own task, which is then the one left out
            return dataclasses.asdict(snapshot(self.server))
