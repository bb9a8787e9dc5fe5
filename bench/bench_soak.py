"""Soak: the real `ace serve` under mixed requests with random provider faults, for minutes.

Not in the default `python -m bench` run: `python -m bench soak` (10 minutes), or set
ACE_SOAK_MINUTES (e.g. `ACE_SOAK_MINUTES=2 python -m bench soak`; with the variable set, a plain
`python -m bench` includes it too).

Four client workers send, at random: codeAction (50%), codeAction/resolve (15%, a real fix through
the fake Mistral and Anthropic servers, which answer with random faults: 500, 503, 429, 529, read
timeouts, malformed JSON, empty content, replies without a diff, a diff that does not apply), hover
(15%) and didChange (20%, a comment at the end of the file is rewritten). Every 10 s it asks the
server for `ace/debugStats` (RSS, open fds, pending asyncio tasks and request futures, threads).
Reported: the RSS least-squares slope (MB/min, over the whole run and over its second half, after
caches have filled); and, at idle after the warm-up and again once every request is answered and
the server has settled, open fds, pending tasks and request futures; how many requests were sent
and answered; how long the server takes to exit after shutdown/exit. Nothing is asserted: a line
starting "LEAK?" flags fds or tasks that grew, request futures left over, or RSS still climbing
(second-half slope above 1 MB/min).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from ace_lsp.orchestrator.types import Tier
from bench.figures import Figure, Report
from tests.fakes import anthropic as fake_anthropic
from tests.fakes.harness import FakeVendor, Fault, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY as MISTRAL_KEY

SAMPLE_S = 10.0
SETTLE_S = 15.0  # at most this long for the server to drain to idle before a reading
RSS_LEAK_MB_MIN = 1.0  # a second-half slope above this is flagged
REQUEST_TIMEOUT_S = 30.0  # an answer later than this counts as unanswered
WORKERS = 4
SOURCE = (
    "import os\n\n\ndef f(x):\n    if x == None:\n        return os.sep\n    return x\n# note 0\n"
)
GOOD = (
    "Here is the fix.\n```diff\n--- a/mod.py\n+++ b/mod.py\n@@ -5,1 +5,1 @@\n"
    "-    if x == None:\n+    if x is None:\n```\n"
)
BAD_CONTEXT = GOOD.replace("-    if x == None:", "-    if x == Nothing:")
FAULTS = [
    Fault(status=500),
    Fault(status=503),
    Fault(status=429, retry_after="0"),
    Fault(delay_s=1.0),  # past the 0.5 s read timeout of the config below
    Fault(raw_body="{not json"),
    Fault(empty=True),
    Fault(text="The code looks fine to me."),
    Fault(text=BAD_CONTEXT),
]


class RandomFaults(FakeVendor):
    """Answers the good diff with probability `ok`, else a random fault; records nothing."""

    def __init__(self, seed: int, ok: float, extra: list[Fault] | None = None) -> None:
        super().__init__()
        self.rng, self.ok, self.faults = random.Random(seed), ok, FAULTS + (extra or [])
        self.served: Counter[str] = Counter()

    def next_fault(self, model: str) -> Fault:
        if self.rng.random() < self.ok:
            self.served["good"] += 1
            return Fault(text=GOOD)
        fault = self.rng.choice(self.faults)
        self.served["fault"] += 1
        return fault

    def record(self, rec: object) -> None:  # flat memory in this process too
        pass


def minutes() -> float:
    return float(os.environ.get("ACE_SOAK_MINUTES") or 10)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    if len(points) < 2:
        return float("nan")
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else float("nan")


def fd_kinds(pid: int) -> Counter[str]:
    """The server's open fds by kind (socket, pipe, anon_inode, file), read from /proc."""
    kinds: Counter[str] = Counter()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed between the listing and the readlink
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                kinds[target.split(":")[0] if target[:1] != "/" else "file"] += 1
    except OSError:  # no /proc, or the process is gone
        pass
    return kinds


