"""What every fake vendor shares: a real HTTP server on 127.0.0.1, recorded requests, faults.

A vendor module builds a Starlette app from a `FakeVendor` (its exact bodies, headers, error
bodies and SSE events) and reads the next `Fault` scripted for the requested model. `serve()`
runs that app under uvicorn in a background thread on an ephemeral port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette


@dataclass(frozen=True)
class Fault:
    """What the fake does for one request; the default is a normal, successful reply."""

    status: int | None = None  # answer with this status and the vendor's error body for it
    # a vendor-specific error flavour the vendor module knows: "insufficient_quota",
    # "overloaded", "context_length", "daily_quota", "auth", …
    kind: str | None = None
    retry_after: str | None = None  # `retry-after` header value
    retry_after_ms: str | None = None  # `retry-after-ms` header value
    delay_s: float = 0.0  # wait before answering (read timeouts, hedging)
    raw_body: str | None = None  # send exactly this body with status 200 (malformed JSON)
    text: str | None = None  # the reply's content; None: the vendor's `default_text`
    empty: bool = False  # a successful reply with empty content
    cut_after: int | None = None  # streaming: drop the connection after this many events
    error_event: bool = False  # streaming: an error event mid-stream (Anthropic overloaded_error)
    usage: tuple[int, int] = (12, 34)  # (input, output) tokens reported


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: Any


@dataclass
class FakeVendor:
    """Requests seen and faults to play, per model; the vendor module turns them into replies."""

    default_text: str = "Hello from the fake."
    requests: list[Recorded] = field(default_factory=list)
    _faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    def inject(self, model: str, *faults: Fault) -> None:
        """Play these faults, in order, on the next requests for `model` ("*" = any model)."""
        self._faults[model].extend(faults)

    def next_fault(self, model: str) -> Fault:
        for key in (model, "*"):
            queue = self._faults.get(key)
            if queue:
                return queue.popleft()
        return Fault()

    def record(self, rec: Recorded) -> None:
        self.requests.append(rec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread: leave signals alone
        pass


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run `app` on 127.0.0.1 in a background thread; yields its base URL (no trailing slash)."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def pause(fault: Fault) -> None:
    if fault.delay_s:
        await asyncio.sleep(fault.delay_s)
