"""AceProtocol's repairs to pygls 2.1, checked in process: nothing is kept per notification or
per command."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ace_lsp.server.app import create_server
from ace_lsp.server.documents import Documents
from tests.features import find


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
    assert find(ls, Documents).get(doc["uri"]).version == 201  # type: ignore[union-attr]
    assert len(proto._request_futures) == 0


async def test_commands_leave_no_future_behind() -> None:
    """pygls runs a command (and initialized, shutdown, …) as a generator step that files the
    user's coroutine under a random id, never removed: each `workspace/executeCommand` kept its
    task and its result (found by `ace/debugStats` in the soak's test)."""
    ls = create_server()
    proto = ls.protocol
    sent: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

    @ls.command("test.echo")
    async def echo(ls: Any, *args: Any) -> list[Any]:
        await asyncio.sleep(0)
        return list(args)

    proto.set_writer(Writer())  # type: ignore[arg-type]

    def feed(obj: dict[str, Any]) -> None:
        proto.handle_message(json.loads(json.dumps(obj), object_hook=proto.structure_message))

    feed({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
    for n in range(2, 52):
        params = {"command": "test.echo", "arguments": [n]}
        feed({"jsonrpc": "2.0", "id": n, "method": "workspace/executeCommand", "params": params})
    for _ in range(20):
        await asyncio.sleep(0)
    answers = [json.loads(s.split(b"\r\n\r\n", 1)[1]) for s in sent]
    assert sorted(a["result"][0] for a in answers if a.get("id", 1) > 1) == list(range(2, 52))
    assert len(proto._request_futures) == 0
