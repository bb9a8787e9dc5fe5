"""The server's features in process: a failing feature cannot take the others down, code
actions carry the model and cost their title names, and the pygls version check."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from lsprotocol import types as lsp

from ace_lsp.orchestrator.call import default_orchestrator
from ace_lsp.server import compat
from ace_lsp.server.app import create_server
from ace_lsp.server.base import AceServer, Feature, FixFailed
from ace_lsp.server.code_actions import CodeActions
from ace_lsp.server.compat import version_problem
from ace_lsp.server.documents import Documents
from ace_lsp.server.fixing import FIX, Job
from tests.features import find

URI = "file:///tmp/features.py"
TEXT = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
E711 = lsp.Diagnostic(
    lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    "Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)


def _feed(server: AceServer, obj: dict[str, Any]) -> None:
    proto = server.protocol
    proto.handle_message(json.loads(json.dumps(obj), object_hook=proto.structure_message))


def _initialized(server: AceServer) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    server.protocol.set_writer(Writer())  # type: ignore[arg-type]
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    _feed(server, init)
    return sent


# -- a failing feature ---------------------------------------------------------------------------


class Broken(Feature):
    name = "broken"

    def register(self) -> None:
        raise RuntimeError("cannot start")


class Noted(Feature):
    """Notes the hooks it saw; `fail` makes its hooks raise after noting."""

    def __init__(self, name: str, seen: list[str], fail: bool = False) -> None:
        self.name = name
        self.seen = seen
        self.fail = fail

    def initialize(self, params: lsp.InitializeParams) -> None:
        self.seen.append(f"{self.name}.initialize")
        if self.fail:
            raise RuntimeError("initialize failed")

    async def initialized(self) -> None:
        self.seen.append(f"{self.name}.initialized")
        if self.fail:
            raise RuntimeError("initialized failed")

    async def close(self) -> None:
        self.seen.append(f"{self.name}.close")
        if self.fail:
            raise RuntimeError("close failed")


async def test_a_feature_that_fails_to_start_is_left_out(caplog: pytest.LogCaptureFixture) -> None:
    server = AceServer()
    with caplog.at_level(logging.ERROR):
        server.add(Broken())
    documents = server.add(Documents(server))
    assert server.features == [documents]
    assert "the broken feature failed to start; ACE goes on without it" in caplog.text
    assert lsp.TEXT_DOCUMENT_DID_OPEN in server.protocol.fm.features


async def test_a_failing_hook_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    server = AceServer()
    server.add(Noted("first", seen, fail=True))
    server.add(Noted("second", seen))
    with caplog.at_level(logging.ERROR):
        _initialized(server)
        await server._each("initialized")
        await server.close()
    assert seen == [
        "first.initialize",
        "second.initialize",
        "first.initialized",
        "second.initialized",
        "second.close",  # the last added closes first
        "first.close",
    ]
    assert "the first feature failed in initialized" in caplog.text
    assert "the first feature failed to close" in caplog.text


def test_find_names_a_missing_feature() -> None:
    with pytest.raises(LookupError, match="no CodeActions feature"):
        find(AceServer(), CodeActions)


# -- CodeAction.data: the model and cost the title names --------------------------------------------


def _listing(server: AceServer, diagnostics: list[lsp.Diagnostic]) -> list[lsp.CodeAction]:
    _initialized(server)
    find(server, Documents).store.open(URI, "python", 1, TEXT)
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(URI), E711.range, lsp.CodeActionContext(diagnostics=diagnostics)
    )
    return find(server, CodeActions).list_actions(params)


def test_fix_actions_carry_the_model_and_cost_of_their_title() -> None:
    server = create_server(default_orchestrator())  # offline: the local model, free
    second = lsp.Diagnostic(
        lsp.Range(lsp.Position(0, 7), lsp.Position(0, 9)), "unused", code="F401"
    )
    actions = _listing(server, [E711, second])
    assert [a.title for a in actions] == [
        "Fix with ACE · local · free: Comparison to `None` should be `cond is None`",
        "Fix with ACE · local · free: unused",
        "Fix all with ACE (2 diagnostics) · local · free",
    ]
    for action in actions:
        assert isinstance(action.data, dict)
        assert (action.data["model"], action.data["costUsd"]) == ("local", 0.0)
        job = Job.parse(action.data)
        assert (job.model, job.cost_usd) == ("local", 0.0)


SECOND = lsp.Diagnostic(lsp.Range(lsp.Position(0, 7), lsp.Position(0, 9)), "unused", code="F401")


@pytest.mark.parametrize(
    ("diagnostics", "rng", "kinds"),
    [
        pytest.param([E711], E711.range, ["quickfix"], id="fix"),
        pytest.param([E711, SECOND], E711.range, ["quickfix", "quickfix", "source.fixAll.ace"], id="fix-all"),
        pytest.param([], lsp.Range(lsp.Position(4, 0), lsp.Position(4, 0)), ["quickfix"], id="line"),
        pytest.param([], lsp.Range(lsp.Position(3, 0), lsp.Position(6, 0)), ["quickfix"], id="selection"),
    ],
)  # fmt: skip
def test_every_ace_action_is_tagged_llm_generated_and_never_preferred(
    diagnostics: list[lsp.Diagnostic], rng: lsp.Range, kinds: list[str]
) -> None:
    server = create_server(default_orchestrator())
    _initialized(server)
    find(server, Documents).store.open(URI, "python", 1, TEXT)
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(URI), rng, lsp.CodeActionContext(diagnostics=diagnostics)
    )
    actions = find(server, CodeActions).list_actions(params)
    assert [a.kind for a in actions] == kinds
    for action in actions:
        assert action.tags == [lsp.CodeActionTag.LlmGenerated]
        assert action.is_preferred is not True


def test_before_the_router_is_ready_the_data_says_null() -> None:
    (action,) = _listing(create_server(), [E711])
    assert action.title == "Fix with ACE: Comparison to `None` should be `cond is None`"
    assert isinstance(action.data, dict)
    assert action.data["model"] is None and action.data["costUsd"] is None
    assert "costUsd" in json.dumps(action.data)  # null, not left out


@pytest.mark.parametrize(
    ("extra", "model", "cost"),
    [
        pytest.param({}, None, None, id="absent (older clients, older servers)"),
        pytest.param({"model": None, "costUsd": None}, None, None, id="null"),
        pytest.param({"model": "gpt-4o", "costUsd": 0.0123}, "gpt-4o", 0.0123, id="set"),
        pytest.param({"model": "local", "costUsd": 0}, "local", 0.0, id="integer-cost"),
    ],
)
def test_job_parse_accepts_model_and_cost(
    extra: dict[str, Any], model: str | None, cost: float | None
) -> None:
    job = Job.parse({"kind": FIX, "uri": URI, "version": 3, **extra})
    assert (job.model, job.cost_usd) == (model, cost)
    again = Job.parse(json.loads(json.dumps(job.data())))
    assert again == job


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"model": 12}, id="model-not-a-string"),
        pytest.param({"costUsd": "0.01"}, id="cost-a-string"),
        pytest.param({"costUsd": True}, id="cost-a-bool"),
        pytest.param({"costUsd": math.inf}, id="cost-infinite"),
        pytest.param({"costUsd": math.nan}, id="cost-nan"),
    ],
)
def test_job_parse_refuses_bad_model_or_cost(extra: dict[str, Any]) -> None:
    with pytest.raises(FixFailed, match="carries no usable data"):
        Job.parse({"kind": FIX, "uri": URI, "version": 3, **extra})


# -- the pygls range compat.py was tested with -----------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fits"),
    [
        pytest.param("2.1.0", True, id="2.1.0"),
        pytest.param("2.1.1", True, id="2.1.1"),
        pytest.param("2.2.0", False, id="newer-minor"),
        pytest.param("2.0.1", False, id="older-minor"),
        pytest.param("3.0.0", False, id="next-major"),
        pytest.param("2.1.0a1", True, id="pre-release-of-2.1"),
        pytest.param("garbage", False, id="unreadable"),
    ],
)
def test_pygls_versions_outside_the_tested_range_are_named(version: str, fits: bool) -> None:
    problem = version_problem(version)
    assert (problem is None) == fits
    if problem is not None:
        assert f"pygls {version} is installed" in problem and ">=2.1,<2.2" in problem


def test_check_pygls_warns_outside_the_range_and_stops_without_a_private(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    compat.check_pygls()  # the installed pygls: silent
    assert "ACE was tested with pygls" not in caplog.text
    monkeypatch.setattr(compat.metadata, "version", lambda _name: "2.9.0")
    with caplog.at_level(logging.WARNING):
        compat.check_pygls()
    assert "but pygls 2.9.0 is installed" in caplog.text
    monkeypatch.setattr(compat, "_PRIVATES", ((compat.JsonRPCProtocol, "_gone_in_pygls_3"),))
    with pytest.raises(RuntimeError, match=r"no JsonRPCProtocol\._gone_in_pygls_3"):
        compat.check_pygls()