async def debug_stats(client: LanguageClient) -> dict[str, Any]:
    """The server's `ace/debugStats` answer as a dict (pygls hands it over as a namedtuple)."""
    got = await asyncio.wait_for(
        client.protocol.send_request_async("ace/debugStats", None), REQUEST_TIMEOUT_S
    )
    return dict(got._asdict()) if hasattr(got, "_asdict") else dict(got)


async def settled(client: LanguageClient) -> dict[str, Any] | None:
    """`ace/debugStats` once the server is idle: two answers 0.5 s apart agree on fds, tasks and
    request futures (or SETTLE_S passed: the last answer, whatever it says); None if unanswered."""
    keys = ("open_fds", "tasks_pending", "request_futures")
    try:
        last = await debug_stats(client)
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            now = await debug_stats(client)
            if all(now[k] == last[k] for k in keys):
                return now
            last = now
    except TimeoutError:
        return None
    return last


class StderrLog:
    """Reads the server's stderr (its log) as it comes. pygls' client pipes stderr and never
    reads it: once ~64 KB of log lines fill the pipe, the server blocks in a write and stops
    answering (what a first 10-minute run hit). Counted by level, errors kept for the report."""

    def __init__(self) -> None:
        self.levels: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.bytes = 0

    async def drain(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.bytes += len(raw)
            words = raw.decode(errors="replace").split(maxsplit=4)
            # "%(asctime)s %(levelname)s %(name)s: %(message)s": date, time, level, name, message
            level = words[2] if len(words) > 3 and words[2].isupper() else "other"
            self.levels[level] += 1
            if level in ("WARNING", "ERROR", "CRITICAL"):
                self.problems[f"{level} {' '.join(words[3:])[:90]}"] += 1


async def _soak(env: dict[str, str], workdir: Path, seconds: float) -> dict[str, Any]:
    client = LanguageClient("soak", "0")

    @client.feature("ace/budget")  # type: ignore[untyped-decorator]
    def _budget(params: object) -> None:  # the server's status notification: nothing to do
        pass

    await client.start_io(sys.executable, "-m", "ace_lsp.server", env=env, cwd=str(workdir))
    assert client._server is not None and client._server.stderr is not None
    pid = client._server.pid
    log = StderrLog()
    draining = asyncio.ensure_future(log.drain(client._server.stderr))
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(
                text_document=lsp.TextDocumentClientCapabilities(
                    code_action=lsp.CodeActionClientCapabilities(
                        resolve_support=lsp.ClientCodeActionResolveOptions(properties=["edit"])
                    )
                )
            ),
            root_uri=workdir.as_uri(),
        )
    )
    client.initialized(lsp.InitializedParams())
    path = workdir / "mod.py"
    uri = path.as_uri()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, "python", 1, SOURCE))
    )
    diag = lsp.Diagnostic(
        range=lsp.Range(lsp.Position(4, 9), lsp.Position(4, 16)),
        message="Comparison to `None` should be `cond is None`",
        code="E711",
        source="Ruff",
    )
    params = lsp.CodeActionParams(
        lsp.TextDocumentIdentifier(uri), diag.range, lsp.CodeActionContext(diagnostics=[diag])
    )
    counts: Counter[str] = Counter()
    version = 1
    suffix = ""  # what didChange appended to line 6 (`return os.sep`), which the fix keeps
    lock = asyncio.Lock()
    errors: Counter[str] = Counter()

    async def code_actions() -> list[Any]:
        got = await asyncio.wait_for(
            client.text_document_code_action_async(params), REQUEST_TIMEOUT_S
        )
        return list(got or [])

    # warm up: a few of each, so that start-of-run figures are not import-time figures
    for _ in range(5):
        for action in await code_actions():
            if isinstance(action, lsp.CodeAction) and action.data is not None:
                await client.code_action_resolve_async(action)
                break
    rss: list[tuple[float, float]] = []
    samples: list[dict[str, Any]] = []
    idle_before = await settled(client)
    if idle_before is None:
        raise RuntimeError("ace serve does not answer ace/debugStats after the warm-up")
    kinds_before = fd_kinds(pid)
    t_start = time.monotonic()
    deadline = t_start + seconds

    def server_gone() -> bool:
        return client._server is None or client._server.returncode is not None

    async def sampler() -> None:
        while True:
            if server_gone():
                return
            try:
                stats = await debug_stats(client)
            except TimeoutError:
                counts["debugStats timed out"] += 1
            else:
                t = (time.monotonic() - t_start) / 60
                samples.append({"min": t, **stats})
                if stats["rss_bytes"] is not None:
                    rss.append((t, stats["rss_bytes"] / 2**20))
                print(
                    f"  {t:4.1f} min: RSS {(stats['rss_bytes'] or 0) / 2**20:.1f} MB, "
                    f"fds {stats['open_fds']}, tasks {stats['tasks_pending']}, "
                    f"request futures {stats['request_futures']}, threads {stats['threads']}",
                    flush=True,
                )
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(min(SAMPLE_S, max(0.0, deadline - time.monotonic())))

    async def worker(seed: int) -> None:
        nonlocal version, suffix
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            pick = rng.random()
            try:
                if pick < 0.5:
                    counts["codeAction sent"] += 1
                    await code_actions()
                    counts["codeAction answered"] += 1
                elif pick < 0.65:
                    actions = [
                        a for a in await code_actions() if isinstance(a, lsp.CodeAction) and a.data
                    ]
                    if actions:
                        counts["resolve sent"] += 1
                        resolved = await asyncio.wait_for(
                            client.code_action_resolve_async(rng.choice(actions)),
                            REQUEST_TIMEOUT_S,
                        )
                        counts["resolve answered"] += 1
                        counts["resolve with edit" if resolved.edit else "resolve, no edit"] += 1
                elif pick < 0.8:
                    counts["hover sent"] += 1
                    await asyncio.wait_for(
                        client.text_document_hover_async(
                            lsp.HoverParams(lsp.TextDocumentIdentifier(uri), lsp.Position(4, 8))
                        ),
                        REQUEST_TIMEOUT_S,
                    )
                    counts["hover answered"] += 1
                else:
                    # a new comment on the fixed function's line 6: new span text each time, so
                    # the response cache does not answer every resolve (and may grow: watched)
                    async with lock:
                        version += 1
                        new = f"  # {rng.randrange(10**6)}"
                        change = lsp.TextDocumentContentChangePartial(
                            range=lsp.Range(lsp.Position(5, 21), lsp.Position(5, 21 + len(suffix))),
                            text=new,
                        )
                        suffix = new
                        client.text_document_did_change(
                            lsp.DidChangeTextDocumentParams(
                                lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
                                [change],
                            )
                        )
                    counts["didChange"] += 1
                    await asyncio.sleep(0.005)
            except TimeoutError:
                counts["timed out (unanswered)"] += 1
                if client._server is not None and client._server.returncode is not None:
                    counts["server died"] += 1
                    return
            except Exception as exc:  # a JSON-RPC error answer is an answer: count it
                counts[f"error answer: {type(exc).__name__}"] += 1
                errors[str(exc)[:70]] += 1

    await asyncio.gather(sampler(), *(worker(i) for i in range(WORKERS)))
    idle_after = await settled(client) if not server_gone() else None
    kinds_after = fd_kinds(pid)
    t0 = time.monotonic()
    died = server_gone()
    if not died:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 10)
            client.exit(None)
        except TimeoutError:
            counts["shutdown unanswered"] += 1
    server = client._server
    try:
        code: int | None = await asyncio.wait_for(server.wait(), 10)
    except TimeoutError:
        code = None
        server.kill()
    if died:
        counts[f"server died during the run (exit code {server.returncode})"] += 1
    exit_s = time.monotonic() - t0
    try:
        await asyncio.wait_for(client.stop(), 10)  # type: ignore[no-untyped-call]
    except TimeoutError:
        counts["client stop timed out"] += 1
    try:
        await asyncio.wait_for(draining, 5)
    except TimeoutError:
        counts["stderr still open after exit"] += 1
    return {
        "rss": rss,
        "samples": samples,
        "log": log,
        "idle_before": idle_before,
        "idle_after": idle_after,
        "fd_kinds": (kinds_before, kinds_after),
        "counts": counts,
        "exit_code": code,
        "exit_s": exit_s,
        "pid": pid,
        "errors": errors,
    }


