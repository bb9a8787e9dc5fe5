"""OpenAI's Chat Completions API (`POST {base_url}/chat/completions`), and the servers that copy it.

Speaks to api.openai.com and to OpenAI-compatible servers (Ollama, llama.cpp, vLLM, LM Studio)
at a `base_url` that includes the version path (`…/v1`). Replies are `chat.completion` objects;
streams are SSE `chat.completion.chunk` events ending in `data: [DONE]`, with the usage in a last
chunk whose `choices` is empty when `stream_options.include_usage` is set. Errors are
`{"error": {"message", "type", "param", "code"}}`; compatible servers also send
`{"object": "error", "message", "type", "code"}` or FastAPI's `{"detail": …}`.

The small functions here (`error_fields`, `content_text`, `usage_of`) are shared with `mistral.py`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar, cast

import httpx

from ace_lsp.orchestrator.errors import (
    BadResponse,
    ContextTooLong,
    Overloaded,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    ServerError,
)
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.http import HttpProvider
from ace_lsp.orchestrator.providers.sse import SSEEvent
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.retry import parse_retry_after
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply, Usage

# What vendors and compatible servers say when the prompt does not fit (OpenAI, vLLM, Mistral,
# llama.cpp, Ollama), for servers that send no `context_length_exceeded` code.
CONTEXT_MESSAGE = re.compile(
    r"maximum context length|context[_ ]length[_ ]exceeded|too large for model with \d+ maximum"
    r"|exceeds the available context size|prompt too long",
    re.IGNORECASE,
)

# The HTTP status an error object sent after a 200 (body or stream) stands for, by code or type.
PAYLOAD_ERROR_STATUS: Mapping[str, int] = {
    "invalid_api_key": 401,
    "insufficient_quota": 429,
    "rate_limit_exceeded": 429,
    "rate_limited": 429,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "server_is_overloaded": 503,
    "service_unavailable_error": 503,
}

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
# A whole header value at once, from its start: `_DURATION.sub()` tried every digit of "1111…" as
# a start, each time to the end (64 KB took minutes). A value splits into durations one way only
# (each ends in a unit, the next starts with a digit), so this never backtracks far.
_DURATIONS = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|h|m|s))+")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def error_fields(payload: Any) -> tuple[str, str | None]:
    """(message, code) from any error body an OpenAI-like server sends; code falls back to type."""
    if not isinstance(payload, dict):
        return "", None
    err = payload.get("error")
    if isinstance(err, str):
        return err, None
    if not isinstance(err, dict):
        err = payload  # {"object": "error", "message": …} (vLLM, Mistral) or {"detail": …}
    message = err.get("message")
    if message is None and "detail" in err:
        message = err["detail"]
    if isinstance(message, dict) and "detail" in message:
        message = message["detail"]  # Mistral's 422: {"message": {"detail": [...]}}
    code = err.get("code")
    if code is None:
        code = err.get("type")
    text = detail_text(message) or (str(err["type"]) if err.get("type") else "")
    return text, None if code is None else str(code)


def detail_text(detail: Any) -> str:
    """A readable line from a message or a FastAPI/pydantic `detail` list of validation errors."""
    if detail is None:
        return ""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                msg = str(item.get("msg", ""))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(p for p in parts if p)
    return str(detail)


def content_text(content: Any) -> str:
    """A message's or delta's text: a string, or a list of parts of which the text ones count."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text"
        )
    return ""


def usage_of(payload: Mapping[str, Any]) -> Usage | None:
    """The `usage` object as our Usage, or None when the server reported none."""
    raw = payload.get("usage")
    if not isinstance(raw, dict):
        return None

    def count(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    return Usage(input_tokens=count("prompt_tokens"), output_tokens=count("completion_tokens"))


def parse_duration(text: str) -> float | None:
    """OpenAI's `x-ratelimit-reset-*` value ("20ms", "1s", "6m0s", "1h2m3.5s") in seconds."""
    text = text.strip()
    if not _DURATIONS.fullmatch(text):
        return None
    return sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION.findall(text))


