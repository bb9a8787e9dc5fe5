"""OpenAIProvider against fake Chat Completions servers on 127.0.0.1: OpenAI's and llama.cpp's.

What every provider does (text, usage, streaming, the shared faults, keys, the network) is in
test_provider_contract.py; here is what only OpenAI's wire does: its body, its rate-limit headers
and error codes, refusals and tool calls, keyless compatible servers, its pure helpers.

Every test uses a model name of its own, so the faults it scripts and the requests it reads are its
own even though the servers live for the whole module.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.config_schema import KINDS
from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    InputError,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
    Timeout,
)
from ace_lsp.orchestrator.providers import make_provider
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.local import LocalProvider
from ace_lsp.orchestrator.providers.mistral import MistralProvider
from ace_lsp.orchestrator.providers.openai import (
    OpenAIProvider,
    content_text,
    error_fields,
    parse_duration,
    ratelimit_reset,
)
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType, Usage
from tests.fakes.harness import FakeVendor, Fault, Recorded, serve
from tests.fakes.openai import KEY, openai_app

TEXT = "Hello from the fake."
REQUEST = LLMRequest(
    task=TaskType.CHAT,
    messages=(Message("system", "You fix code."), Message("user", "Fix this.")),
    max_output_tokens=2048,
    temperature=0.2,
)


@dataclass
class Fake:
    vendor: FakeVendor
    base_url: str  # with the version path, as the config holds it

    def requests(self, model: ModelSpec) -> list[Recorded]:
        return [
            r
            for r in self.vendor.requests
            if isinstance(r.body, dict) and r.body.get("model") == model.wire_name
        ]


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[Fake]:
    vendor = FakeVendor(default_text=TEXT)
    with serve(openai_app(vendor)) as url:
        yield Fake(vendor, f"{url}/v1")


@pytest.fixture(scope="module")
def local_fake() -> Iterator[Fake]:
    vendor = FakeVendor(default_text=TEXT)
    with serve(openai_app(vendor, key=None, flavour="llamacpp")) as url:
        yield Fake(vendor, f"{url}/v1")


def settings(base_url: str, key: str | None = KEY, **kw: Any) -> ProviderSettings:
    return ProviderSettings(
        name="openai",
        kind="openai",
        base_url=base_url,
        api_key=key,
        key_env=("OPENAI_API_KEY",),
        **kw,
    )


@pytest.fixture
def model() -> ModelSpec:
    return ModelSpec(
        id="gpt-test",
        provider="openai",
        wire_name=f"gpt-test-{uuid.uuid4().hex[:8]}",
        input_per_1k=0.001,
        output_per_1k=0.002,
        context_window=128_000,
        max_output=1000,
    )


@pytest.fixture
async def provider(openai_fake: Fake) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(settings(openai_fake.base_url, read_timeout_s=5))
    yield p
    await p.aclose()


async def collect(p: OpenAIProvider, model: ModelSpec) -> list[StreamChunk]:
    return [chunk async for chunk in p.stream(model, REQUEST)]


async def call(p: OpenAIProvider, model: ModelSpec, mode: str) -> tuple[str, Usage | None]:
    """(text, usage) by `complete` or by `stream`, whichever `mode` names."""
    if mode == "complete":
        reply = await p.complete(model, REQUEST)
        return reply.text, reply.usage
    chunks = await collect(p, model)
    assert all(c.usage is None for c in chunks[:-1])
    return "".join(c.text for c in chunks), chunks[-1].usage


def assert_told_well(err: ProviderError) -> None:
    """One line, names who failed, ends like a sentence, and never shows the key."""
    text = str(err)
    assert "openai" in text and text.endswith(".") and "\n" not in text
    assert KEY not in text and KEY not in repr(err.args)
    assert err.__cause__ is None


# -- success ------------------------------------------------------------------------------------


async def test_complete_reports_the_snapshot_openai_answered_with(
    provider: OpenAIProvider, model: ModelSpec
) -> None:
    reply = await provider.complete(model, REQUEST)
    assert reply.model == f"{model.wire_name}-2024-08-06"


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_request_headers_and_body(
    openai_fake: Fake, provider: OpenAIProvider, model: ModelSpec, mode: str
) -> None:
    await call(provider, model, mode)
    [sent] = openai_fake.requests(model)
    assert sent.method == "POST" and sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.query == {} and KEY not in sent.path
    expected: dict[str, Any] = {
        "model": model.wire_name,
        "messages": [
            {"role": "system", "content": "You fix code."},
            {"role": "user", "content": "Fix this."},
        ],
        "max_tokens": 1000,  # the request's 2048, capped at the model's max_output
        "temperature": 0.2,
    }
    if mode == "stream":
        expected |= {"stream": True, "stream_options": {"include_usage": True}}
    assert sent.body == expected


# -- faults -------------------------------------------------------------------------------------

BOTH = ["complete", "stream"]

HTTP_FAULTS = [
    pytest.param(Fault(status=429), RateLimited, "rate limiting", 20.0, id="429-reset-header"),
    pytest.param(
        Fault(status=429, retry_after="7", retry_after_ms="1500"),
        RateLimited,
        "HTTP 429",
        1.5,
        id="429-retry-after-ms-wins",
    ),
    pytest.param(
        Fault(kind="insufficient_quota"), QuotaExhausted, "quota is used up", None, id="429-quota"
    ),
    pytest.param(Fault(status=404), BadRequest, "does not exist", None, id="404-model"),
    pytest.param(Fault(status=502), ServerError, "HTTP 502", None, id="502"),
    pytest.param(
        Fault(kind="bare"), ServerError, "internal_server_error", None, id="500-compat-bare"
    ),
    pytest.param(Fault(kind="echo_key"), BadRequest, "Bearer ***", None, id="key-echoed-scrubbed"),
]


@pytest.mark.parametrize("mode", BOTH)
@pytest.mark.parametrize(("fault", "error", "said", "retry_after"), HTTP_FAULTS)
async def test_http_faults(
    openai_fake: Fake,
    provider: OpenAIProvider,
    model: ModelSpec,
    mode: str,
    fault: Fault,
    error: type[ProviderError],
    said: str,
    retry_after: float | None,
) -> None:
    openai_fake.vendor.inject(model.wire_name, fault)
    with pytest.raises(error) as caught:
        await call(provider, model, mode)
    assert type(caught.value) is error
    assert said in str(caught.value)
    assert_told_well(caught.value)
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == retry_after
    assert len(openai_fake.requests(model)) == 1  # providers never retry


REPLY_FAULTS = [
    pytest.param("[1, 2]", BadResponse, "not a chat completion", id="json-not-object"),
    pytest.param(
        '{"id": "chatcmpl-x", "object": "chat.completion", "created": 1}',
        BadResponse,
        "without any choices",
        id="missing-choices",
    ),
    pytest.param(
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": null},'
        ' "finish_reason": "stop"}]}',
        BadResponse,
        "returned an empty reply",
        id="null-content",
    ),
    pytest.param(
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": null,'
        ' "tool_calls": [{"id": "call_1", "type": "function"}]}, "finish_reason": "tool_calls"}]}',
        BadResponse,
        "tool call",
        id="tool-call-instead-of-text",
    ),
    pytest.param(
        '{"choices": [{"index": 0, "message": {"role": "assistant", "content": null,'
        ' "refusal": "I cannot help with that."}, "finish_reason": "stop"}]}',
        BadResponse,
        "declined to answer (I cannot help with that.)",
        id="refusal",
    ),
    pytest.param(
        '{"error": {"message": "Rate limited.", "type": "requests", "param": null,'
        ' "code": "rate_limit_exceeded"}}',
        RateLimited,
        "Rate limited.",
        id="error-object-with-200",
    ),
]


@pytest.mark.parametrize(("raw", "error", "said"), REPLY_FAULTS)
async def test_malformed_replies(
    openai_fake: Fake,
    provider: OpenAIProvider,
    model: ModelSpec,
    raw: str,
    error: type[ProviderError],
    said: str,
) -> None:
    openai_fake.vendor.inject(model.wire_name, Fault(raw_body=raw))
    with pytest.raises(error) as caught:
        await provider.complete(model, REQUEST)
    assert said in str(caught.value)
    assert_told_well(caught.value)


STREAM_FAULTS = [
    pytest.param(Fault(kind="no_done"), ServerError, "closed the stream mid-reply", id="no-done"),
    pytest.param(Fault(error_event=True), ServerError, "HTTP 500", id="error-event"),
    pytest.param(
        Fault(error_event=True, kind="rate_limit"), RateLimited, "Rate limit", id="error-event-429"
    ),
    pytest.param(
        Fault(error_event=True, kind="insufficient_quota"),
        QuotaExhausted,
        "quota",
        id="error-event-quota",
    ),
    pytest.param(
        Fault(raw_body="data: {not json\n\n"), BadResponse, "malformed JSON", id="malformed-event"
    ),
    pytest.param(
        Fault(raw_body='data: ["a list"]\n\ndata: [DONE]\n\n'),
        BadResponse,
        "not a JSON object",
        id="event-not-object",
    ),
    pytest.param(
        Fault(raw_body="data: [DONE]\n\n"), BadResponse, "empty reply", id="done-without-text"
    ),
]


@pytest.mark.parametrize(("fault", "error", "said"), STREAM_FAULTS)
async def test_stream_faults(
    openai_fake: Fake,
    provider: OpenAIProvider,
    model: ModelSpec,
    fault: Fault,
    error: type[ProviderError],
    said: str,
) -> None:
    openai_fake.vendor.inject(model.wire_name, fault)
    with pytest.raises(error) as caught:
        await collect(provider, model)
    assert said in str(caught.value)
    assert_told_well(caught.value)


@pytest.mark.parametrize(
    ("fault", "usage"),
    [
        pytest.param(Fault(kind="keepalive"), Usage(12, 34), id="comment-lines-ignored"),
        pytest.param(Fault(kind="no_usage"), None, id="no-usage-chunk"),
        pytest.param(Fault(text="one", cut_after=3), None, id="cut-after-finish-keeps-reply"),
    ],
)
async def test_stream_quirks_that_still_succeed(
    openai_fake: Fake,
    provider: OpenAIProvider,
    model: ModelSpec,
    fault: Fault,
    usage: Usage | None,
) -> None:
    openai_fake.vendor.inject(model.wire_name, fault)
    chunks = await collect(provider, model)
    assert "".join(c.text for c in chunks) == (fault.text or TEXT)
    assert chunks[-1].usage == usage


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "said"),
    [
        pytest.param(None, "HTTP 401", id="no-key"),
    ],
)
async def test_a_refused_or_missing_key_is_an_auth_error(
    openai_fake: Fake, model: ModelSpec, key: str | None, said: str
) -> None:
    p = OpenAIProvider(settings(openai_fake.base_url, key=key, key_required=False))
    try:
        with pytest.raises(AuthError) as caught:
            await p.complete(model, REQUEST)
    finally:
        await p.aclose()
    assert said in str(caught.value)
    assert_told_well(caught.value)
    if key is not None:
        assert key not in str(caught.value)


# -- keyless OpenAI-compatible servers ----------------------------------------------------------


@pytest.fixture
async def local(local_fake: Fake) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(
        ProviderSettings(
            name="ollama", kind="openai", base_url=local_fake.base_url, key_required=False
        )
    )
    yield p
    await p.aclose()


async def test_keyless_server_gets_no_authorization_header(
    local_fake: Fake, local: OpenAIProvider, model: ModelSpec
) -> None:
    assert local.available() is None
    reply = await local.complete(model, REQUEST)
    assert reply.text == TEXT and reply.model == model.wire_name  # echoed, no snapshot
    [sent] = local_fake.requests(model)
    assert "authorization" not in sent.headers


async def test_keyless_server_stream_with_pings_and_no_usage(
    local_fake: Fake, local: OpenAIProvider, model: ModelSpec
) -> None:
    chunks = [chunk async for chunk in local.stream(model, REQUEST)]
    assert "".join(c.text for c in chunks) == TEXT
    assert chunks[-1].usage is None  # llama.cpp sends finish_reason but no usage


async def test_keyless_server_500_on_malformed_body_is_a_server_error(
    local_fake: Fake, local: OpenAIProvider, model: ModelSpec
) -> None:
    local_fake.vendor.inject(model.wire_name, Fault(kind="bare"))
    with pytest.raises(ServerError, match="internal_server_error"):
        await local.complete(model, REQUEST)


# -- the network --------------------------------------------------------------------------------


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose listen backlog is full: a new connection is never accepted (Linux)."""
    if sys.platform != "linux":
        pytest.skip("a full accept queue drops SYNs only on Linux")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, server]:
        sock.close()


