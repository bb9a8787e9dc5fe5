"""The contract every HTTP provider keeps, run against each vendor's fake on 127.0.0.1.

One table of vendors (OpenAI, Mistral, Anthropic, Gemini), one set of tests: the text and usage of
a reply, streaming with the usage on the last chunk, the output cap, the key in a header and never
in the URL, the shared faults mapped onto the error taxonomy (HTTP status, context length, empty
and malformed replies, cut streams, the network), one-sentence messages that name the provider and
never show the key, and no retry inside a provider. What only one vendor does — its wire shape,
its own error flavours, its pure helpers — stays in `test_provider_<vendor>.py`.

Each vendor's fake runs once per module; every test gets a fresh recorder and fault queue.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    ContextTooLong,
    Overloaded,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    Timeout,
)
from ace_lsp.orchestrator.providers import make_provider
from ace_lsp.orchestrator.providers.anthropic import AnthropicProvider
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.gemini import GeminiProvider
from ace_lsp.orchestrator.providers.http import HttpProvider
from ace_lsp.orchestrator.providers.mistral import MistralProvider
from ace_lsp.orchestrator.providers.openai import OpenAIProvider
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType, Usage
from tests.fakes import anthropic as anthropic_fake
from tests.fakes import gemini as gemini_fake
from tests.fakes.harness import FakeVendor, Fault, Recorded, free_port, serve
from tests.fakes.mistral import MistralFake
from tests.fakes.openai import KEY as OPENAI_KEY
from tests.fakes.openai import ChatCompletionsFake

REQUEST = LLMRequest(
    task=TaskType.AUTO_FIX,
    messages=(Message("system", "You fix code."), Message("user", "Fix this.")),
    max_output_tokens=512,
    temperature=0.2,
)
BOTH = ["complete", "stream"]
# One TLS context for every provider here: building one per client (as httpx does) costs ~30 ms,
# a third of a test; the fakes speak plain HTTP anyway.
TLS = ssl.create_default_context()


def transport() -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(verify=TLS)


@dataclass(frozen=True)
class Vendor:
    """One row of the table: how to start the vendor's fake and talk to it."""

    kind: str  # the provider's kind, and its name in messages
    provider: type[HttpProvider]
    key: str  # the key the fake accepts
    key_env: tuple[str, ...]
    version_path: str  # what base_url carries after the host ("/v1" or nothing)
    model: ModelSpec
    app: Callable[[FakeVendor], tuple[Starlette, Callable[[FakeVendor], None]]]
    max_tokens: Callable[[Any], Any]  # the output cap, read from a request body
    overloaded_status: int = 503  # what the vendor answers when it has no capacity

    def settings(self, base_url: str, key: str | None = None, **kw: Any) -> ProviderSettings:
        return ProviderSettings(
            name=self.kind,
            kind=self.kind,
            base_url=base_url,
            api_key=self.key if key is None else key or None,
            key_env=self.key_env,
            **kw,
        )


def _chat_completions(fake_class: type[ChatCompletionsFake]) -> Any:
    def app(vendor: FakeVendor) -> tuple[Starlette, Callable[[FakeVendor], None]]:
        fake = fake_class(vendor)

        def swap(fresh: FakeVendor) -> None:
            fake.vendor = fresh

        return fake.app(), swap

    return app


def _state_app(create_app: Callable[[FakeVendor], Starlette]) -> Any:
    def app(vendor: FakeVendor) -> tuple[Starlette, Callable[[FakeVendor], None]]:
        starlette = create_app(vendor)

        def swap(fresh: FakeVendor) -> None:
            starlette.state.vendor = fresh

        return starlette, swap

    return app


def _spec(kind: str, wire_name: str) -> ModelSpec:
    return ModelSpec(
        id=f"{kind}-test",
        provider=kind,
        wire_name=wire_name,
        input_per_1k=0.001,
        output_per_1k=0.002,
        context_window=128_000,
        max_output=4096,
    )