def ratelimit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until the exhausted one of OpenAI's request/token windows resets, if it says."""
    lowered = {k.lower(): v for k, v in headers.items()}
    waits = []
    for window in ("requests", "tokens"):
        reset = lowered.get(f"x-ratelimit-reset-{window}")
        if reset is not None and lowered.get(f"x-ratelimit-remaining-{window}", "").strip() == "0":
            seconds = parse_duration(reset)
            if seconds is not None:
                waits.append(seconds)
    return max(waits) if waits else None


class OpenAIProvider(HttpProvider):
    """Chat Completions over HTTP; keyless when the settings carry no key (local servers)."""

    kind: ClassVar[str] = "openai"
    path: ClassVar[str] = "/chat/completions"
    # `max_tokens`, not `max_completion_tokens`: every compatible server knows the former; OpenAI's
    # reasoning models want the latter (a subclass or a later option can switch this name).
    max_tokens_field: ClassVar[str] = "max_tokens"
    # OpenAI streams usage only when asked; servers that do not know the option ignore it.
    ask_stream_usage: ClassVar[bool] = True

    def headers(self) -> dict[str, str]:
        """A bearer token, when the settings carry a key (a local server may need none)."""
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def body(self, model: ModelSpec, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
        """The Chat Completions body for `request`; with `stream`, SSE (and the usage, if asked)."""
        limit = request.max_output_tokens
        if model.max_output > 0:
            limit = min(limit, model.max_output)
        body: dict[str, Any] = {
            "model": model.wire_name,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            self.max_tokens_field: limit,
            "temperature": request.temperature,
        }
        if stream:
            body["stream"] = True
            if self.ask_stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    def error_detail(self, payload: Any) -> tuple[str, str | None]:
        """(message, code) by `error_fields`, which knows the compatible servers' shapes too."""
        return error_fields(payload)

    def classify(
        self, status: int, message: str, code: str | None, headers: Mapping[str, str]
    ) -> ProviderError | None:
        """OpenAI's `insufficient_quota`, prompt too long, 429 with reset headers, and 503."""
        said = f" ({message})" if message else ""
        if code == "insufficient_quota":
            return QuotaExhausted(
                f"{self.name} says the account's quota is used up; check its plan and billing."
            )
        if status in (400, 413, 422) and (
            code == "context_length_exceeded" or CONTEXT_MESSAGE.search(message)
        ):
            return ContextTooLong(f"{self.name} says the prompt is too long for the model{said}.")
        if status == 429:
            wait = parse_retry_after(headers)
            if wait is None:
                wait = ratelimit_reset(headers)
            return RateLimited(f"{self.name} is rate limiting requests (HTTP 429){said}.", wait)
        if status == 503:
            return Overloaded(f"{self.name} is overloaded (HTTP 503){said}; try again shortly.")
        return None

    # -- replies -------------------------------------------------------------------------------

    def is_error(self, payload: Mapping[str, Any]) -> bool:
        """Whether a reply is an error object: `error`, or `object: error` (vLLM, Mistral)."""
        return "error" in payload or payload.get("object") == "error"

    def payload_error(self, payload: Mapping[str, Any]) -> ProviderError:
        """The error an error object sent with HTTP 200 (in a body or mid-stream) stands for."""
        _, code = error_fields(payload)
        err = payload.get("error")
        kind = err.get("type") if isinstance(err, dict) else payload.get("type")
        status = 500
        if code is not None and code.isdigit() and 400 <= int(code) < 600:
            status = int(code)
        elif code is not None and code in PAYLOAD_ERROR_STATUS:
            status = PAYLOAD_ERROR_STATUS[code]
        elif isinstance(kind, str) and kind in PAYLOAD_ERROR_STATUS:
            status = PAYLOAD_ERROR_STATUS[kind]
        response = httpx.Response(status, json=dict(payload))
        return self._status_error(response, response.content)

    def finish_error(self, finish_reason: Any) -> ProviderError | None:
        """An error a choice's `finish_reason` reports (Mistral and vLLM say "error")."""
        if finish_reason == "error":
            return ServerError(f"{self.name} failed while writing the reply.")
        return None

    def reply_text(self, payload: Any) -> str:
        """The text of the first choice of a `chat.completion`; errors raise."""
        if not isinstance(payload, dict):
            raise BadResponse(f"{self.name} answered with JSON that is not a chat completion.")
        if self.is_error(payload):
            raise self.payload_error(payload)
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BadResponse(f"{self.name} answered without any choices.")
        choice = choices[0]
        failed = self.finish_error(choice.get("finish_reason"))
        if failed is not None:
            raise failed
        message = choice.get("message")
        if not isinstance(message, dict):
            raise BadResponse(f"{self.name} answered with a choice that has no message.")
        text = content_text(message.get("content"))
        if not text.strip():
            if message.get("tool_calls"):
                raise BadResponse(f"{self.name} answered with a tool call instead of text.")
            if message.get("refusal"):
                said = self.scrub(str(message["refusal"]))
                raise BadResponse(f"{self.name} declined to answer ({said}).")
            raise BadResponse(f"{self.name} returned an empty reply.")
        return text

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """One `chat.completion`: its first choice's text, the usage and the model that answered."""
        cap = self.reply_cap(model, request)
        payload = await self.post_json(self.path, self.body(model, request, stream=False), cap)
        text = self.reply_text(payload)
        cap.add_text(text)
        answered = payload.get("model")
        return ProviderReply(
            text=text,
            usage=usage_of(payload) or Usage(),
            model=answered if isinstance(answered, str) and answered else model.wire_name,
        )

    def parse_chunk(self, data: str) -> tuple[str, Usage | None, bool]:
        """(text, usage, finished) of one streamed `chat.completion.chunk`; errors raise."""
        payload = self.decode(data)
        if not isinstance(payload, dict):
            raise BadResponse(f"{self.name} streamed an event that is not a JSON object.")
        if self.is_error(payload):
            raise self.payload_error(payload)
        choices = payload.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return "", usage_of(payload), False  # the usage-only chunk
        failed = self.finish_error(choice.get("finish_reason"))
        if failed is not None:
            raise failed
        delta = choice.get("delta")
        text = content_text(delta.get("content")) if isinstance(delta, dict) else ""
        return text, usage_of(payload), bool(choice.get("finish_reason"))

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """Text deltas as they arrive; the last chunk carries the usage (None if none was sent).

        Each delta is held back until the next arrives, so that the usage — which comes after the
        last text — can ride on the last chunk. A connection lost after the `finish_reason` loses
        only the usage, not the reply.
        """
        cap = self.reply_cap(model, request)
        events = cast(
            "AsyncGenerator[SSEEvent, None]",
            self.post_sse(self.path, self.body(model, request, stream=True), cap),
        )
        held: str | None = None
        usage: Usage | None = None
        finished = said_something = False
        try:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    if not finished:
                        raise ServerError(f"{self.name} closed the stream mid-reply.") from None
                    break
                except ServerError:
                    if not finished:
                        raise
                    break  # the reply is whole; only the usage that follows is lost
                if event.data.strip() == "[DONE]":
                    break
                text, chunk_usage, chunk_finished = self.parse_chunk(event.data)
                usage = chunk_usage or usage
                finished = finished or chunk_finished
                if text:
                    cap.add_text(text)
                    said_something = said_something or bool(text.strip())
                    if held is not None:
                        yield StreamChunk(held)
                    held = text
        finally:
            await events.aclose()
        if held is None or not said_something:
            raise BadResponse(f"{self.name} returned an empty reply.")
        yield StreamChunk(held, usage)


PROVIDER = OpenAIProvider  # the class make_provider() builds for kind "openai"
