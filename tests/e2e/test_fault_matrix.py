"""The fault matrix, end to end: every provider by every way a model call can fail, through the REAL
`ace serve` driven as VS Code drives it (codeAction, then codeAction/resolve, streamed with
progress). Each fix must end with a valid patch from a later model, never a corrupting edit; the
ledger must hold one row per attempt with the right outcome; the time to fall back is measured,
bounded, and printed as a table (run with -s).

One server per provider, reused across its failures (started lazily, shut down at module end):
only that provider's key is set, `[calls] max_retries = 0`, small timeouts. The primary is the
provider's model (set with the `models` setting); the later model is the next one of the same
provider on the same fake (gpt-4o, claude-3-5-sonnet, codestral) or, for Gemini, which has no
second AUTO_FIX model, the local ruff fixer.

Network faults need a base URL of their own, so each server's config also defines two more
provider instances of the same kind and key — one at a closed port (bound, never listening:
connection refused), one at a socket whose accept backlog is full (SYNs dropped: connect timeout)
— with a copy of the primary (same wire name) on each: `<primary>-refused`, `<primary>-blackhole`.

A request's prompt is made unique (the function's name) so that the response cache never answers;
before each fault the primary answers once normally, which resets its circuit breaker (three
failures in a row would open it and skip the primary in the next case).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client
from starlette.applications import Starlette

from tests.e2e.conftest import SERVER, read_code_actions_like_editors, server_env, track_budget
from tests.edits import apply_edits
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY as OPENAI_KEY
from tests.fakes.openai import openai_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

VSCODE = "visual-studio-code@v1.65.2"
READ_TIMEOUT_S = 0.4  # the provider under test's read timeout; the slow fault waits longer
CONNECT_TIMEOUT_S = 0.3
E711 = lsp.Diagnostic(
    range=lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)


def source(name: str) -> str:
    return (
        f"import os\n\n\ndef {name}(x):\n    if x == None:\n        return os.sep\n    return x\n"
    )


def diff(old: str, new: str, line: int = 5, name: str = "mod.py") -> str:
    return f"```diff\n--- a/{name}\n+++ b/{name}\n@@ -{line},1 +{line},1 @@\n-{old}\n+{new}\n```\n"


GOOD = "Here is the fix.\n" + diff("    if x == None:", "    if x is None:")


# -- providers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    name: str  # the vendor
    instance: str  # ACE's provider instance that serves the primary
    kind: str  # the wire protocol
    primary: str  # model id
    primary_wire: str
    fallback: str  # the later model that answers
    down_fallback: str  # the later model when the primary is a copy on a broken base URL
    key_env: str
    key: str
    url_env: str
    url_suffix: str  # "/v1" for the chat-completions vendors
    app: Callable[[FakeVendor], Starlette]
    primary_table: str  # the registry's keys for the primary's copies

    def streamed(self, body: Any, path: str) -> bool:
        if self.kind == "gemini":
            return path.endswith(":streamGenerateContent")
        return isinstance(body, dict) and body.get("stream") is True


def _table(price: float, window: int, output: int) -> str:
    return f"price_per_1m = {price}\ncontext_window = {window}\nmax_output = {output}\n"


PROVIDERS = {
    p.name: p
    for p in (
        Provider(
            "openai",
            "openai",
            "openai",
            "gpt-4o-mini",
            "gpt-4o-mini",
            "gpt-4o",
            "gpt-4o",
            "OPENAI_API_KEY",
            OPENAI_KEY,
            "ACE_OPENAI_BASE_URL",
            "/v1",
            openai_app,
            _table(0.15, 128_000, 16_384),
        ),
        Provider(
            "anthropic",
            "anthropic",
            "anthropic",
            "claude-3-haiku",
            "claude-3-haiku-20240307",
            "claude-3-5-sonnet",
            "claude-3-5-sonnet",
            "ANTHROPIC_API_KEY",
            fake_anthropic.API_KEY,
            "ACE_ANTHROPIC_BASE_URL",
            "",
            fake_anthropic.create_app,
            _table(0.25, 200_000, 4_096),
        ),
        Provider(
            "mistral",
            "devstral",
            "mistral",
            "devstral-small",
            "devstral-small-2505",
            "codestral",
            "devstral-small",
            "MISTRAL_API_KEY",
            OPENAI_KEY,  # the Mistral fake checks the same bearer key
            "ACE_MISTRAL_BASE_URL",
            "/v1",
            mistral_app,
            _table(0.10, 131_072, 131_072),
        ),
        Provider(
            "gemini",
            "gemini",
            "gemini",
            "gemini-1.5-flash",
            "gemini-1.5-flash",
            "local",
            "local",
            "GOOGLE_AI_API_KEY",
            fake_gemini.API_KEY,
            "ACE_GEMINI_BASE_URL",
            "",
            fake_gemini.create_app,
            _table(0.075, 1_048_576, 8_192),
        ),
    )
}


# -- the failures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    faults: tuple[Fault, ...] | dict[str, tuple[Fault, ...]] = ()  # on the primary's wire name
    outcome: str | dict[str, str] = ""  # the primary's ledger outcome (per vendor when they differ)
    via: str = ""  # "refused" / "blackhole": the primary is the copy on that broken base URL
    only: tuple[str, ...] = ()  # the vendors that have this failure
    bound_s: float = 1.5  # fallback must have started within this much of the request
    # vendors where this failure stands for the whole key (a spent account), so the same
    # provider's other models are passed over too
    whole_key: tuple[str, ...] = ()

    def faults_for(self, vendor: str) -> tuple[Fault, ...]:
        return self.faults if isinstance(self.faults, tuple) else self.faults[vendor]

    def expected(self, vendor: str) -> str:
        return self.outcome if isinstance(self.outcome, str) else self.outcome[vendor]


QUOTA: dict[str, tuple[Fault, ...]] = {  # each vendor's own "quota exhausted"
    "openai": (Fault(kind="insufficient_quota"),),  # 429 insufficient_quota
    "anthropic": (Fault(kind="credit_balance"),),  # 400 "credit balance is too low"
    "mistral": (Fault(kind="payment_required"),),  # 402: credits or spending limit used up
    "gemini": (Fault(kind="daily_quota"),),  # 429 RESOURCE_EXHAUSTED, a per-day QuotaFailure
}
# a streamed event whose data is not JSON (the chat-completions fakes send raw_body verbatim as
# the SSE body; the Anthropic and Gemini fakes wrap it in an event themselves)
MALFORMED: dict[str, tuple[Fault, ...]] = {
    "openai": (Fault(raw_body="data: {not json\n\n"),),
    "mistral": (Fault(raw_body="data: {not json\n\n"),),
    "anthropic": (Fault(raw_body="{not json"),),
    "gemini": (Fault(raw_body="{not json"),),
}

CASES = [
    Case("connection-refused", outcome="unavailable", via="refused"),
    Case("connect-timeout", outcome="timeout", via="blackhole", bound_s=CONNECT_TIMEOUT_S + 1.5),
    Case(
        "read-timeout",
        (Fault(delay_s=READ_TIMEOUT_S + 1.0),),
        "timeout",
        bound_s=READ_TIMEOUT_S + 1.5,
    ),
    Case("429-retry-after", (Fault(status=429, retry_after="30"),), "rate_limited"),
    # credits or spending limits are the account's; Gemini counts quota per model
    Case("quota-exhausted", QUOTA, "quota_exhausted", whole_key=("openai", "anthropic", "mistral")),
    Case("500", (Fault(status=500),), "server_error"),
    Case(
        "503",
        (Fault(status=503),),
        # Anthropic documents 529 for overload: its 503 is an ordinary server error
        {
            "openai": "overloaded",
            "anthropic": "server_error",
            "mistral": "overloaded",
            "gemini": "overloaded",
        },
    ),
    Case("529-overloaded", (Fault(status=529),), "overloaded", only=("anthropic",)),
    # Mistral's "no capacity for your tier right now": an overload, not a spent quota
    Case("429-capacity", (Fault(kind="capacity"),), "overloaded", only=("mistral",)),
    Case(
        "mid-stream-error",
        (Fault(error_event=True),),
        {
            "openai": "server_error",
            "anthropic": "overloaded",
            "mistral": "server_error",
            "gemini": "overloaded",
        },
    ),
    Case("malformed-json", MALFORMED, "bad_response"),
    Case("empty-content", (Fault(empty=True),), "bad_response"),
    Case("stream-cut", (Fault(cut_after=2),), "server_error"),
    Case("no-diff", (Fault(text="The code looks fine to me."),), "invalid_patch"),
    Case(
        "diff-does-not-apply",
        (Fault(text=diff("    if x == Nothing:", "    if x is None:")),),
        "invalid_patch",
    ),
    Case(
        "diff-breaks-syntax",
        (Fault(text=diff("    if x == None:", "    if x is None")),),
        "invalid_patch",
    ),
    Case(
        "diff-other-file",
        (Fault(text=diff("    if x == None:", "    if x is None:", name="other.py")),),
        "invalid_patch",
    ),
    Case(
        "diff-out-of-range",
        (Fault(text=diff("import os", "import sys", line=1)),),
        "invalid_patch",
    ),
]

MATRIX = [
    pytest.param(vendor, case, id=f"{vendor}-{case.id}")
    for vendor in PROVIDERS
    for case in CASES
    if not case.only or vendor in case.only
]


# -- the rig: fakes, broken endpoints, one server per provider ----------------------------------------


@dataclass
class Result:
    vendor: str
    case: str
    outcomes: list[tuple[str, str]]
    fail_ms: float  # the primary attempt's latency in the ledger: the time spent failing
    fallback_ms: float  # resolve wall time minus the fallback's own time: when the fallback began
    resolve_ms: float


RESULTS: list[Result] = []


@dataclass
class Server:
    provider: Provider
    vendor: FakeVendor
    client: LanguageClient
    budgets: list[dict[str, Any]]
    home: Path
    workspace: Path
    preferred: str = ""
    last_id: int = 0


def _closed_port(stack: ExitStack) -> int:
    """A port bound (so nobody else takes it) but not listening: connecting is refused."""
    s = stack.enter_context(socket.socket())
    s.bind(("127.0.0.1", 0))
    return int(s.getsockname()[1])


def _blackhole_port(stack: ExitStack) -> int:
    """A listening socket whose accept queue is full and never drained: Linux drops further SYNs,
    so a connect() neither succeeds nor is refused: it times out."""
    listener = stack.enter_context(socket.socket())
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    for _ in range(2):
        filler = stack.enter_context(socket.socket())
        filler.setblocking(False)
        with suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
    time.sleep(0.05)
    return port


def _stalls(port: int) -> bool:
    """Does connecting to `port` hang (rather than succeed or be refused)?"""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", port))
        except TimeoutError:
            return True
        except OSError:
            return False
        return False


class _QuietCuts(logging.Filter):
    """Keeps the fakes' deliberate stream-cut tracebacks out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and "stream cut on purpose" in str(exc))


