"""The `anthropic` provider: Anthropic's Messages API (`POST /v1/messages`, version 2023-06-01).

Requests carry `x-api-key` and `anthropic-version`; system messages go to the top-level `system`
field, and consecutive messages of one role are merged because the API wants user and assistant
turns to alternate. Streaming follows the documented event flow — `message_start` (input tokens),
`content_block_*` (text deltas), `message_delta` (output tokens), `message_stop` — with `ping`
ignored and an `error` event (e.g. `overloaded_error`) raised as the matching ProviderError.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar, cast

from ace_lsp.orchestrator.errors import (
    AuthError,
    BadRequest,
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
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply, Usage

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"

# phrases of Anthropic's 400 invalid_request_error bodies that mean "the prompt does not fit"
_CONTEXT_PHRASES = ("prompt is too long", "exceed context limit", "exceeds the context window")
_NO_CREDIT_PHRASES = ("credit balance is too low",)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def brief(text: str) -> str:
    """The first sentence of a vendor message, without its full stop, to quote inside ours."""
    first = _SENTENCE_END.split(text.strip().split("\n", 1)[0], maxsplit=1)[0]
    return first.rstrip(" .")


def split_messages(request: LLMRequest) -> tuple[str | None, list[dict[str, str]]]:
    """(system text, alternating user/assistant turns) for the Messages API."""
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for message in request.messages:
        if message.role == "system":
            system.append(message.content)
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": role, "content": message.content})
    return ("\n\n".join(system) if system else None), turns


def request_body(model: ModelSpec, request: LLMRequest, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for `request`: system text apart, user and assistant alternating."""
    system, turns = split_messages(request)
    max_tokens = request.max_output_tokens
    if model.max_output > 0:
        max_tokens = min(max_tokens, model.max_output)
    body: dict[str, Any] = {
        "model": model.wire_name,
        "max_tokens": max_tokens,
        "messages": turns,
        "temperature": request.temperature,
    }
    if system is not None:
        body["system"] = system
    if stream:
        body["stream"] = True
    return body


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class AnthropicProvider(HttpProvider):
    """Claude models over the Messages API; never retries (call.py does)."""

    kind: ClassVar[str] = "anthropic"

    def headers(self) -> dict[str, str]:
        """`anthropic-version` always, and the key in `x-api-key` when one is set."""
        headers = {"anthropic-version": API_VERSION}
        if self.settings.api_key:
            headers["x-api-key"] = self.settings.api_key
        return headers

    def error_detail(self, payload: Any) -> tuple[str, str | None]:
        """(first sentence of error.message, error.type) from `{"type": "error", "error": …}`."""
        message, code = super().error_detail(payload)
        return brief(message), code

    def classify(
        self, status: int, message: str, code: str | None, headers: Mapping[str, str]
    ) -> ProviderError | None:
        """Anthropic's overload (529, `overloaded_error`), prompt too long, low credit balance."""
        lowered = message.lower()
        if status == 529 or code == "overloaded_error":
            return Overloaded(f"{self.name} is overloaded (HTTP {status}); try again shortly.")
        if any(phrase in lowered for phrase in _CONTEXT_PHRASES):
            return ContextTooLong(f"{self.name} says the prompt is too long ({message}).")
        if any(phrase in lowered for phrase in _NO_CREDIT_PHRASES):
            return QuotaExhausted(
                f"{self.name} refused the request: the account's credit balance is too low."
            )
        return None

    def _check_key(self) -> None:
        why = self.available()
        if why is not None:
            raise AuthError(why)

    def _reply_text(self, payload: Any) -> ProviderReply:
        if not isinstance(payload, dict) or not isinstance(payload.get("content"), list):
            raise BadResponse(f"{self.name} answered without a `content` list.")
        text = "".join(
            str(block.get("text", ""))
            for block in payload["content"]
            if isinstance(block, dict) and block.get("type") == "text"
        )
        if not text.strip():
            raise BadResponse(self._empty_reason(payload.get("stop_reason")))
        usage = payload.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return ProviderReply(
            text=text,
            usage=Usage(_int(usage.get("input_tokens")), _int(usage.get("output_tokens"))),
            model=str(payload.get("model") or ""),
        )

    def _empty_reason(self, stop_reason: Any) -> str:
        if stop_reason == "refusal":
            return f"{self.name} refused to answer this prompt (stop_reason refusal)."
        said = f" (stop_reason {stop_reason})" if stop_reason else ""
        return f"{self.name} returned an empty reply{said}."

    def _stream_error(self, payload: Any) -> ProviderError:
        """The ProviderError for an `error` event that arrived after the 200 response began."""
        err = payload.get("error") if isinstance(payload, dict) else None
        err = err if isinstance(err, dict) else {}
        kind = str(err.get("type") or "unknown_error")
        detail = self.scrub(brief(str(err.get("message") or "")))
        said = f" ({detail})" if detail else ""
        if kind == "overloaded_error":
            return Overloaded(f"{self.name} became overloaded mid-reply; try again shortly.")
        if kind == "rate_limit_error":
            return RateLimited(f"{self.name} rate limited the request mid-reply{said}.")
        if kind in ("authentication_error", "permission_error"):
            env = " or ".join(self.settings.key_env) or "its API key"
            return AuthError(f"{self.name} refused the API key mid-reply; check {env}.")
        if kind == "invalid_request_error":
            return BadRequest(f"{self.name} refused the request mid-reply{said}.")
        return ServerError(f"{self.name} reported {kind} mid-reply{said}.")

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """One Messages reply, its text blocks joined; without a key, AuthError and no request."""
        self._check_key()
        cap = self.reply_cap(model, request)
        body = request_body(model, request, stream=False)
        reply = self._reply_text(await self.post_json(MESSAGES_PATH, body, cap))
        cap.add_text(reply.text)
        return reply

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """Text deltas as they arrive; the usage comes on the last chunk, at `message_stop`."""
        self._check_key()
        body = request_body(model, request, stream=True)
        cap = self.reply_cap(model, request)
        events = cast("AsyncGenerator[SSEEvent, None]", self.post_sse(MESSAGES_PATH, body, cap))
        input_tokens = output_tokens = 0
        seen_text = False
        stop_reason: Any = None
        async with aclosing(events):
            async for event in events:
                if event.event == "ping":
                    continue
                data = self.decode(event.data)
                kind = data.get("type", event.event) if isinstance(data, dict) else event.event
                if kind == "error" or event.event == "error":
                    raise self._stream_error(data)
                if not isinstance(data, dict):
                    continue
                if kind == "message_start":
                    message = data.get("message")
                    usage = message.get("usage") if isinstance(message, dict) else None
                    if isinstance(usage, dict):
                        input_tokens = _int(usage.get("input_tokens"))
                        output_tokens = _int(usage.get("output_tokens"))
                elif kind == "content_block_delta":
                    delta = data.get("delta")
                    if isinstance(delta, dict) and delta.get("type") == "text_delta":
                        text = str(delta.get("text", ""))
                        if text:
                            cap.add_text(text)
                            seen_text = seen_text or bool(text.strip())
                            yield StreamChunk(text)
                elif kind == "message_delta":
                    usage = data.get("usage")
                    if isinstance(usage, dict):
                        output_tokens = _int(usage.get("output_tokens")) or output_tokens
                        input_tokens = _int(usage.get("input_tokens")) or input_tokens
                    delta = data.get("delta")
                    if isinstance(delta, dict):
                        stop_reason = delta.get("stop_reason", stop_reason)
                elif kind == "message_stop":
                    if not seen_text:
                        raise BadResponse(self._empty_reason(stop_reason))
                    yield StreamChunk("", Usage(input_tokens, output_tokens))
                    return
                # content_block_start/stop and event types added later carry nothing we need
        raise ServerError(f"{self.name} closed the stream mid-reply.")


PROVIDER = AnthropicProvider  # the class make_provider() builds for kind "anthropic"
