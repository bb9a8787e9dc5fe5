"""Hostile bytes on the JSON-RPC stream of the real `ace serve`: broken framing, invalid JSON,
JSON that is not a message, wrong param types, a huge payload, unknown methods, requests after
shutdown. The server answers a JSON-RPC error wherever a request deserves an answer, stays silent
for notifications, and stays up: a well-formed request right after still gets its answer.

The client here is raw stdio: it writes the Content-Length frames itself, so it can break them.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SERVER, server_env

BUDGET = "ace.budget"
SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
WAIT_S = 10.0  # for an answer that must come
QUIET_S = 0.5  # for an answer that must not come
STUCK_S = 4.0  # for the answer after broken framing (it takes milliseconds when it comes)
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INVALID_REQUEST_LSP = -32600
SERVER_NOT_INITIALIZED = -32002


def frame(body: bytes | str) -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return b"Content-Length: %d\r\n\r\n%s" % (len(data), data)


def message(obj: Any) -> bytes:
    return frame(json.dumps(obj, separators=(",", ":")))


class RawServer:
    """`python -m ace_lsp.server` on pipes; a thread splits its stdout into messages."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen(
            SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=server_env(home),
        )
        self.inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.stderr = bytearray()
        self.next_id = 0
        self.bad_frames: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr += line

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        try:
            while True:
                length = None
                while True:
                    line = out.readline()
                    if not line:
                        return
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    self.bad_frames.append(line)
                    continue
                body = out.read(length)
                msg = json.loads(body)
                if isinstance(msg, dict) and "method" in msg and "id" in msg:
                    self._answer(msg)
                self.inbox.put(msg)
        finally:
            self.inbox.put(None)

    def _answer(self, msg: dict[str, Any]) -> None:
        """Answer the server's own requests as a plain editor would."""
        result: Any = None
        if msg["method"] == "workspace/configuration":
            result = [None for _ in msg.get("params", {}).get("items", [])]
        self.send(message({"jsonrpc": "2.0", "id": msg["id"], "result": result}))

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def request(self, method: str, params: Any = None, *, omit_params: bool = False) -> int:
        self.next_id += 1
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if not omit_params:
            msg["params"] = params
        self.send(message(msg))
        return self.next_id

    def notify(self, method: str, params: Any = None) -> None:
        self.send(message({"jsonrpc": "2.0", "method": method, "params": params}))

    def responses(self, timeout: float) -> Iterator[dict[str, Any]]:
        """Responses (not notifications, not server requests) arriving within `timeout`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.inbox.get(timeout=left)
            except queue.Empty:
                return
            if msg is None:
                raise AssertionError(f"the server closed its output; stderr:\n{self.tail()}")
            if "method" not in msg:
                yield msg

    def answer(self, msg_id: Any, timeout: float = WAIT_S) -> dict[str, Any]:
        for msg in self.responses(timeout):
            if msg.get("id") == msg_id:
                return msg
        raise AssertionError(
            f"no answer to request {msg_id!r} in {timeout}s; stderr:\n{self.tail()}"
        )

    def silence(self, timeout: float = QUIET_S) -> list[dict[str, Any]]:
        """Every response that arrives in `timeout`: a notification deserves none."""
        return list(self.responses(timeout))

    def alive(self, timeout: float = WAIT_S) -> None:
        """A well-formed request right now gets its correct answer."""
        reply = self.answer(self.request("workspace/executeCommand", {"command": BUDGET}), timeout)
        assert "error" not in reply, reply
        assert isinstance(reply["result"], dict)
        assert "tier" in reply["result"], reply

    def tail(self) -> str:
        return self.stderr.decode(errors="replace")[-3000:]

    def initialize(self) -> None:
        reply = self.answer(
            self.request(
                "initialize",
                {"processId": None, "rootUri": None, "capabilities": {}},
            )
        )
        assert "result" in reply, reply
        self.notify("initialized", {})

    def finish(self) -> int:
        """shutdown, exit: the exit code."""
        reply = self.answer(self.request("shutdown"))
        assert reply.get("result", "missing") is None, reply
        self.notify("exit")
        return self.proc.wait(timeout=WAIT_S)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RawServer]:
    srv = RawServer(tmp_path / "home")
    try:
        srv.initialize()
        yield srv
    finally:
        srv.kill()
        for pipe in (srv.proc.stdin, srv.proc.stdout, srv.proc.stderr):
            with contextlib.suppress(Exception):
                pipe.close()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawServer]:
    """One server for the cases that must not disturb it; it must still exit cleanly at the end."""
    srv = RawServer(tmp_path_factory.mktemp("shared") / "home")
    try:
        srv.initialize()
        yield srv
        assert srv.finish() == 0
    finally:
        srv.kill()


def budget_request(msg_id: int) -> bytes:
    return message(
        {
            "jsonrpc": "2.0",
            "id": msg_id,
            "method": "workspace/executeCommand",
            "params": {"command": BUDGET},
        }
    )


def assert_error(reply: dict[str, Any], *codes: int) -> None:
    assert "result" not in reply, reply
    error = reply.get("error")
    assert isinstance(error, dict), reply
    assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), reply
    if codes:
        assert error["code"] in codes, reply


# --- framing ---------------------------------------------------------------------------------

BODY = json.dumps({"jsonrpc": "2.0", "method": "ace/unknownNotification", "params": {}}).encode()
FRAMING = [
    pytest.param(b"Content-Length: 0\r\n\r\n", id="zero-length"),
    pytest.param(
        b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n%s"
        % (len(BODY), BODY),
        id="with-content-type",
    ),
    pytest.param(b"Content-Type: text/plain\r\n\r\n" + BODY + b"\r\n", id="no-length-newline-body"),
    pytest.param(b"\r\n\r\n\r\n", id="blank-lines"),
    pytest.param(b"garbage line\r\n", id="garbage-line"),
    pytest.param(b"Content-Type: text/plain\r\n\r\n" + BODY, id="no-length"),
    pytest.param(b"Content-Length: abc\r\n\r\n" + BODY, id="length-not-a-number"),
    pytest.param(b"Content-Length: -5\r\n\r\n" + BODY, id="length-negative"),
    pytest.param(b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY), id="length-header-lowercase"),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY) + 40, BODY), id="length-longer-than-body"
    ),
    pytest.param(
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY) + 100_000, BODY),
        id="length-longer-than-all-that-follows",
    ),
    pytest.param(b"Content-Length: 99999999999\r\n\r\n" + BODY, id="length-huge"),
]


@pytest.mark.parametrize("data", FRAMING)
def test_broken_framing_leaves_the_server_listening(server: RawServer, data: bytes) -> None:
    server.send(data)
    assert server.silence() == []  # a broken frame has no id to answer
    # a well-formed request right after, then a few more: the stream is in sync again
    for _ in range(3):
        server.alive(timeout=STUCK_S)
    assert server.finish() == 0


# --- bodies that are not JSON-RPC messages ---------------------------------------------------

NOT_MESSAGES = [
    pytest.param(b"{not json", PARSE_ERROR, id="invalid-json"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "x"', PARSE_ERROR, id="truncated-json"),
    pytest.param(b"\xff\xfe{}", PARSE_ERROR, id="not-utf8"),
    pytest.param(b"[1, 2]", INVALID_REQUEST, id="array"),
    pytest.param(b"[]", INVALID_REQUEST, id="empty-array"),
    pytest.param(b"42", INVALID_REQUEST, id="number"),
    pytest.param(b'"hello"', INVALID_REQUEST, id="string"),
    pytest.param(b"null", INVALID_REQUEST, id="null"),
    pytest.param(b"{}", INVALID_REQUEST, id="empty-object"),
    pytest.param(
        b'{"id": 77, "method": "workspace/executeCommand"}', INVALID_REQUEST, id="no-jsonrpc"
    ),
    pytest.param(
        b'{"jsonrpc": "2.0", "id": 78, "method": 5}', INVALID_REQUEST, id="method-not-a-string"
    ),
]


@pytest.mark.parametrize(
    ("body", "code"),
    [pytest.param(*p.values, id=p.id) for p in NOT_MESSAGES],  # no xfail marks
)
def test_not_a_message_leaves_the_server_up(shared: RawServer, body: bytes, code: int) -> None:
    shared.send(frame(body))
    shared.alive()


@pytest.mark.parametrize(("body", "code"), NOT_MESSAGES)
def test_not_a_message_gets_a_jsonrpc_error(shared: RawServer, body: bytes, code: int) -> None:
    shared.send(frame(body))
    replies = shared.silence(1.0)
    assert replies, "no error response"
    assert_error(replies[0], code)
    assert replies[0].get("id") in (None, 77, 78), replies


# --- real methods with params of the wrong types ---------------------------------------------

POS = {"line": 0, "character": 0}
WRONG_REQUESTS = [
    pytest.param("initialize", {"processId": "x", "capabilities": 5}, id="initialize-types"),
    pytest.param("initialize", 7, id="initialize-number"),
    pytest.param(
        "textDocument/codeAction",
        {"textDocument": {"uri": "file:///x.py"}, "range": "everything", "context": {}},
        id="codeAction-range-string",
    ),
    pytest.param("textDocument/codeAction", [1, 2, 3], id="codeAction-array"),
    pytest.param(
        "textDocument/codeAction",
        {"textDocument": {"uri": None}, "range": {"start": POS, "end": POS}, "context": None},
        id="codeAction-nulls",
    ),
    pytest.param(
        "textDocument/hover",
        {"textDocument": {"uri": "file:///x.py"}, "position": {"line": -1, "character": "a"}},
        id="hover-position-types",
    ),
    pytest.param("textDocument/hover", None, id="hover-null"),
    pytest.param("workspace/executeCommand", {"command": 5}, id="executeCommand-number"),
    pytest.param("workspace/executeCommand", {"command": "ace.nope"}, id="executeCommand-unknown"),
    pytest.param(
        "workspace/executeCommand",
        {"command": "ace.fix", "arguments": "x"},
        id="fix-arguments-string",
    ),
    pytest.param(
        "workspace/executeCommand",
        {"command": "ace.fix", "arguments": [1, None, {"a": []}]},
        id="fix-arguments-junk",
    ),
    pytest.param(
        "workspace/executeCommand",
        {"command": "ace.review", "arguments": [{"uri": 7, "range": "x"}]},
        id="review-arguments-junk",
    ),
    pytest.param("workspace/executeCommand", None, id="executeCommand-null"),
]


@pytest.mark.parametrize(("method", "params"), WRONG_REQUESTS)
def test_wrong_param_types_get_an_error(shared: RawServer, method: str, params: Any) -> None:
    assert_error(shared.answer(shared.request(method, params)))
    shared.alive()


WRONG_NOTIFICATIONS = [
    pytest.param(
        "textDocument/didOpen",
        {"textDocument": {"uri": 5, "languageId": None, "version": "1", "text": 3}},
        id="didOpen-types",
    ),
    pytest.param("textDocument/didOpen", [1, 2], id="didOpen-array"),
    pytest.param("textDocument/didOpen", None, id="didOpen-null"),
    pytest.param(
        "textDocument/didChange",
        {"textDocument": {"uri": "file:///nope.py", "version": 2}, "contentChanges": [{}]},
        id="didChange-unknown-doc",
    ),
    pytest.param("workspace/didChangeConfiguration", {"settings": [1, "x"]}, id="config-junk"),
    pytest.param("$/cancelRequest", {"id": {"nested": True}}, id="cancel-junk"),
]


@pytest.mark.parametrize(("method", "params"), WRONG_NOTIFICATIONS)
def test_wrong_notification_params_are_ignored(shared: RawServer, method: str, params: Any) -> None:
    shared.notify(method, params)
    assert shared.silence() == []
    shared.alive()


def test_bad_initialize_first_then_a_good_one(tmp_path: Path) -> None:
    srv = RawServer(tmp_path / "home")
    try:
        bad = {"processId": "x", "capabilities": 5}
        assert_error(srv.answer(srv.request("initialize", bad)), INVALID_PARAMS)
        srv.initialize()
        srv.alive()
        assert srv.finish() == 0
    finally:
        srv.kill()


# --- size, unknown methods, the end of the session ------------------------------------------


def test_huge_did_open(shared: RawServer, tmp_path: Path) -> None:
    line = "value = compute('é😀', 12345)  # padding padding padding\n"
    text = line * (20_000_000 // len(line.encode()))
    uri = (tmp_path / "huge.py").as_uri()
    started = time.monotonic()
    shared.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )
    shared.alive()
    reply = shared.answer(
        shared.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": {"start": {"line": 3, "character": 0}, "end": {"line": 3, "character": 5}},
                "context": {"diagnostics": []},
            },
        ),
        timeout=60,
    )
    assert "result" in reply or "error" in reply, reply
    assert time.monotonic() - started < 60


def test_unknown_methods(shared: RawServer) -> None:
    assert_error(shared.answer(shared.request("ace/noSuchMethod", {"x": 1})), METHOD_NOT_FOUND)
    assert_error(shared.answer(shared.request("textDocument/noSuchThing", None)), METHOD_NOT_FOUND)
    # "$/" requests may be refused, but must be answered
    assert_error(shared.answer(shared.request("$/noSuchRequest", {})), METHOD_NOT_FOUND)
    shared.notify("ace/noSuchNotification", {"x": 1})
    shared.notify("$/noSuchNotification", None)
    shared.notify("textDocument/noSuchThing", [1, 2])
    assert shared.silence() == []
    shared.alive()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("workspace/executeCommand", {"command": BUDGET}),
        ("textDocument/hover", {"textDocument": {"uri": "file:///x.py"}, "position": POS}),
        ("ace/noSuchMethod", {}),
    ],
)
def test_requests_after_shutdown_get_errors(server: RawServer, method: str, params: Any) -> None:
    reply = server.answer(server.request("shutdown"))
    assert reply.get("result", "missing") is None, reply
    assert_error(server.answer(server.request(method, params), STUCK_S), INVALID_REQUEST_LSP)


def test_exit_after_shutdown_and_junk_is_clean(server: RawServer) -> None:
    reply = server.answer(server.request("shutdown"))
    assert reply.get("result", "missing") is None, reply
    server.notify("ace/noSuchNotification", {})
    assert server.silence() == []
    server.send(frame(b"{not json"))
    (parse_error,) = server.silence()
    assert_error(parse_error, PARSE_ERROR)
    assert parse_error.get("id") is None, parse_error
    server.notify("exit")
    assert server.proc.wait(timeout=WAIT_S) == 0
