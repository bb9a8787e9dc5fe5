"""AceProtocol's repairs to pygls 2.1, checked in process: nothing is kept per notification."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from server.app import create_server


async def test_notifications_leave_no_future_behind() -> None:
    """pygls filed one future per didOpen/didChange/… under a random id, never removed (a leak
    of ~2 KB per keystroke, found by the soak)."""
    ls = create_server()
    proto = ls.protocol
    sent: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

    proto.set_writer(Writer())  # type: ignore[arg-type]

    def feed(obj: dict[str, Any]) -> None:
        proto.handle_message(json.loads(json.dumps(obj), object_hook=proto.structure_message))

    feed({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    text = "import os\n"
    doc = {"uri": "file:///tmp/a.py", "languageId": "python", "version": 1, "text": text}
    feed({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": doc}})
    for version in range(2, 202):
        change = {
            "textDocument": {"uri": doc["uri"], "version": version},
            "contentChanges": [{"text": text + "#" * (version % 5)}],
        }
        feed({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": change})
        await asyncio.sleep(0)
    for _ in range(10):
        await asyncio.sleep(0)
    assert ls.documents.get(doc["uri"]).version == 201  # type: ignore[union-attr]
    assert len(proto._request_futures) == 0