VENDORS = [
    pytest.param(
        Vendor(
            kind="openai",
            provider=OpenAIProvider,
            key=OPENAI_KEY,
            key_env=("OPENAI_API_KEY",),
            version_path="/v1",
            model=_spec("openai", "gpt-4o-mini"),
            app=_chat_completions(ChatCompletionsFake),
            max_tokens=lambda body: body["max_tokens"],
        ),
        id="openai",
    ),
    pytest.param(
        Vendor(
            kind="mistral",
            provider=MistralProvider,
            key=OPENAI_KEY,  # the Mistral fake accepts the same test key
            key_env=("MISTRAL_API_KEY",),
            version_path="/v1",
            model=_spec("mistral", "codestral-latest"),
            app=_chat_completions(MistralFake),
            max_tokens=lambda body: body["max_tokens"],
        ),
        id="mistral",
    ),
    pytest.param(
        Vendor(
            kind="anthropic",
            provider=AnthropicProvider,
            key=anthropic_fake.API_KEY,
            key_env=("ANTHROPIC_API_KEY",),
            version_path="",
            model=_spec("anthropic", "claude-sonnet-4-5"),
            app=_state_app(anthropic_fake.create_app),
            max_tokens=lambda body: body["max_tokens"],
            overloaded_status=529,
        ),
        id="anthropic",
    ),
    pytest.param(
        Vendor(
            kind="gemini",
            provider=GeminiProvider,
            key=gemini_fake.API_KEY,
            key_env=("GOOGLE_AI_API_KEY", "GEMINI_API_KEY"),
            version_path="",
            model=_spec("gemini", "gemini-2.5-flash"),
            app=_state_app(gemini_fake.create_app),
            max_tokens=lambda body: body["generationConfig"]["maxOutputTokens"],
        ),
        id="gemini",
    ),
]


@dataclass
class Running:
    vendor: Vendor
    base_url: str
    swap: Callable[[FakeVendor], None]


@dataclass
class Fake:
    """The vendor under test, its fake's base URL, and this test's own recorder."""

    vendor: Vendor
    base_url: str
    recorder: FakeVendor

    @property
    def requests(self) -> list[Recorded]:
        return self.recorder.requests

    def inject(self, *faults: Fault) -> None:
        self.recorder.inject("*", *faults)

    def provider(self, key: str | None = None, **kw: Any) -> HttpProvider:
        settings = self.vendor.settings(self.base_url, key, **kw)
        return self.vendor.provider(settings, transport=transport())


@pytest.fixture(scope="module", params=VENDORS)
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    vendor: Vendor = request.param
    app, swap = vendor.app(FakeVendor())
    with serve(app) as url:
        yield Running(vendor, url + vendor.version_path, swap)


@pytest.fixture
def fake(running: Running) -> Fake:
    recorder = FakeVendor()
    running.swap(recorder)
    return Fake(running.vendor, running.base_url, recorder)


@pytest.fixture
async def provider(fake: Fake) -> AsyncIterator[HttpProvider]:
    p = fake.provider(read_timeout_s=5)
    yield p
    await p.aclose()


async def collect(p: HttpProvider, model: ModelSpec, into: list[StreamChunk]) -> None:
    async for chunk in p.stream(model, REQUEST):
        into.append(chunk)


async def call(p: HttpProvider, model: ModelSpec, mode: str) -> tuple[str, Usage | None]:
    """(text, usage) by `complete` or by `stream`, whichever `mode` names."""
    if mode == "complete":
        reply = await p.complete(model, REQUEST)
        return reply.text, reply.usage
    chunks: list[StreamChunk] = []
    await collect(p, model, chunks)
    assert all(c.usage is None for c in chunks[:-1]), "usage before the last chunk"
    return "".join(c.text for c in chunks), chunks[-1].usage