def _config(p: Provider, refused: int, blackhole: int) -> str:
    out = [
        "[calls]\nmax_retries = 0\n",
        f"[providers.{p.instance}]\nread_timeout_s = {READ_TIMEOUT_S}\n"
        f"connect_timeout_s = {CONNECT_TIMEOUT_S}\n",
    ]
    for via, port in (("refused", refused), ("blackhole", blackhole)):
        out.append(
            f'[providers.{p.instance}-{via}]\nkind = "{p.kind}"\n'
            f'base_url = "http://127.0.0.1:{port}{p.url_suffix}"\nkey_env = "{p.key_env}"\n'
            f"read_timeout_s = {READ_TIMEOUT_S}\nconnect_timeout_s = {CONNECT_TIMEOUT_S}\n"
        )
        out.append(
            f'[models."{p.primary}-{via}"]\nprovider = "{p.instance}-{via}"\n'
            f'wire_name = "{p.primary_wire}"\ntasks = ["AUTO_FIX"]\n{p.primary_table}'
        )
    return "\n".join(out)


class Rig:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.stack = ExitStack()
        self.servers: dict[str, Server] = {}
        self.refused = _closed_port(self.stack)
        self.blackhole = _blackhole_port(self.stack)
        self.blackhole_works = _stalls(self.blackhole)

    async def server(self, vendor_name: str) -> Server:
        if vendor_name in self.servers:
            return self.servers[vendor_name]
        p = PROVIDERS[vendor_name]
        vendor = FakeVendor(default_text=GOOD)
        url = self.stack.enter_context(serve(p.app(vendor)))
        home = self.root / vendor_name / "home"
        workspace = self.root / vendor_name / "ws"
        home.mkdir(parents=True)
        workspace.mkdir(parents=True)
        (home / "config.toml").write_text(_config(p, self.refused, self.blackhole))
        (workspace / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
        client = make_test_lsp_client()
        read_code_actions_like_editors(client)
        budgets = track_budget(client)
        env = {**server_env(home), p.key_env: p.key, p.url_env: url + p.url_suffix}
        await client.start_io(*SERVER, env=env)
        server = Server(p, vendor, client, budgets, home, workspace)
        self.servers[vendor_name] = server
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities(VSCODE),
                initialization_options={"tier": "pro", "models": {"AUTO_FIX": p.primary}},
                root_uri=workspace.as_uri(),
                process_id=os.getpid(),
            )
        )
        await _until(lambda: budgets, "the first ace/budget notification")
        server.preferred = p.primary
        return server

    async def close(self) -> None:
        for server in self.servers.values():
            try:
                await asyncio.wait_for(server.client.shutdown_session(), 5)
            finally:
                await server.client.stop()
        self.stack.close()


