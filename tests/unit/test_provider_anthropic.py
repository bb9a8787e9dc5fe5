"""The `anthropic` provider against a fake Messages API on 127.0.0.1: its own wire and errors.

The shared behaviour is in test_provider_contract.py; here is Anthropic's: the Messages shape
(system and merged turns), its error types (overloaded_error, credit balance, 413), its stream
events, and the key check before any request.
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
    ContextTooLong,
    Overloaded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from ace_lsp.orchestrator.providers.anthropic import AnthropicProvider
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType, Usage
from tests.fakes.anthropic import API_KEY, VERSION, create_app
from tests.fakes.harness import FakeVendor, Fault, serve

MODEL = ModelSpec(
    id="claude-test",
    provider="anthropic",
    wire_name="claude-sonnet-4-5",
    input_per_1k=0.003,
    output_per_1k=0.015,
    context_window=200_000,
    max_output=64_000,
)
REQUEST = LLMRequest(
    task=TaskType.AUTO_FIX,
    messages=(
        Message("system", "You fix code."),
        Message("user", "Here is the file."),
        Message("user", "Fix line 3."),
        Message("assistant", "Which rule?"),
        Message("system", "Answer with a diff."),
        Message("user", "F401."),
    ),
    max_output_tokens=512,
    temperature=0.2,
)


def settings(
    url: str, *, key: str | None = API_KEY, read_timeout_s: float = 10.0
) -> ProviderSettings:
    return ProviderSettings(
        name="anthropic",
        kind="anthropic",
        base_url=url,
        api_key=key,
        key_env=("ANTHROPIC_API_KEY",),
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
async def provider(url: str, vendor: FakeVendor) -> AsyncIterator[AnthropicProvider]:
    p = AnthropicProvider(settings(url))
    yield p
    await p.aclose()


async def collect(provider: AnthropicProvider, chunks: list[StreamChunk]) -> None:
    async for chunk in provider.stream(MODEL, REQUEST):
        chunks.append(chunk)


async def call(provider: AnthropicProvider, mode: str) -> None:
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


async def test_complete_sends_the_messages_api_shape(
    provider: AnthropicProvider, vendor: FakeVendor
) -> None:
    reply = await provider.complete(MODEL, REQUEST)

    assert reply.text == vendor.default_text
    assert reply.usage == Usage(12, 34)
    assert reply.model == "claude-sonnet-4-5"
    [sent] = vendor.requests
    assert sent.path == "/v1/messages" and sent.query == {}
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == VERSION
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "temperature": 0.2,
        "system": "You fix code.\n\nAnswer with a diff.",
        "messages": [
            {"role": "user", "content": "Here is the file.\n\nFix line 3."},
            {"role": "assistant", "content": "Which rule?"},
            {"role": "user", "content": "F401."},
        ],
    }


async def test_stream_sends_the_same_body_with_stream_true(
    provider: AnthropicProvider, vendor: FakeVendor
) -> None:
    await provider.complete(MODEL, REQUEST)
    await collect(provider, [])
    whole, streamed = (r.body for r in vendor.requests)
    assert streamed == {**whole, "stream": True}


# -- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(
    ("fault", "error", "said"),
    [
        pytest.param(Fault(kind="overloaded"), Overloaded, "overloaded", id="overloaded_error"),
        pytest.param(Fault(status=413), ContextTooLong, "too large", id="413"),
        pytest.param(Fault(status=403), AuthError, "ANTHROPIC_API_KEY", id="403"),
        pytest.param(Fault(kind="credit_balance"), QuotaExhausted, "credit", id="no-credit"),
        pytest.param(Fault(status=404), BadRequest, "HTTP 404", id="404"),
    ],
)
async def test_faults_map_onto_the_taxonomy(
    provider: AnthropicProvider,
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
    ("fault", "wait"),
    [
        pytest.param(Fault(status=429), None, id="no-header"),
    ],
)
async def test_rate_limits_carry_retry_after(
    provider: AnthropicProvider, vendor: FakeVendor, fault: Fault, wait: float | None
) -> None:
    vendor.inject("*", fault)
    with pytest.raises(RateLimited) as caught:
        await provider.complete(MODEL, REQUEST)
    assert caught.value.retry_after == wait
    assert caught.value.retryable
    assert_one_sentence(str(caught.value))


async def test_overloaded_error_event_mid_stream_is_raised_from_stream(
    provider: AnthropicProvider, vendor: FakeVendor
) -> None:
    vendor.inject("*", Fault(error_event=True))
    chunks: list[StreamChunk] = []
    with pytest.raises(Overloaded) as caught:
        await collect(provider, chunks)
    assert [c.text for c in chunks] == [vendor.default_text[:8]]  # the text before the error
    assert "mid-reply" in str(caught.value)
    assert_one_sentence(str(caught.value))


async def test_a_stream_that_ends_cleanly_without_message_stop_is_a_server_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = (
            'event: message_start\ndata: {"type":"message_start","message":{"usage":'
            '{"input_tokens":3,"output_tokens":1}}}\n\n'
            'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            '"delta":{"type":"text_delta","text":"Hal"}}\n\n'
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    provider = AnthropicProvider(settings("http://fake"), transport=httpx.MockTransport(handler))
    chunks: list[StreamChunk] = []
    with pytest.raises(ServerError, match="closed the stream mid-reply"):
        await collect(provider, chunks)
    assert [c.text for c in chunks] == ["Hal"]
    await provider.aclose()


# -- keys and the network ------------------------------------------------------------------------


async def test_no_key_is_an_auth_error_without_a_request(url: str, vendor: FakeVendor) -> None:
    provider = AnthropicProvider(settings(url, key=None))
    assert provider.available() is not None
    with pytest.raises(AuthError, match="ANTHROPIC_API_KEY"):
        await provider.complete(MODEL, REQUEST)
    with pytest.raises(AuthError):
        await collect(provider, [])
    assert vendor.requests == []


async def test_the_fake_refuses_a_request_without_anthropic_version(
    url: str, vendor: FakeVendor
) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post(
            "/v1/messages",
            headers={"x-api-key": API_KEY},
            json={"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
