"""MistralProvider against a fake of Mistral's chat API on 127.0.0.1 (strict like the real one).

The shared behaviour is in test_provider_contract.py; here is Mistral's own: its body, its gateway
and 402/422 errors, content parts, Devstral under its own name, a spent quota in the orchestrator.

The fake refuses any field Mistral does not know with Mistral's 422, so every successful call here
also proves the request carries no OpenAI-only field such as `stream_options`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import pytest

from ace_lsp.orchestrator.call import CallOptions, Orchestrator
from ace_lsp.orchestrator.config import ProviderSettings
from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
    BadResponse,
    NoFix,
    Overloaded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from ace_lsp.orchestrator.providers import make_provider
from ace_lsp.orchestrator.providers.mistral import MistralProvider
from ace_lsp.orchestrator.registry import ModelSpec, Registry
from ace_lsp.orchestrator.types import LLMRequest, Message, TaskType, Usage
from tests.fakes.harness import FakeVendor, Fault, Recorded, serve
from tests.fakes.mistral import mistral_app
from tests.fakes.openai import KEY

TEXT = "Bonjour from the fake."
REQUEST = LLMRequest(
    task=TaskType.AUTO_FIX,
    messages=(Message("system", "You fix code."), Message("user", "Fix this.")),
    max_output_tokens=512,
)


class Fake:
    def __init__(self, vendor: FakeVendor, base_url: str) -> None:
        self.vendor, self.base_url = vendor, base_url

    def requests(self, model: ModelSpec) -> list[Recorded]:
        return [
            r
            for r in self.vendor.requests
            if isinstance(r.body, dict) and r.body.get("model") == model.wire_name
        ]


@pytest.fixture(scope="module")
def fake() -> Iterator[Fake]:
    vendor = FakeVendor(default_text=TEXT)
    with serve(mistral_app(vendor)) as url:
        yield Fake(vendor, f"{url}/v1")


def settings(base_url: str, name: str = "mistral", **kw: Any) -> ProviderSettings:
    return ProviderSettings(
        name=name,
        kind="mistral",
        base_url=base_url,
        api_key=KEY,
        key_env=("MISTRAL_API_KEY",),
        **kw,
    )


@pytest.fixture
def model() -> ModelSpec:
    return ModelSpec(
        id="codestral",
        provider="mistral",
        wire_name=f"codestral-{uuid.uuid4().hex[:8]}",
        input_per_1k=0.0003,
        output_per_1k=0.0009,
        context_window=256_000,
        max_output=4096,
    )


@pytest.fixture
async def provider(fake: Fake) -> AsyncIterator[MistralProvider]:
    p = MistralProvider(settings(fake.base_url, read_timeout_s=5))
    yield p
    await p.aclose()


async def call(p: MistralProvider, model: ModelSpec, mode: str) -> tuple[str, Usage | None]:
    if mode == "complete":
        reply = await p.complete(model, REQUEST)
        return reply.text, reply.usage
    chunks = [chunk async for chunk in p.stream(model, REQUEST)]
    assert all(c.usage is None for c in chunks[:-1])
    return "".join(c.text for c in chunks), chunks[-1].usage


def assert_told_well(err: ProviderError, name: str = "mistral") -> None:
    text = str(err)
    assert name in text and text.endswith(".") and "\n" not in text
    assert KEY not in text and KEY not in repr(err.args)


BOTH = ["complete", "stream"]


# -- success ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", BOTH)
async def test_request_headers_and_body(
    fake: Fake, provider: MistralProvider, model: ModelSpec, mode: str
) -> None:
    await call(provider, model, mode)
    [sent] = fake.requests(model)
    assert sent.path == "/v1/chat/completions" and sent.query == {}
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    expected: dict[str, Any] = {
        "model": model.wire_name,
        "messages": [
            {"role": "system", "content": "You fix code."},
            {"role": "user", "content": "Fix this."},
        ],
        "max_tokens": 512,
        "temperature": 0.0,
    }
    if mode == "stream":
        expected["stream"] = True  # and no stream_options: Mistral would refuse it
    assert sent.body == expected


async def test_content_parts_keep_only_the_text(
    fake: Fake, provider: MistralProvider, model: ModelSpec
) -> None:
    raw = (
        '{"id": "a1", "object": "chat.completion", "model": "magistral", "choices": [{"index": 0,'
        ' "message": {"role": "assistant", "content": [{"type": "thinking", "thinking":'
        ' [{"type": "text", "text": "let me think"}]}, {"type": "text", "text": "the fix"}]},'
        ' "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 2,'
        ' "total_tokens": 5}}'
    )
    fake.vendor.inject(model.wire_name, Fault(raw_body=raw))
    reply = await provider.complete(model, REQUEST)
    assert (reply.text, reply.usage, reply.model) == ("the fix", Usage(3, 2), "magistral")


async def test_stream_without_usage_still_succeeds(
    fake: Fake, provider: MistralProvider, model: ModelSpec
) -> None:
    fake.vendor.inject(model.wire_name, Fault(kind="no_usage"))
    assert await call(provider, model, "stream") == (TEXT, None)


async def test_an_openai_only_field_is_refused_as_mistral_does(
    fake: Fake, model: ModelSpec
) -> None:
    class Careless(MistralProvider):
        ask_stream_usage = True

    p = Careless(settings(fake.base_url))
    try:
        with pytest.raises(BadRequest, match="stream_options: Extra inputs are not permitted"):
            await call(p, model, "stream")
    finally:
        await p.aclose()


# -- faults -------------------------------------------------------------------------------------

FAULTS = [
    pytest.param(Fault(kind="detail"), AuthError, "HTTP 401", None, id="401-detail"),
    pytest.param(
        Fault(kind="gateway", retry_after_ms="250"),
        RateLimited,
        "Requests rate limit exceeded",
        0.25,
        id="429-gateway",
    ),
    pytest.param(Fault(kind="gateway"), RateLimited, "HTTP 429", None, id="429-no-retry-after"),
    pytest.param(Fault(kind="capacity"), Overloaded, "no capacity", None, id="429-capacity"),
    pytest.param(
        Fault(kind="payment_required"),
        QuotaExhausted,
        "monthly spending limit are used up (You have reached your monthly spending limit",
        None,
        id="402-spending-limit",
    ),
    pytest.param(Fault(status=402), QuotaExhausted, "(HTTP 402)", None, id="402"),
    pytest.param(
        Fault(status=422), BadRequest, "Extra inputs are not permitted", None, id="422-mistral"
    ),
    pytest.param(
        Fault(status=422, kind="detail"),
        BadRequest,
        "messages: Field required",
        None,
        id="422-fastapi",
    ),
    pytest.param(Fault(status=503), Overloaded, "upstream connect error", None, id="503-envoy"),
    pytest.param(Fault(kind="echo_key"), BadRequest, "Bearer ***", None, id="key-scrubbed"),
]


@pytest.mark.parametrize("mode", BOTH)
@pytest.mark.parametrize(("fault", "error", "said", "retry_after"), FAULTS)
async def test_faults(
    fake: Fake,
    provider: MistralProvider,
    model: ModelSpec,
    mode: str,
    fault: Fault,
    error: type[ProviderError],
    said: str,
    retry_after: float | None,
) -> None:
    fake.vendor.inject(model.wire_name, fault)
    with pytest.raises(error) as caught:
        await call(provider, model, mode)
    assert type(caught.value) is error
    assert said in str(caught.value)
    assert_told_well(caught.value)
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == retry_after
    assert len(fake.requests(model)) == 1  # providers never retry


async def test_a_spent_quota_is_never_retried_nor_tried_on_the_same_key(
    fake: Fake, model: ModelSpec
) -> None:
    fallback = ModelSpec(
        "codestral-next", "mistral", f"next-{uuid.uuid4().hex[:8]}", 0.0003, 0.0009, 256_000, 4096
    )
    p = MistralProvider(settings(fake.base_url, read_timeout_s=5))
    orch = Orchestrator(Registry([model, fallback]), {"mistral": p})
    retrying = CallOptions(max_retries=2, use_cache=False)
    try:
        fake.vendor.inject(model.wire_name, *[Fault(kind="payment_required")] * 3)
        # the organization's credits are spent: its other models are passed over, not tried
        with pytest.raises(NoFix) as both:
            await orch.call(
                REQUEST, lambda r: r.text, replace(retrying, models=(model.id, fallback.id))
            )
        assert [(a.model, a.outcome, a.retry) for a in both.value.attempts] == [
            (model.id, "quota_exhausted", 1),
        ]
        assert fake.requests(fallback) == []
        # alone in the chain, a retryable error would be retried twice; a spent quota is not
        with pytest.raises(NoFix, match="monthly spending limit") as failed:
            await orch.call(REQUEST, lambda r: r.text, replace(retrying, models=(model.id,)))
        assert [a.outcome for a in failed.value.attempts] == ["quota_exhausted"]
        assert len(fake.requests(model)) == 2  # one per call
        assert orch.health.state(model.id) == "closed"  # not the model's fault: no circuit
    finally:
        fake.vendor._faults.pop(model.wire_name, None)
        await orch.aclose()


@pytest.mark.parametrize(
    ("fault", "mode", "error", "said"),
    [
        pytest.param(
            Fault(raw_body='{"object": "chat.completion"}'),
            "complete",
            BadResponse,
            "without any choices",
            id="no-choices",
        ),
        pytest.param(
            Fault(
                raw_body='{"choices": [{"index": 0, "message": {"content": "x"},'
                ' "finish_reason": "error"}]}'
            ),
            "complete",
            ServerError,
            "failed while writing",
            id="finish-error",
        ),
        pytest.param(
            Fault(error_event=True),
            "stream",
            ServerError,
            "failed while writing",
            id="stream-error",
        ),
        pytest.param(
            Fault(kind="no_done"), "stream", ServerError, "closed the stream", id="no-done"
        ),
    ],
)
async def test_bad_replies(
    fake: Fake,
    provider: MistralProvider,
    model: ModelSpec,
    fault: Fault,
    mode: str,
    error: type[ProviderError],
    said: str,
) -> None:
    fake.vendor.inject(model.wire_name, fault)
    with pytest.raises(error, match=said) as caught:
        await call(provider, model, mode)
    assert_told_well(caught.value)


# -- Devstral/Codestral under their own provider name, and the network --------------------------


async def test_devstral_is_mistral_under_its_own_name(fake: Fake, model: ModelSpec) -> None:
    p = make_provider(settings(fake.base_url, name="devstral"))
    assert isinstance(p, MistralProvider)
    fake.vendor.inject(model.wire_name, Fault(status=401))
    try:
        with pytest.raises(AuthError) as caught:
            await p.complete(model, REQUEST)
    finally:
        await p.aclose()
    assert str(caught.value).startswith("devstral refused the API key")
