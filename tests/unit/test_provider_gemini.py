"""The `gemini` provider against a fake Gemini API on 127.0.0.1: its own wire format and errors.

The shared behaviour is in test_provider_contract.py; here is Gemini's: generateContent and its
SSE stream, thought parts, google.rpc statuses (daily quota versus per-minute, RetryInfo,
location), its pure helpers, and the key kept out of the URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    Overloaded,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    ServerError,
    Timeout,
)
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.gemini import GeminiProvider, brief, parse_duration
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType, Usage
from tests.fakes.gemini import API_KEY, create_app
from tests.fakes.harness import FakeVendor, Fault, serve

MODEL = ModelSpec(
    id="gemini-test",
    provider="gemini",
    wire_name="gemini-2.5-flash",
    input_per_1k=0.0003,
    output_per_1k=0.0025,
    context_window=1_048_576,
    max_output=65_536,
)
REQUEST = LLMRequest(
    task=TaskType.AUTO_FIX,
    messages=(
        Message("system", "You fix code."),
        Message("user", "Here is the file."),
        Message("user", "Fix line 3."),
        Message("assistant", "Which rule?"),
        Message("user", "F401."),
    ),
    max_output_tokens=512,
    temperature=0.2,
)
KEY_ENV = "GOOGLE_AI_API_KEY"


def settings(
    url: str, *, key: str | None = API_KEY, read_timeout_s: float = 10.0
) -> ProviderSettings:
    return ProviderSettings(
        name="gemini",
        kind="gemini",
        base_url=url,
        api_key=key,
        key_env=(KEY_ENV, "GEMINI_API_KEY"),
        read_timeout_s=read_timeout_s,
    )


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app()


@pytest.fixture(scope="module")
def url(app: Starlette) -> Iterator[str]:
    with serve(app) as base:
        yield base


@pytest.fixture
def vendor(app: Starlette) -> FakeVendor:
    """A fresh recorder and fault queue for each test, on the module's one server."""
    fresh = FakeVendor()
    app.state.vendor = fresh
    return fresh


@pytest.fixture
async def provider(url: str, vendor: FakeVendor) -> AsyncIterator[GeminiProvider]:
    p = GeminiProvider(settings(url))
    yield p
    await p.aclose()


async def collect(provider: GeminiProvider, chunks: list[StreamChunk]) -> None:
    async for chunk in provider.stream(MODEL, REQUEST):
        chunks.append(chunk)


async def call(provider: GeminiProvider, mode: str) -> None:
    if mode == "complete":
        await provider.complete(MODEL, REQUEST)
    else:
        await collect(provider, [])


def assert_one_sentence(message: str, *keys: str) -> None:
    assert message.endswith("."), message
    assert "\n" not in message and len(message) <= 300, message
    for key in (API_KEY, *keys):
        assert key not in message


# -- success -------------------------------------------------------------------------------------


async def test_complete_sends_the_generate_content_shape(
    provider: GeminiProvider, vendor: FakeVendor
) -> None:
    reply = await provider.complete(MODEL, REQUEST)

    assert reply.text == vendor.default_text
    assert reply.usage == Usage(12, 34)
    assert reply.model == "gemini-2.5-flash"
    [sent] = vendor.requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.query == {}  # above all: no `key` in the URL
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "authorization" not in sent.headers
    assert sent.body == {
        "systemInstruction": {"parts": [{"text": "You fix code."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Here is the file."}, {"text": "Fix line 3."}]},
            {"role": "model", "parts": [{"text": "Which rule?"}]},
            {"role": "user", "parts": [{"text": "F401."}]},
        ],
        "generationConfig": {"maxOutputTokens": 512, "temperature": 0.2},
    }


async def test_stream_yields_text_then_usage_from_the_last_event(
    provider: GeminiProvider, vendor: FakeVendor
) -> None:
    vendor.inject("*", Fault(text="A longer reply, streamed in pieces.", usage=(40, 9)))
    chunks: list[StreamChunk] = []
    await collect(provider, chunks)

    assert "".join(c.text for c in chunks) == "A longer reply, streamed in pieces."
    assert len(chunks) > 2
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1] == StreamChunk("", Usage(40, 9))
    [sent] = vendor.requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert sent.headers["x-goog-api-key"] == API_KEY


@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_thought_parts_are_dropped_and_thinking_tokens_count_as_output(
    provider: GeminiProvider, vendor: FakeVendor, mode: str
) -> None:
    vendor.inject("*", Fault(kind="thinking", usage=(20, 30)))
    usage: Usage | None
    if mode == "complete":
        reply = await provider.complete(MODEL, REQUEST)
        text, usage = reply.text, reply.usage
    else:
        chunks: list[StreamChunk] = []
        await collect(provider, chunks)
        text, usage = "".join(c.text for c in chunks), chunks[-1].usage
    assert text == vendor.default_text
    assert usage == Usage(20, 30)


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        pytest.param(Fault(kind="daily_quota"), QuotaExhausted, "daily quota", id="daily-quota"),
        pytest.param(Fault(kind="no_quota"), QuotaExhausted, "no quota", id="limit-0"),
        pytest.param(Fault(kind="per_minute"), RateLimited, "PerMinute", id="per-minute"),
        pytest.param(Fault(status=429), RateLimited, "HTTP 429", id="429-bare"),
        pytest.param(Fault(kind="auth"), AuthError, KEY_ENV, id="API_KEY_INVALID"),
        pytest.param(Fault(status=403), AuthError, KEY_ENV, id="PERMISSION_DENIED"),
        pytest.param(Fault(status=504), Timeout, "HTTP 504", id="DEADLINE_EXCEEDED"),
        pytest.param(Fault(kind="location"), ProviderUnavailable, "location", id="FAILED_PRECOND"),
        pytest.param(Fault(status=404), BadRequest, "HTTP 404", id="NOT_FOUND"),
        pytest.param(Fault(kind="blocked"), BadResponse, "blocked the prompt", id="blocked"),
        pytest.param(Fault(kind="safety"), BadResponse, "SAFETY", id="safety-no-text"),
    ],
)
async def test_faults_map_onto_the_taxonomy(
    provider: GeminiProvider,
    vendor: FakeVendor,
    mode: str,
    fault: Fault,
    error: type[ProviderError],
    said: str,
) -> None:
    vendor.inject("*", fault)
    with pytest.raises(error) as caught:
        await call(provider, mode)
    assert type(caught.value) is error
    assert said in str(caught.value)
    assert_one_sentence(str(caught.value))


