"""End to end: API keys never leak, and secret-shaped code is masked before it reaches a provider.

Every provider has a recognizable fake key (built at run time, so that no file holds a
real-looking key); the fakes refuse or quote keys as vendors do (OpenAI's "Incorrect API key
provided: sk-TESTK…" echoes part of it, the `echo_key` fault quotes the whole bearer token). Then
no key, nor any 8-character piece of one, may appear in the log file, the server's stderr, any LSP
message the client received, the ledger, the CLI's output or an exception message.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from tests.e2e.conftest import (
    SERVER,
    read_code_actions_like_editors,
    server_env,
    track_budget,
    until,
)
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import gemini as fake_gemini
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import openai_app

# the keys ACE is given: concatenated so that no line of this file looks like a real key
OPENAI_KEY = "sk-" + "TESTKEY-ace-" + "oQ7xW2vR9tP4"
MISTRAL_KEY = "TESTKEY-ace-" + "mZ3kL8nB5qW1"
ANTHROPIC_KEY = "sk-ant-" + "TESTKEY-ace-" + "aH6gF1dS0jK"
GEMINI_KEY = "AIza" + "TESTKEY-ace-" + "Yu4Ie7Ro2Pa5Sd8Fg"
KEYS = (OPENAI_KEY, MISTRAL_KEY, ANTHROPIC_KEY, GEMINI_KEY)  # no 8 characters of one are words

DEVSTRAL, CODESTRAL = "devstral-small-2505", "codestral-latest"
SONNET = "claude-3-5-sonnet-20241022"

SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n"
E711 = lsp.Diagnostic(
    range=lsp.Range(lsp.Position(4, 12), lsp.Position(4, 16)),
    message="Comparison to `None` should be `cond is None`",
    code="E711",
    source="Ruff",
)
UNKNOWN = lsp.Diagnostic(  # nothing fixes it offline: when the models fail, the fix fails
    range=lsp.Range(lsp.Position(5, 8), lsp.Position(5, 14)),
    message="Made-up problem no local fixer knows",
    code="X999",
    source="Other",
)


def good(line: int = 5, name: str = "mod.py") -> str:
    return (
        f"```diff\n--- a/{name}\n+++ b/{name}\n@@ -{line},1 +{line},1 @@\n"
        "-    if x == None:\n+    if x is None:\n```\n"
    )


def leaks(blob: str) -> list[str]:
    """Each key of which some 8-character piece is in `blob`, with that piece."""
    found = []
    for key in KEYS:
        pieces = [key[i : i + 8] for i in range(len(key) - 7)]
        hit = next((p for p in pieces if p in blob), None)
        if hit is not None:
            found.append(f"{key[:6]}… ({hit!r})")
    return found


@dataclass(frozen=True)
class Vendors:
    openai: FakeVendor
    mistral: FakeVendor
    anthropic: FakeVendor
    gemini: FakeVendor
    env: dict[str, str]


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    openai, mistral, anthropic, gemini = FakeVendor(), FakeVendor(), FakeVendor(), FakeVendor()
    with (
        # OpenAI expects another key: it refuses ours, quoting its first 8 and last 4 characters
        serve(openai_app(openai, key="sk-" + "other-key-0000")) as openai_url,
        serve(mistral_app(mistral, key=MISTRAL_KEY)) as mistral_url,
        serve(fake_anthropic.create_app(anthropic, api_key=ANTHROPIC_KEY)) as anthropic_url,
        serve(fake_gemini.create_app(gemini, api_key=GEMINI_KEY)) as gemini_url,
    ):
        env = {
            "OPENAI_API_KEY": OPENAI_KEY,
            "ACE_OPENAI_BASE_URL": f"{openai_url}/v1",
            "MISTRAL_API_KEY": MISTRAL_KEY,
            "ACE_MISTRAL_BASE_URL": f"{mistral_url}/v1",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ACE_ANTHROPIC_BASE_URL": anthropic_url,
            "GOOGLE_AI_API_KEY": GEMINI_KEY,
            "GEMINI_API_KEY": GEMINI_KEY,
            "ACE_GEMINI_BASE_URL": gemini_url,
        }
        yield Vendors(openai, mistral, anthropic, gemini, env)


@pytest.fixture(autouse=True)
def _no_faults_left(vendors: Vendors) -> Iterator[None]:
    yield
    for vendor in (vendors.openai, vendors.mistral, vendors.anthropic, vendors.gemini):
        vendor._faults.clear()


def _ledger_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("ledger.sqlite3*")))


def _record_messages(client: LanguageClient) -> list[str]:
    """Every JSON-RPC message the client receives, as the JSON text it was."""
    seen: list[str] = []
    protocol = client.protocol
    structure = protocol.structure_message

    def recording(data: dict[str, Any]) -> Any:
        if "jsonrpc" in data:
            seen.append(json.dumps(data, ensure_ascii=False))
        return structure(data)

    protocol.structure_message = recording  # type: ignore[method-assign]
    return seen


async def _code_actions(
    client: LanguageClient, uri: str, diagnostic: lsp.Diagnostic
) -> list[lsp.CodeAction]:
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri),
        diagnostic.range,
        lsp.CodeActionContext(diagnostics=[diagnostic]),
    )
    actions = await client.text_document_code_action_async(params) or []
    return [a for a in actions if isinstance(a, lsp.CodeAction)]


async def test_no_key_leaks_from_the_server(
    vendors: Vendors, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home, log = tmp_path / "home", tmp_path / "ace.log"
    client = make_test_lsp_client()
    read_code_actions_like_editors(client)
    budgets = track_budget(client)
    received = _record_messages(client)
    await client.start_io(
        *SERVER,
        "serve",
        "-v",
        "--log-file",
        str(log),
        env={**server_env(home), **vendors.env},
    )
    errors: list[str] = []
    try:
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities("visual-studio-code@v1.65.2"),
                initialization_options={"tier": "pro"},
                process_id=os.getpid(),
            )
        )
        await until(lambda: budgets, "the first ace/budget notification")
        uri = (tmp_path / "mod.py").as_uri()
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
        )
        # 1. a fix that works at once
        seen = len(vendors.mistral.requests)
        vendors.mistral.inject(DEVSTRAL, Fault(text=good()))
        (action, *_) = await _code_actions(client, uri, E711)
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is not None
        assert len(vendors.mistral.requests) > seen
        # 2. vendors that quote the key: Mistral (the whole bearer token), OpenAI (part of it)
        vendors.mistral.inject(DEVSTRAL, Fault(kind="echo_key"))
        vendors.mistral.inject(CODESTRAL, Fault(kind="echo_key"))
        vendors.anthropic.inject(SONNET, Fault(status=401))
        (action, *_) = await _code_actions(client, uri, E711)
        resolved = await client.code_action_resolve_async(action)  # local ruff fixes it last
        assert resolved.edit is not None
        # 3. a fix that fails everywhere: the error goes to the client
        vendors.mistral.inject("*", *[Fault(kind="echo_key")] * 6)
        vendors.anthropic.inject("*", *[Fault(status=401)] * 3)
        actions = await _code_actions(client, uri, UNKNOWN)
        for action in actions[:1]:
            try:
                await client.code_action_resolve_async(action)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.2)  # let the last notifications arrive
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 5)
        finally:
            await client.stop()
    # the keys were used, and some vendor did quote one
    assert any(
        r.headers.get("authorization") == f"Bearer {OPENAI_KEY}" for r in vendors.openai.requests
    )
    logged = log.read_text(encoding="utf-8")
    if sys.platform != "win32":
        assert log.stat().st_mode & 0o777 == 0o600  # created private: it quotes code and replies
    assert "auth" in logged.lower() or "refused" in logged.lower(), logged[-2000:]
    stderr = capfd.readouterr().err
    where = {
        "log file": logged,
        "server stderr": stderr,
        "LSP messages": "\n".join(received),
        "ledger": _ledger_bytes(home).decode("utf-8", "replace"),
        "exceptions": "\n".join(errors),
        "window messages": "\n".join(m.message for m in client.messages),
    }
    assert received and _ledger_bytes(home)
    assert {name: leaks(text) for name, text in where.items() if leaks(text)} == {}


def _ace(
    *args: str, home: Path, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", *args],
        env={**server_env(home), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_no_key_leaks_from_the_cli(vendors: Vendors, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    path = tmp_path / "mod.py"
    path.write_text(SOURCE)
    runs: list[tuple[list[str], subprocess.CompletedProcess[str]]] = []

    def ace(*args: str) -> subprocess.CompletedProcess[str]:
        proc = _ace(*args, home=home, env=vendors.env, cwd=tmp_path)
        runs.append((list(args), proc))
        return proc

    vendors.mistral.inject(DEVSTRAL, Fault(text=good()))
    assert ace("fix", str(path)).returncode == 0
    vendors.mistral.inject(DEVSTRAL, Fault(text=good()))
    assert ace("fix", str(path), "--json").returncode == 0
    # keys quoted by vendors, then the offline fix
    for _ in range(2):
        vendors.mistral.inject(DEVSTRAL, Fault(kind="echo_key"))
        vendors.mistral.inject(CODESTRAL, Fault(kind="echo_key"))
        vendors.anthropic.inject(SONNET, Fault(status=401))
    assert ace("fix", str(path), "--tier", "pro").returncode == 0
    assert ace("fix", str(path), "--tier", "pro", "--json").returncode == 0
    # a fix nothing can make: every model fails, and the CLI says why
    diagnostics = tmp_path / "diagnostics.json"
    diagnostics.write_text(
        json.dumps(
            [
                {
                    "range": {
                        "start": {"line": 5, "character": 8},
                        "end": {"line": 5, "character": 14},
                    },
                    "message": "Made-up problem",
                    "code": "X999",
                }
            ]
        )
    )
    for flags in ([], ["--json"]):
        vendors.mistral.inject(DEVSTRAL, Fault(kind="echo_key"))
        vendors.mistral.inject(CODESTRAL, Fault(kind="echo_key"))
        vendors.anthropic.inject(SONNET, Fault(status=401))
        proc = ace("fix", str(path), "--diagnostics", str(diagnostics), "--tier", "pro", *flags)
        assert proc.returncode == 1, proc.stderr
    for command in ("models", "usage", "doctor"):
        ace(command)
        ace(command, "--json")
    vendors.mistral.inject("*", Fault(kind="echo_key"))
    ace("doctor")
    assert any(f"Bearer {OPENAI_KEY}" in str(r.headers) for r in vendors.openai.requests)
    found = {
        " ".join(args): leaks(proc.stdout + proc.stderr)
        for args, proc in runs
        if leaks(proc.stdout + proc.stderr)
    }
    found["ledger"] = leaks(_ledger_bytes(home).decode("utf-8", "replace"))
    assert {k: v for k, v in found.items() if v} == {}
    assert "Traceback" not in "".join(p.stderr for _, p in runs)


# a source file holding secret-shaped text (not keys ACE uses): built at run time, too
AWS_ID = "AKIA" + "TESTFAKE" + "EXAMPLE7"
OPENAI_LITERAL = "sk-" + "fakeliteral" + "9876" + "Xy" * 6
PEM_LINE = "MIIEfakeBASE64" + "Qk" * 20


def _fake(n: int, alphabet: str = "Fa1Ke2Te3St4Va5Lu6E7") -> str:
    return (alphabet * (n // len(alphabet) + 1))[:n]


HEX = "0123456789abcdef"
# issue 12 §4: one line per kind that real repositories hold; (name, line in f, secret)
MORE = [
    ("stripe", "sk_" + "live_" + _fake(24)),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiJhY2UtZTJlIn0." + _fake(43)),
    ("postgres", "postgres://app:" + "pg-" + _fake(13) + "@db:5432/app"),
    ("redis", "redis://:" + "rd-" + _fake(13) + "@cache:6379/0"),
    ("azure", "AccountName=acme;AccountKey=" + _fake(86) + "==;EndpointSuffix=core.windows.net"),
    ("hook", "https://hooks.slack.com/services/T00000000/B00000000/" + _fake(24)),
    ("slack_app", "xapp-" + "1-A0123456789-1234567890123-" + _fake(64, HEX)),
    ("npm", "npm_" + _fake(36)),
    ("hf", "hf_" + _fake(34, "AbCdEfGhIjKlMnOpQrStUvWxYz")),
    ("sendgrid", "SG." + _fake(22) + "." + _fake(43)),
    ("twilio", "SK" + _fake(32, HEX)),
    ("gitlab", "glpat-" + _fake(20)),
    ("bearer", "Bearer " + _fake(40)),
    ("aws_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "fake" + "0KEY9Z"),
    ("DB_PASS", "correct-horse-battery"),
]
ENV_DEFAULT = "dev-" + "pa55word"
SECRET_SOURCE = (  # the secrets sit within the lines shown to the model
    "import os\n\n"
    "PEM = '''-----BEGIN PRIVATE KEY-----\n"
    f"{PEM_LINE}\n"
    "-----END PRIVATE KEY-----'''\n\n\n"
    "def f(x):\n"
    f"    aws_id = '{AWS_ID}'\n"
    f"    openai = '{OPENAI_LITERAL}'\n"
    + "".join(f"    {name} = '{value}'\n" for name, value in MORE)
    + f"    password = os.environ.get('DB_PASSWORD', '{ENV_DEFAULT}')\n"
    "    if x == None:\n        return os.sep\n    return x\n"
)
SECRETS = (AWS_ID, OPENAI_LITERAL, PEM_LINE, ENV_DEFAULT, *(value for _, value in MORE))
E711_LINE = SECRET_SOURCE.splitlines().index("    if x == None:")  # 0-based


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "no-mask"])
def test_secrets_in_code_are_masked_for_the_cli(
    vendors: Vendors, tmp_path: Path, masked: bool
) -> None:
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    path = tmp_path / "mod.py"
    path.write_text(SECRET_SOURCE)
    seen = len(vendors.mistral.requests)
    vendors.mistral.inject(DEVSTRAL, Fault(text=good(line=E711_LINE + 1)))
    flags = [] if masked else ["--no-mask"]
    proc = _ace(
        "fix",
        str(path),
        "--json",
        "--apply",
        *flags,
        home=tmp_path / "home",
        env=vendors.env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert path.read_text() == SECRET_SOURCE.replace("x == None", "x is None")
    sent = json.dumps([r.body for r in vendors.mistral.requests[seen:]], ensure_ascii=False)
    for secret in SECRETS:
        assert (secret in sent) is not masked, secret
    if masked:
        for kind in ("aws-key", "openai-key", "stripe-key", "jwt", "azure-key", "bearer-token"):
            assert f"«masked:{kind}»" in sent, kind


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "maskSecrets-false"])
async def test_secrets_in_code_are_masked_for_the_server(
    vendors: Vendors, tmp_path: Path, masked: bool
) -> None:
    client = make_test_lsp_client()
    read_code_actions_like_editors(client)
    budgets = track_budget(client)
    await client.start_io(*SERVER, env={**server_env(tmp_path / "home"), **vendors.env})
    try:
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities("visual-studio-code@v1.65.2"),
                initialization_options={} if masked else {"maskSecrets": False},
                process_id=os.getpid(),
            )
        )
        await until(lambda: budgets, "the first ace/budget notification")
        uri = (tmp_path / "mod.py").as_uri()
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SECRET_SOURCE))
        )
        diagnostic = lsp.Diagnostic(
            range=lsp.Range(lsp.Position(E711_LINE, 12), lsp.Position(E711_LINE, 16)),
            message=E711.message,
            code="E711",
            source="Ruff",
        )
        seen = len(vendors.mistral.requests)
        vendors.mistral.inject(DEVSTRAL, Fault(text=good(line=E711_LINE + 1)))
        (action, *_) = await _code_actions(client, uri, diagnostic)
        resolved = await client.code_action_resolve_async(action)
        assert resolved.edit is not None
    finally:
        try:
            await asyncio.wait_for(client.shutdown_session(), 5)
        finally:
            await client.stop()
    sent = json.dumps([r.body for r in vendors.mistral.requests[seen:]], ensure_ascii=False)
    assert sent != "[]"
    for secret in SECRETS:
        assert (secret in sent) is not masked, secret