def assert_told_well(err: ProviderError, fake: Fake, *keys: str) -> None:
    """One sentence that names the provider and never shows a key; not chained to httpx."""
    text = str(err)
    assert text.endswith("."), text
    assert "\n" not in text and len(text) <= 300, text
    assert fake.vendor.kind in text, text
    for key in (fake.vendor.key, *keys):
        assert key not in text and key not in repr(err.args)


# -- success -------------------------------------------------------------------------------------


async def test_complete_returns_the_text_usage_and_model(
    fake: Fake, provider: HttpProvider
) -> None:
    reply = await provider.complete(fake.vendor.model, REQUEST)
    assert reply.text == fake.recorder.default_text
    assert reply.usage == Usage(12, 34)
    assert reply.model.startswith(fake.vendor.model.wire_name)  # OpenAI adds its snapshot date
    assert len(fake.requests) == 1


async def test_stream_yields_the_text_in_pieces_and_the_usage_last(
    fake: Fake, provider: HttpProvider
) -> None:
    text = "A longer reply, streamed in pieces."
    fake.inject(Fault(text=text, usage=(40, 9)))
    chunks: list[StreamChunk] = []
    await collect(provider, fake.vendor.model, chunks)
    assert "".join(c.text for c in chunks) == text
    assert len(chunks) > 1
    assert [c.usage for c in chunks] == [None] * (len(chunks) - 1) + [Usage(40, 9)]


@pytest.mark.parametrize(
    ("max_output", "sent"),
    [
        pytest.param(256, 256, id="capped-at-the-models-max-output"),
        pytest.param(4096, 512, id="the-requests-own"),
    ],
)
async def test_the_output_allowance_is_the_smaller_of_request_and_model(
    fake: Fake, provider: HttpProvider, max_output: int, sent: int
) -> None:
    model = replace(fake.vendor.model, max_output=max_output)
    await provider.complete(model, REQUEST)
    assert fake.vendor.max_tokens(fake.requests[0].body) == sent


@pytest.mark.parametrize("mode", BOTH)
async def test_the_key_travels_in_a_header_never_in_the_url(
    fake: Fake, provider: HttpProvider, mode: str
) -> None:
    await call(provider, fake.vendor.model, mode)
    [sent] = fake.requests
    assert sent.method == "POST"
    assert fake.vendor.key not in sent.path
    assert all(fake.vendor.key not in value for value in sent.query.values())
    assert any(fake.vendor.key in value for value in sent.headers.values())
    assert sent.headers["accept-encoding"] == "identity"  # so the reply byte caps bound memory


# -- faults --------------------------------------------------------------------------------------

FAULTS = [
    pytest.param(Fault(status=401), AuthError, None, id="401"),
    pytest.param(Fault(status=429, retry_after="7"), RateLimited, 7.0, id="429-retry-after"),
    pytest.param(Fault(status=429, retry_after_ms="1500"), RateLimited, 1.5, id="429-retry-ms"),
    pytest.param(Fault(status=400), BadRequest, None, id="400"),
    pytest.param(Fault(status=500), ServerError, None, id="500"),
    pytest.param(None, Overloaded, None, id="overloaded"),  # the vendor's own status
    pytest.param(Fault(kind="context_length"), ContextTooLong, None, id="context-too-long"),
    pytest.param(Fault(empty=True), BadResponse, None, id="empty-reply"),
]


@pytest.mark.parametrize("mode", BOTH)
@pytest.mark.parametrize(("fault", "error", "retry_after"), FAULTS)
async def test_faults_map_onto_the_taxonomy(
    fake: Fake,
    provider: HttpProvider,
    mode: str,
    fault: Fault | None,
    error: type[ProviderError],
    retry_after: float | None,
) -> None:
    fake.inject(fault or Fault(status=fake.vendor.overloaded_status))
    with pytest.raises(ProviderError) as caught:
        await call(provider, fake.vendor.model, mode)
    assert type(caught.value) is error, caught.value
    assert_told_well(caught.value, fake)
    if isinstance(caught.value, AuthError):
        assert fake.vendor.key_env[0] in str(caught.value)  # says what to set
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == retry_after
    assert caught.value.retryable is (error in (RateLimited, ServerError, Overloaded))
    assert len(fake.requests) == 1  # providers never retry: the orchestrator decides