async def _until(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return value


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    rig = Rig(tmp_path_factory.mktemp("fault-matrix"))
    quiet = _QuietCuts()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    t0 = time.perf_counter()
    try:
        yield rig
    finally:
        await rig.close()
        logging.getLogger("uvicorn.error").removeFilter(quiet)
        _print_table(time.perf_counter() - t0)


def _print_table(elapsed_s: float) -> None:
    if not RESULTS:
        return
    head = f"{'provider':<10} {'failure':<20} {'fail ms':>8} {'fallback ms':>11} {'resolve ms':>10}  attempts"
    lines = ["", f"Fault matrix ({len(RESULTS)} cases, {elapsed_s:.1f} s):", head, "-" * len(head)]
    for r in RESULTS:
        attempts = " → ".join(f"{m}:{o}" for m, o in r.outcomes)
        lines.append(
            f"{r.vendor:<10} {r.case:<20} {r.fail_ms:>8.0f} {r.fallback_ms:>11.0f} "
            f"{r.resolve_ms:>10.0f}  {attempts}"
        )
    print("\n".join(lines))


# -- one fix through the server ----------------------------------------------------------------------

_names = itertools.count()


@dataclass
class Fix:
    before: str  # the document
    text: str  # the document after the edit
    resolve_ms: float
    rows: list[tuple[str, str, float, int]] = field(default_factory=list)  # model, outcome, ms, pos
    streamed: bool = False
    error: str | None = None  # the resolve's error message when no fix was found


async def _prefer(server: Server, model: str) -> None:
    if server.preferred == model:
        return
    seen = len(server.budgets)
    server.client.workspace_did_change_configuration(
        lsp.DidChangeConfigurationParams(
            settings={"ace": {"tier": "pro", "models": {"AUTO_FIX": model}}}
        )
    )
    await _until(lambda: len(server.budgets) > seen, "the settings to apply")
    server.preferred = model


def _ledger(server: Server) -> list[tuple[int, str, str, str, float, int, int]]:
    db = server.home / "ledger.sqlite3"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT id, request_id, model, outcome, latency_ms, chain_position, attempt"
            " FROM llm_runs WHERE id > ? ORDER BY id",
            (server.last_id,),
        ).fetchall()