def idle_fds_early(before: dict[str, Any], samples: list[dict[str, Any]]) -> list[int]:
    """Open fds of the samples taken in the run's first half while the server was idle (no more
    tasks than before the run, no request in flight): the range that pooled connections span."""
    end = samples[-1]["min"] if samples else 0.0
    return [
        x["open_fds"]
        for x in samples
        if x["min"] <= end / 2
        and x["open_fds"] is not None
        and x["tasks_pending"] <= before["tasks_pending"]
        and x["request_futures"] == 0
    ]


def leak_flags(
    before: dict[str, Any],
    after: dict[str, Any] | None,
    half: float,
    samples: list[dict[str, Any]],
) -> list[str]:
    """What looks like a leak, one sentence each; empty when nothing does. Keep-alive connections
    to the providers come and go, so fds are a leak only past what idle samples of the first half
    already showed; a leak of one fd per request or fault would be far beyond that."""
    if after is None:
        return ["the server died or stopped answering ace/debugStats: nothing to compare"]
    flags = []
    ceiling = max([before["open_fds"] or 0, *idle_fds_early(before, samples)])
    if (after["open_fds"] or 0) > ceiling:
        flags.append(
            f"open fds grew at idle: {before['open_fds']} before the run, at most {ceiling} "
            f"idle in its first half, {after['open_fds']} after it"
        )
    if after["tasks_pending"] > before["tasks_pending"]:
        flags.append(
            f"asyncio tasks still pending at idle: {before['tasks_pending']} -> "
            f"{after['tasks_pending']}"
        )
    if after["request_futures"] > 0:
        flags.append(f"{after['request_futures']} request futures left after every answer")
    if half > RSS_LEAK_MB_MIN:
        flags.append(f"RSS still climbing over the second half: {half:+.3f} MB/min")
    return flags