async def test_malformed_json_is_a_bad_response(fake: Fake, provider: HttpProvider) -> None:
    fake.inject(Fault(raw_body="{not json"))
    with pytest.raises(BadResponse, match="malformed") as caught:
        await provider.complete(fake.vendor.model, REQUEST)
    assert_told_well(caught.value, fake)


async def test_a_stream_cut_mid_reply_is_a_server_error(fake: Fake, provider: HttpProvider) -> None:
    fake.inject(Fault(cut_after=1))
    chunks: list[StreamChunk] = []
    with pytest.raises(ServerError) as caught:
        await collect(provider, fake.vendor.model, chunks)
    assert all(c.usage is None for c in chunks)  # no usage from a reply that never ended
    assert_told_well(caught.value, fake)


async def test_an_error_event_mid_stream_is_raised_and_retryable(
    fake: Fake, provider: HttpProvider
) -> None:
    fake.inject(Fault(error_event=True))
    chunks: list[StreamChunk] = []
    with pytest.raises(ProviderError) as caught:
        await collect(provider, fake.vendor.model, chunks)
    assert caught.value.retryable
    assert_told_well(caught.value, fake)


# -- keys ----------------------------------------------------------------------------------------


async def test_a_wrong_key_is_an_auth_error_that_never_shows_it(fake: Fake) -> None:
    wrong = "test-wrong-key-9999"
    p = fake.provider(key=wrong)
    try:
        with pytest.raises(AuthError) as caught:
            await p.complete(fake.vendor.model, REQUEST)
    finally:
        await p.aclose()
    assert any(wrong in value for value in fake.requests[0].headers.values())
    assert_told_well(caught.value, fake, wrong)


def test_make_provider_builds_the_vendors_class(fake: Fake) -> None:
    made = make_provider(fake.vendor.settings(fake.base_url))
    assert type(made) is fake.vendor.provider and made.name == fake.vendor.kind


@pytest.mark.parametrize("mode", BOTH)
async def test_without_its_key_a_provider_says_what_to_set_and_sends_nothing(
    fake: Fake, mode: str
) -> None:
    """What the orchestrator holds for a vendor whose key is not set (make_provider's)."""
    made = make_provider(fake.vendor.settings(fake.base_url, key=""))
    said = f"{fake.vendor.kind} needs an API key: set {' or '.join(fake.vendor.key_env)}."
    assert made.available() == said
    with pytest.raises(ProviderUnavailable) as caught:
        if mode == "complete":
            await made.complete(fake.vendor.model, REQUEST)
        else:
            [chunk async for chunk in made.stream(fake.vendor.model, REQUEST)]
    await made.aclose()
    assert str(caught.value) == said
    assert fake.requests == []


# -- the network ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", BOTH)
async def test_connection_refused_is_unavailable(fake: Fake, mode: str) -> None:
    base = f"http://127.0.0.1:{free_port()}{fake.vendor.version_path}"
    p = fake.vendor.provider(fake.vendor.settings(base), transport=transport())
    try:
        with pytest.raises(ProviderUnavailable, match="Cannot connect to") as caught:
            await call(p, fake.vendor.model, mode)
    finally:
        await p.aclose()
    assert_told_well(caught.value, fake)


@pytest.mark.parametrize("mode", BOTH)
async def test_a_slow_answer_is_a_timeout(fake: Fake, mode: str) -> None:
    fake.inject(Fault(delay_s=0.5))
    p = fake.provider(read_timeout_s=0.1)
    try:
        with pytest.raises(Timeout, match=r"did not answer within 0\.1 s") as caught:
            await call(p, fake.vendor.model, mode)
    finally:
        await p.aclose()
    assert_told_well(caught.value, fake)
