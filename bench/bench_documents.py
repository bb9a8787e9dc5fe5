"""The document store: per-keystroke update cost, server memory with open documents, and
codeAction latency while didChange notifications stream in. Prints figures, asserts nothing.

(a) 1,000 keystrokes on a 10,000-line Python file through `DocumentStore.change` (text, bytes,
    line index, tree edit and incremental parse), in two mixes: letters typed into names, strings
    and comments (the file stays valid), and any character typed anywhere then deleted again (a
    syntax error each time, the worst case for tree-sitter's error recovery).
(b) VmRSS of the real `ace serve` process after initialize, then with 50 documents of 2,000 lines.
(c) codeAction round trips on a 5,000-line file, alone and with one didChange before each request.

Run: `python -m bench.bench_documents` or `python -m bench documents`.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from ace_lsp.orchestrator.code.source import Source
from ace_lsp.server.documents import DocumentStore
from bench.figures import Figure, Report

KEYSTROKES = 1_000
LINES = 10_000
DOCS = 50
DOC_LINES = 2_000
REQUESTS = 500
WARMUP = 50
TYPED = frozenset({"identifier", "comment", "string_content"})


def python_file(lines: int, ascii_only: bool = False) -> str:
    """Classes, methods, docstrings, comments and module code; a few non-ASCII characters."""
    accent = "cafe" if ascii_only else "café ☕"
    out: list[str] = ['"""A generated module."""', "", "import os", "import sys", ""]
    n = 0
    while len(out) < lines:
        out += [
            "",
            f"@register('cls{n}')",
            f"class Service{n}(Base):",
            f'    """Service number {n}: {accent}."""',
            "",
            f"    limit = {n}  # requests per second",
            "",
            "    def __init__(self, value: int) -> None:",
            "        self.value = value",
            "",
            "    @property",
            "    def doubled(self) -> int:",
            "        def helper(x):",
            "            return x * 2",
            "        return helper(self.value)",
            "",
            "    async def fetch(self, url: str) -> bytes:",
            "        for attempt in range(3):",
            "            if attempt:",
            "                await sleep(attempt)",
            '        return await get(url, timeout=self.limit, label=f"svc-{url}")',
            "",
            "",
            f"def function_{n}(a, b=1):",
            "    total = 0",
            "    for i in range(a):",
            "        total += i * b  # accumulate",
            "    return total",
            "",
            f"CONSTANT_{n} = function_{n}(3)",
        ]
        n += 1
    return "\n".join(out[:lines]) + "\n"


def _at(source: Source, offset: int) -> lsp.Position:
    row = source.line_of_byte(offset)
    pos = source.to_position(row, offset - source.line_start_byte(row))
    return lsp.Position(pos.line, pos.character)


def _insert(pos: lsp.Position, text: str) -> lsp.TextDocumentContentChangePartial:
    return lsp.TextDocumentContentChangePartial(range=lsp.Range(pos, pos), text=text)


def _percentiles(times: list[float]) -> str:
    times = sorted(times)
    p99 = times[max(0, int(len(times) * 0.99) - 1)]
    return f"median {statistics.median(times):.3f} ms   p99 {p99:.3f} ms   max {times[-1]:.3f} ms"


def _typing_in_names(store: DocumentStore, uri: str, rng: random.Random) -> list[float]:
    """Letters typed inside identifiers, strings and comments: the file stays valid."""
    times: list[float] = []
    version = 1
    while len(times) < KEYSTROKES:
        state = store.get(uri)
        assert state is not None and state.tree is not None
        offset = rng.randrange(len(state.source.data))
        node = state.tree.root_node.descendant_for_byte_range(offset, offset)
        if node is None or node.type not in TYPED or node.end_byte - node.start_byte < 2:
            continue
        # inside the node, on a character boundary
        raw = state.source.data[node.start_byte : node.end_byte].decode()
        cut = node.start_byte + len(raw[: rng.randrange(1, len(raw))].encode())
        change = _insert(_at(state.source, cut), rng.choice("abcdefghijklmnopqrstuvwxyz"))
        version += 1
        t0 = time.perf_counter()
        store.change(uri, version, [change], "utf-16")
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _typing_anywhere(store: DocumentStore, uri: str, rng: random.Random) -> list[float]:
    """Any printable character at a random place, then deleted: a syntax error each time."""
    times: list[float] = []
    version = 1
    chars = "abcxyz019_()[]{}:.,=+-*/#'\" "
    while len(times) < KEYSTROKES:
        state = store.get(uri)
        assert state is not None
        line = rng.randrange(state.source.line_count)
        character = rng.randrange(len(state.source.line_text(line)) + 1)
        start = lsp.Position(line, character)
        end = lsp.Position(line, character + 1)
        for change in (
            _insert(start, rng.choice(chars)),
            lsp.TextDocumentContentChangePartial(range=lsp.Range(start, end), text=""),
        ):
            version += 1
            t0 = time.perf_counter()
            store.change(uri, version, [change], "utf-16")
            times.append((time.perf_counter() - t0) * 1000)
    return times


def _keystrokes(
    label: str, text: str, language: str, mix: Callable[..., list[float]]
) -> list[float]:
    store = DocumentStore()
    uri = f"file:///bench/keys.{'py' if language == 'python' else 'txt'}"
    store.open(uri, language, 1, text)
    times = mix(store, uri, random.Random(7))
    print(f"  {label:<44} {_percentiles(times)}")
    return times


def bench_keystrokes(report: Report) -> None:
    text = python_file(LINES)
    ascii_text = python_file(LINES, ascii_only=True)
    size = len(text.encode())
    print(f"(a) per-keystroke DocumentStore.change, {LINES:,}-line Python file ({size:,} bytes),")
    print(f"    {KEYSTROKES:,} keystrokes each; target: median < 2 ms")
    t0 = time.perf_counter()
    store = DocumentStore()
    store.open("file:///bench/open.py", "python", 1, text)
    print(f"  didOpen (Source + full parse): {(time.perf_counter() - t0) * 1000:.1f} ms")
    typed = _keystrokes("letters in names/strings/comments", text, "python", _typing_in_names)
    _keystrokes("  same, ASCII-only file", ascii_text, "python", _typing_in_names)
    anywhere = _keystrokes("any char anywhere, then deleted", text, "python", _typing_anywhere)
    _keystrokes("text + line index only (no grammar)", text, "plaintext", _typing_anywhere)
    _keystrokes("  same, ASCII-only file", ascii_text, "plaintext", _typing_anywhere)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        Source(text)
        times.append((time.perf_counter() - t0) * 1000)
    print(
        f"  for comparison, Source(text) from scratch:   median {statistics.median(times):.3f} ms"
    )
    report.add(
        Figure(
            "keystroke (DocumentStore.change), 10,000 lines: median",
            statistics.median(typed),
            statistics.median(times),
            "ms",
            "< 2 ms",
            "Source(text) from scratch",
        ),
        Figure(
            "keystroke, syntax error each time: median",
            statistics.median(anywhere),
            target="< 2 ms",
        ),
    )


async def _start() -> tuple[LanguageClient, int]:
    client = LanguageClient("bench", "0")
    await client.start_io(sys.executable, "-m", "ace_lsp.server")
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    assert client._server is not None
    return client, client._server.pid


async def _stop(client: LanguageClient) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()  # type: ignore[no-untyped-call]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _sync(client: LanguageClient, uri: str) -> None:
    """A request answered after every earlier notification was handled."""
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri),
        lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
        lsp.CodeActionContext(diagnostics=[]),
    )
    await client.text_document_code_action_async(params)


async def _memory(report: Report) -> None:
    client, pid = await _start()
    uri0 = "file:///bench/doc0.py"
    await _sync(client, uri0)
    base = _rss_mb(pid)
    text = python_file(DOC_LINES)
    for i in range(DOCS):
        item = lsp.TextDocumentItem(f"file:///bench/doc{i}.py", "python", 1, text + f"# {i}\n")
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(item))
    await _sync(client, uri0)
    full = _rss_mb(pid)
    await _stop(client)
    size = len(text.encode())
    print(f"(b) `ace serve` VmRSS (pid {pid}):")
    print(f"  after initialize: {base:.1f} MB")
    print(f"  with {DOCS} open documents of {DOC_LINES:,} lines ({size / 1024:.0f} KB each):")
    print(f"    {full:.1f} MB  (+{full - base:.1f} MB, {(full - base) / DOCS * 1024:.0f} KB/doc)")
    report.add(
        Figure(
            f"`ace serve` RSS with {DOCS} documents of {DOC_LINES:,} lines",
            full,
            base,
            "MB",
            None,
            "after initialize",
        ),
    )


def _def_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if line.startswith("def function_")]


def _diagnostics(text: str) -> list[lsp.Diagnostic]:
    out = []
    for i, line in enumerate(text.splitlines()):
        col = line.find("total += i")
        if col >= 0:
            rng = lsp.Range(lsp.Position(i, col), lsp.Position(i, col + 5))
            out.append(lsp.Diagnostic(range=rng, message="Possible overflow", source="bench"))
    return out


async def _code_actions(report: Report) -> None:
    client, _ = await _start()
    text = python_file(5_000)
    uri = "file:///bench/actions.py"
    item = lsp.TextDocumentItem(uri, "python", 1, text)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(item))
    diags = _diagnostics(text)
    defs = _def_lines(text)
    rng = random.Random(3)
    version = 1
    results: dict[bool, list[float]] = {False: [], True: []}
    for with_changes in (False, True):
        for i in range(REQUESTS + WARMUP):
            if with_changes:  # a digit typed into a function name: no line moves
                version += 1
                ident = lsp.VersionedTextDocumentIdentifier(version=version, uri=uri)
                change = _insert(lsp.Position(rng.choice(defs), 13), str(rng.randrange(10)))
                client.text_document_did_change(lsp.DidChangeTextDocumentParams(ident, [change]))
            d = diags[i % len(diags)]
            params = lsp.CodeActionParams(
                lsp.TextDocumentIdentifier(uri), d.range, lsp.CodeActionContext(diagnostics=[d])
            )
            t0 = time.perf_counter()
            await client.text_document_code_action_async(params)
            if i >= WARMUP:
                results[with_changes].append((time.perf_counter() - t0) * 1000)
    await _stop(client)
    print(f"(c) codeAction round trip on a 5,000-line file over stdio, {REQUESTS} requests:")
    print(f"  alone:                          {_percentiles(results[False])}")
    print(f"  one didChange before each:      {_percentiles(results[True])}")
    p99 = sorted(results[True])[max(0, int(len(results[True]) * 0.99) - 1)]
    p99_alone = sorted(results[False])[max(0, int(len(results[False]) * 0.99) - 1)]
    report.add(
        Figure(
            "codeAction p99 with a didChange before each",
            p99,
            p99_alone,
            "ms",
            None,
            "codeAction alone",
        ),
    )
    report.series["codeAction with didChange (ms)"] = {
        "alone": results[False],
        "after didChange": results[True],
    }


def main() -> Report:
    report = Report()
    bench_keystrokes(report)
    asyncio.run(_memory(report))
    asyncio.run(_code_actions(report))
    return report


if __name__ == "__main__":
    main()