async def _fix(server: Server, model: str, diagnostic: lsp.Diagnostic = E711) -> Fix:
    """Ask the server for the fix of `diagnostic` with `model` first: the edit applied (or the
    error the resolve answered) and the request's ledger rows."""
    await _prefer(server, model)
    name = f"f_{next(_names)}"  # a new prompt: the response cache cannot answer
    folder = server.workspace / name
    folder.mkdir()
    path = folder / "mod.py"
    text = source(name)
    path.write_text(text)
    uri = path.as_uri()
    client = server.client
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, text))
    )
    seen_requests = len(server.vendor.requests)
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri),
        diagnostic.range,
        lsp.CodeActionContext(diagnostics=[diagnostic]),
    )
    actions = [
        a
        for a in (await client.text_document_code_action_async(params) or [])
        if isinstance(a, lsp.CodeAction)
    ]
    (action, *_) = actions
    assert action.title.startswith(f"Fix with ACE · {model} · "), action.title
    fix = Fix(text, text, 0.0)
    t0 = time.perf_counter()
    try:
        resolved = await client.code_action_resolve_async(action)
    except Exception as exc:  # the server's answer is an LSP error: the fix failed
        fix.error = str(exc)
    else:
        assert resolved.edit is not None and resolved.edit.document_changes is not None
        (change,) = resolved.edit.document_changes
        assert isinstance(change, lsp.TextDocumentEdit) and change.text_document.uri == uri
        fix.text = apply_edits(text, list(change.edits))  # type: ignore[arg-type]
    fix.resolve_ms = (time.perf_counter() - t0) * 1000
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(uri)))
    # the ledger commits within ~50 ms of the call: wait for the request's last row
    done = ("ok", "cached") if fix.error is None else ("unsupported",)
    rows = await _until(
        lambda: (r := _ledger(server)) and r[-1][3] in done and r, "the ledger rows"
    )
    assert len({r[1] for r in rows}) == 1, f"rows of more than one request: {rows}"
    server.last_id = rows[-1][0]
    fix.rows = [(r[2], r[3], r[4], r[5]) for r in rows]
    fix.streamed = any(
        server.provider.streamed(rec.body, rec.path)
        for rec in server.vendor.requests[seen_requests:]
    )
    return fix