async def test_connect_timeout(unaccepting_port: int, model: ModelSpec) -> None:
    base = f"http://127.0.0.1:{unaccepting_port}/v1"
    p = OpenAIProvider(settings(base, connect_timeout_s=0.2))
    try:
        with pytest.raises(Timeout, match=r"did not accept a connection within 0\.2 s") as caught:
            await p.complete(model, REQUEST)
    finally:
        await p.aclose()
    assert_told_well(caught.value)


# -- pure helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("20ms", 0.02, id="ms"),
        pytest.param("1s", 1.0, id="s"),
        pytest.param("6m0s", 360.0, id="m-s"),
        pytest.param("1h2m3.5s", 3723.5, id="h-m-s"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="words"),
        pytest.param("5 s", None, id="space"),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param(
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"},
            2.0,
            id="requests-exhausted",
        ),
        pytest.param(
            {
                "X-RateLimit-Remaining-Requests": "0",
                "X-RateLimit-Reset-Requests": "2s",
                "X-RateLimit-Remaining-Tokens": "0",
                "X-RateLimit-Reset-Tokens": "1m0s",
            },
            60.0,
            id="both-exhausted-longest",
        ),
        pytest.param(
            {"x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "1s"},
            None,
            id="not-exhausted",
        ),
        pytest.param({}, None, id="no-headers"),
    ],
)
def test_ratelimit_reset(headers: dict[str, str], seconds: float | None) -> None:
    assert ratelimit_reset(headers) == seconds


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"error": {"message": "m", "type": "t", "param": None, "code": "c"}},
            ("m", "c"),
            id="openai",
        ),
        pytest.param({"error": {"message": "m", "type": "t", "code": None}}, ("m", "t"), id="type"),
        pytest.param(
            {"error": {"type": "internal_server_error"}}, ("internal_server_error",) * 2, id="bare"
        ),
        pytest.param({"error": {"message": "m", "code": 500}}, ("m", "500"), id="int-code"),
        pytest.param(
            {"object": "error", "message": "m", "type": "t", "code": "1300"},
            ("m", "1300"),
            id="top-level",
        ),
        pytest.param(
            {"detail": [{"loc": ["body", "stream_options"], "msg": "Extra inputs"}]},
            ("stream_options: Extra inputs", None),
            id="fastapi-detail",
        ),
        pytest.param({"error": "plain"}, ("plain", None), id="string"),
        pytest.param(None, ("", None), id="not-json"),
    ],
)
def test_error_fields(payload: Any, expected: tuple[str, str | None]) -> None:
    assert error_fields(payload) == expected


@pytest.mark.parametrize(
    ("content", "text"),
    [
        pytest.param("hi", "hi", id="string"),
        pytest.param(None, "", id="null"),
        pytest.param(
            [
                {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
                {"type": "text", "text": "a"},
                {"type": "reference", "reference_ids": [1]},
                {"type": "text", "text": "b"},
            ],
            "ab",
            id="parts",
        ),
    ],
)
def test_content_text(content: Any, text: str) -> None:
    assert content_text(content) == text


# -- make_provider ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        pytest.param("openai", OpenAIProvider, id="openai"),
        pytest.param("mistral", MistralProvider, id="mistral"),
        pytest.param("local", LocalProvider, id="local"),
    ],
)
async def test_make_provider_dispatches_on_kind(kind: str, cls: type[Any]) -> None:
    settings = ProviderSettings(name=kind, kind=kind, base_url="http://127.0.0.1:9", api_key="k")
    made = make_provider(settings)
    assert type(made) is cls and made.name == kind
    assert kind in KINDS
    await made.aclose()


def test_make_provider_refuses_an_unknown_kind() -> None:
    with pytest.raises(InputError, match="kind 'smoke-signals'"):
        make_provider(ProviderSettings(name="x", kind="smoke-signals"))