def main() -> Report:
    mins = minutes()
    mistral = RandomFaults(1, ok=0.6)
    anthropic = RandomFaults(2, ok=0.7, extra=[Fault(status=529), Fault(error_event=True)])
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve(mistral_app(mistral)) as mistral_url,
        serve(fake_anthropic.create_app(anthropic)) as anthropic_url,
    ):
        home, work = Path(tmp) / "home", Path(tmp) / "work"
        home.mkdir()
        work.mkdir()
        (home / "config.toml").write_text(
            "[calls]\nmax_retries = 1\nretry_after_limit_s = 1\n\n"
            "[providers.devstral]\nread_timeout_s = 0.5\n"
            # no daily or monthly cap: the run must keep calling the fakes, not stop at a budget
            + "".join(
                f"\n[budget.{t.value}]\ndaily_usd = false\nmonthly_usd = false\n" for t in Tier
            )
        )
        (work / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
        (work / "mod.py").write_text(SOURCE)
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        env |= {
            "ACE_HOME": str(home),
            "MISTRAL_API_KEY": MISTRAL_KEY,
            "ACE_MISTRAL_BASE_URL": f"{mistral_url}/v1",
            "ANTHROPIC_API_KEY": fake_anthropic.API_KEY,
            "ACE_ANTHROPIC_BASE_URL": anthropic_url,
        }
        print(f"soak: {mins:g} min of mixed requests, {WORKERS} workers, RSS every {SAMPLE_S:g} s")
        got = asyncio.run(_soak(env, work, mins * 60))
    rss = got["rss"]
    whole = slope(rss)
    half = slope([p for p in rss if p[0] >= rss[-1][0] / 2])
    counts: Counter[str] = got["counts"]
    before, after = got["idle_before"], got["idle_after"] or {}
    samples, log = got["samples"], got["log"]
    print(f"  `ace serve` pid {got['pid']}, {len(samples)} samples")
    print(
        f"  RSS {rss[0][1]:.1f} -> {rss[-1][1]:.1f} MB; slope {whole:+.3f} MB/min over the run, "
        f"{half:+.3f} MB/min over its second half"
    )

    def idle(key: str) -> str:
        return f"{before.get(key)} -> {after.get(key)}"

    early = idle_fds_early(before, samples)
    kinds_before, kinds_after = got["fd_kinds"]
    print(
        f"  open fds at idle {idle('open_fds')} (idle samples of the first half: "
        f"{min(early, default='-')}-{max(early, default='-')}); by kind "
        f"{dict(sorted(kinds_before.items()))} -> {dict(sorted(kinds_after.items()))}"
    )
    print(
        f"  at idle, before the run -> after it (settled): "
        f"tasks pending {idle('tasks_pending')}, request futures {idle('request_futures')}, "
        f"threads {idle('threads')}, RSS MB {before['rss_bytes'] / 2**20:.1f} -> "
        + (f"{after['rss_bytes'] / 2**20:.1f}" if after else "?")
    )
    print("  requests: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for message, n in got["errors"].most_common(4):
        print(f"    error answer x{n}: {message}")
    print(
        f"  server log (stderr): {log.bytes / 1024:.0f} KB, "
        + ", ".join(f"{k} {v}" for k, v in sorted(log.levels.items()))
    )
    for message, n in log.problems.most_common(4):
        print(f"    x{n}: {message}")
    print(f"  fakes served: mistral {dict(mistral.served)}, anthropic {dict(anthropic.served)}")
    unanswered = sum(
        counts[f"{k} sent"] - counts[f"{k} answered"] for k in ("codeAction", "resolve", "hover")
    ) - sum(v for k, v in counts.items() if k.startswith("error answer"))
    # (timed-out requests are in `sent` without `answered`: they count as unanswered)
    print(
        f"  unanswered requests: {unanswered}; exit code {got['exit_code']} "
        f"{got['exit_s']:.2f} s after shutdown/exit"
    )
    flags = leak_flags(before, got["idle_after"], half, samples)
    for flag in flags:
        print(f"  LEAK? {flag}")
    if not flags:
        print("  no leak flagged: fds, tasks and request futures back to idle, RSS flat")
    report = Report()
    report.add(
        Figure(f"soak {mins:g} min: RSS slope", whole, unit="MB/min", target="~0 (flat)"),
        Figure(
            f"soak {mins:g} min: RSS slope, second half", half, unit="MB/min", target="~0 (flat)"
        ),
        Figure(
            f"soak {mins:g} min: open fds at idle, after",
            after.get("open_fds", float("nan")),
            before["open_fds"],
            "fds",
            "no growth",
            "at idle before",
        ),
        Figure(
            f"soak {mins:g} min: asyncio tasks pending at idle, after",
            after.get("tasks_pending", float("nan")),
            before["tasks_pending"],
            "tasks",
            "no growth",
            "at idle before",
        ),
        Figure(
            f"soak {mins:g} min: exit after shutdown/exit",
            got["exit_s"] * 1000,
            unit="ms",
            target="< 10 s",
        ),
    )
    report.series["soak RSS (min, MB)"] = rss
    return report


if __name__ == "__main__":
    main()