@pytest.mark.parametrize(
    ("fault", "error", "wait"),
    [
        pytest.param(Fault(kind="daily_quota"), QuotaExhausted, None, id="per-day-is-not-retried"),
        pytest.param(Fault(kind="per_minute"), RateLimited, 17.0, id="per-minute-RetryInfo"),
        pytest.param(
            Fault(kind="per_minute", retry_after="3"), RateLimited, 17.0, id="RetryInfo-wins"
        ),
        pytest.param(Fault(status=429), RateLimited, None, id="no-hint"),
    ],
)
async def test_daily_quota_versus_per_minute_rate_limit(
    provider: GeminiProvider,
    vendor: FakeVendor,
    fault: Fault,
    error: type[ProviderError],
    wait: float | None,
) -> None:
    vendor.inject("*", fault)
    with pytest.raises(error) as caught:
        await provider.complete(MODEL, REQUEST)
    assert caught.value.retryable is (error is RateLimited)
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == wait


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("17s", 17.0, id="seconds"),
        pytest.param("34.074824224s", 34.074824224, id="fraction"),
        pytest.param("900ms", 0.9, id="millis"),
        pytest.param("soon", None, id="junk"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("message", "first"),
    [
        pytest.param("Resource has been exhausted (e.g. check quota).", None, id="e.g."),
        pytest.param(
            "API key not valid. Please pass a valid API key.", "API key not valid", id="two"
        ),
        pytest.param(
            "You exceeded your quota.\n* Quota exceeded", "You exceeded your quota", id="nl"
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_brief_quotes_the_first_sentence(message: str, first: str | None) -> None:
    assert brief(message) == (message.rstrip(".") if first is None else first)


async def test_an_error_object_mid_stream_is_raised_from_stream(
    provider: GeminiProvider, vendor: FakeVendor
) -> None:
    vendor.inject("*", Fault(error_event=True))
    chunks: list[StreamChunk] = []
    with pytest.raises(Overloaded) as caught:
        await collect(provider, chunks)
    assert [c.text for c in chunks] == [vendor.default_text[:8]]
    assert_one_sentence(str(caught.value))


async def test_a_stream_that_ends_without_a_finish_reason_is_a_server_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        event = '{"candidates":[{"content":{"role":"model","parts":[{"text":"Hal"}]},"index":0}]}'
        return httpx.Response(
            200, text=f"data: {event}\r\n\r\n", headers={"content-type": "text/event-stream"}
        )

    provider = GeminiProvider(settings("http://fake"), transport=httpx.MockTransport(handler))
    chunks: list[StreamChunk] = []
    with pytest.raises(ServerError, match="closed the stream mid-reply"):
        await collect(provider, chunks)
    assert [c.text for c in chunks] == ["Hal"]
    await provider.aclose()


# -- keys and the network ------------------------------------------------------------------------


async def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(
    url: str, vendor: FakeVendor
) -> None:
    wrong = "test-gemini-key-9999"
    provider = GeminiProvider(settings(url, key=wrong))
    with pytest.raises(AuthError) as caught:
        await provider.complete(MODEL, REQUEST)
    await provider.aclose()
    assert vendor.requests[0].headers["x-goog-api-key"] == wrong
    assert "HTTP 400" in str(caught.value)  # Google says API_KEY_INVALID with a 400
    assert_one_sentence(str(caught.value), wrong)


async def test_no_key_is_an_auth_error_without_a_request(url: str, vendor: FakeVendor) -> None:
    provider = GeminiProvider(settings(url, key=None))
    assert provider.available() is not None
    with pytest.raises(AuthError, match=KEY_ENV):
        await provider.complete(MODEL, REQUEST)
    with pytest.raises(AuthError):
        await collect(provider, [])
    assert vendor.requests == []


async def test_the_fake_refuses_a_key_in_the_url(url: str, vendor: FakeVendor) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    async with httpx.AsyncClient(base_url=url) as client:
        in_url = await client.post(
            "/v1beta/models/gemini-2.5-flash:generateContent", params={"key": API_KEY}, json=body
        )
        in_header = await client.post(
            "/v1beta/models/gemini-2.5-flash:generateContent",
            headers={"x-goog-api-key": API_KEY},
            json=body,
        )
    assert in_url.status_code == 400
    assert in_url.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert in_header.status_code == 200