# -- the matrix -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vendor_name", "case"), MATRIX)
async def test_fault_falls_back_to_a_valid_patch(rig: Rig, vendor_name: str, case: Case) -> None:
    if case.via == "blackhole" and not rig.blackhole_works:
        pytest.skip("a full accept backlog does not stall connect() on this system")
    server = await rig.server(vendor_name)
    p = server.provider

    # the primary answers normally: a baseline, and its circuit breaker starts closed
    server.vendor._faults.clear()
    healthy = await _fix(server, p.primary)
    assert [(m, o) for m, o, _, _ in healthy.rows] == [(p.primary, "ok")]
    assert healthy.streamed, "the VS Code profile asks for progress, so the call streams"

    # now the primary fails this way; the later model answers (the fake's default reply is GOOD)
    primary = f"{p.primary}-{case.via}" if case.via else p.primary
    server.vendor._faults.clear()
    server.vendor.inject(p.primary_wire, *case.faults_for(vendor_name))
    fix = await _fix(server, primary)

    assert fix.error is None, fix.error
    outcomes = [(m, o) for m, o, _, _ in fix.rows]
    fallback, positions = (p.down_fallback if case.via else p.fallback), [0, 1]
    if vendor_name in case.whole_key:  # the same key's next model is passed over: the fixer
        fallback, positions = "local", [0, 2]
    assert outcomes == [(primary, case.expected(vendor_name)), (fallback, "ok")], outcomes
    assert [pos for *_, pos in fix.rows] == positions
    # never a corrupting edit: the result is exactly the fix, and it compiles
    assert fix.text == fix.before.replace("x == None", "x is None")
    compile(fix.text, "mod.py", "exec")
    assert not server.vendor._faults.get(p.primary_wire), "the fault was not played"
    if not case.via:
        assert fix.streamed

    fail_ms = fix.rows[0][2]
    fallback_ms = fix.resolve_ms - fix.rows[-1][2]
    RESULTS.append(Result(vendor_name, case.id, outcomes, fail_ms, fallback_ms, fix.resolve_ms))
    assert fallback_ms < case.bound_s * 1000, f"fell back after {fallback_ms:.0f} ms"


# the later cloud model's wire name (Gemini's later model is the local fixer)
FALLBACK_WIRE = {
    "openai": "gpt-4o",
    "anthropic": "claude-3-5-sonnet-20241022",
    "mistral": "codestral-latest",
    "gemini": None,
}
UNFIXABLE = lsp.Diagnostic(  # no ruff rule: the local fixer cannot fix it either
    range=lsp.Range(lsp.Position(4, 4), lsp.Position(4, 17)),
    message="This comparison looks suspicious",
    code="X999",
    source="review",
)


@pytest.mark.parametrize("vendor_name", list(PROVIDERS))
async def test_when_every_model_fails_the_answer_is_one_clear_sentence(
    rig: Rig, vendor_name: str
) -> None:
    server = await rig.server(vendor_name)
    p = server.provider
    server.vendor._faults.clear()
    healthy = await _fix(server, p.primary)  # closes the primary's circuit, as above
    assert [(m, o) for m, o, _, _ in healthy.rows] == [(p.primary, "ok")]
    server.vendor.inject(p.primary_wire, Fault(status=500))
    wire = FALLBACK_WIRE[vendor_name]
    if wire is not None:
        server.vendor.inject(wire, Fault(status=503))
    fix = await _fix(server, p.primary, UNFIXABLE)
    assert fix.error is not None and fix.text == fix.before  # no edit at all
    message = fix.error
    print(f"\n{vendor_name}: {message!r}")
    assert "\n" not in message and message.rstrip().endswith(".") and p.key not in message
    models = [m for m, _, _, _ in fix.rows]
    assert models[0] == p.primary and models[-1] == "local"
    assert [o for _, o, _, _ in fix.rows] == (
        ["server_error"] + ([FIVE03[vendor_name]] if wire else []) + ["unsupported"]
    )


FIVE03 = {"openai": "overloaded", "anthropic": "server_error", "mistral": "overloaded"}
