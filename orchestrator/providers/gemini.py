"""The `gemini` provider: Google's Gemini API (`v1beta/models/{model}:generateContent`).

Streaming uses `:streamGenerateContent?alt=sse`, where every event is a whole
GenerateContentResponse and the last one carries the final `usageMetadata`. The key travels only in
the `x-goog-api-key` header, never in the URL, so it cannot leak through logged URLs. Roles map to
`user`/`model`, system messages to `systemInstruction`. Google's error bodies
(`{"error": {"code", "message", "status", "details"}}`) are read down to their details: a per-day
QuotaFailure is QuotaExhausted (no retry until the quota resets), other 429s are RateLimited with
the wait from RetryInfo, and an API_KEY_INVALID reason is an AuthError even though it comes as 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import quote

import httpx

from ace_lsp.orchestrator.errors import (
    AuthError,
    BadResponse,
    ContextTooLong,
    Overloaded,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    ServerError,
    Timeout,
)
from ace_lsp.orchestrator.providers.base import StreamChunk
from ace_lsp.orchestrator.providers.http import HttpProvider
from ace_lsp.orchestrator.providers.sse import SSEEvent
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.retry import parse_retry_after
from ace_lsp.orchestrator.types import LLMRequest, ProviderReply, Usage

API_VERSION = "v1beta"
_TYPE = "type.googleapis.com/google.rpc."
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(ms|s)\s*$")
_CONTEXT_PHRASES = ("exceeds the maximum number of tokens", "input token count")
_AUTH_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"}
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def brief(text: str) -> str:
    """The first sentence of a vendor message, without its full stop, to quote inside ours."""
    first = _SENTENCE_END.split(text.strip().split("\n", 1)[0], maxsplit=1)[0]
    return first.rstrip(" .")


def parse_duration(text: str) -> float | None:
    """Seconds in a protobuf Duration as JSON writes it ("12s", "34.07s"; also "900ms")."""
    match = _DURATION.match(text)
    if match is None:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


@dataclass(frozen=True)
class GoogleError:
    """The parts of a google.rpc.Status error body that decide what went wrong."""

    code: int | None = None
    status: str = ""
    message: str = ""
    reasons: frozenset[str] = frozenset()  # ErrorInfo.reason values
    quota_ids: tuple[str, ...] = ()  # QuotaFailure violations: quotaId, else quotaMetric
    retry_delay: float | None = None  # RetryInfo.retryDelay, in seconds

    @classmethod
    def parse(cls, payload: Any) -> GoogleError | None:
        """The error of an `{"error": …}` body, details included; None for any other body."""
        err = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(err, dict):
            return None
        reasons: set[str] = set()
        quota_ids: list[str] = []
        retry_delay: float | None = None
        details = err.get("details")
        for detail in details if isinstance(details, list) else []:
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type", ""))
            if kind == _TYPE + "ErrorInfo" and detail.get("reason"):
                reasons.add(str(detail["reason"]))
            elif kind == _TYPE + "QuotaFailure":
                violations = detail.get("violations")
                for v in violations if isinstance(violations, list) else []:
                    if isinstance(v, dict):
                        quota_ids.append(str(v.get("quotaId") or v.get("quotaMetric") or ""))
            elif kind == _TYPE + "RetryInfo":
                retry_delay = parse_duration(str(detail.get("retryDelay", "")))
        code = err.get("code")
        return cls(
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            status=str(err.get("status") or ""),
            message=str(err.get("message") or ""),
            reasons=frozenset(reasons),
            quota_ids=tuple(q for q in quota_ids if q),
            retry_delay=retry_delay,
        )

    @property
    def daily_quota(self) -> str | None:
        """The violated per-day quota, if any: that one resets at midnight Pacific time."""
        for quota in self.quota_ids:
            if "PerDay" in quota or "Daily" in quota or "per_day" in quota:
                return quota
        return None


def request_body(model: ModelSpec, request: LLMRequest) -> dict[str, Any]:
    """The generateContent body for `request`: system text as `systemInstruction`."""
    system: list[dict[str, str]] = []
    contents: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            system.append({"text": message.content})
            continue
        role = "model" if message.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].append({"text": message.content})
        else:
            contents.append({"role": role, "parts": [{"text": message.content}]})
    max_tokens = request.max_output_tokens
    if model.max_output > 0:
        max_tokens = min(max_tokens, model.max_output)
    body: dict[str, Any] = {
        "contents": contents,
        "generationConfig": {"maxOutputTokens": max_tokens, "temperature": request.temperature},
    }
    if system:
        body["systemInstruction"] = {"parts": system}
    return body


def model_path(model: ModelSpec, method: str) -> str:
    """The URL path of `method` (e.g. generateContent) for `model`, its name quoted."""
    name = model.wire_name.removeprefix("models/")
    return f"/{API_VERSION}/models/{quote(name, safe='-._~')}:{method}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(meta: Any) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    # thinking tokens are billed as output, so they count as output here
    output = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
    return Usage(_int(meta.get("promptTokenCount")), output)


@dataclass(frozen=True)
class _Chunk:
    """What one GenerateContentResponse says: its text and how (or whether) the reply ended."""

    text: str
    finish: str | None
    blocked: str | None  # promptFeedback.blockReason
    usage: Usage | None
    model: str


class GeminiProvider(HttpProvider):
    """Gemini models over the Generative Language API; never retries (call.py does)."""

    kind: ClassVar[str] = "gemini"

    def headers(self) -> dict[str, str]:
        """The key in `x-goog-api-key`, never in the URL."""
        return {"x-goog-api-key": self.settings.api_key} if self.settings.api_key else {}

    # -- errors ----------------------------------------------------------------------------------

    def error_detail(self, payload: Any) -> tuple[str, str | None]:
        """(first sentence of the message, google.rpc status) for HttpProvider's default mapping."""
        err = GoogleError.parse(payload)
        if err is None:
            return super().error_detail(payload)
        return brief(err.message), err.status or None

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        err = GoogleError.parse(payload)
        specific = (
            None if err is None else self.google_error(response.status_code, err, response.headers)
        )
        return specific if specific is not None else super()._status_error(response, body)

    def google_error(
        self, status: int, err: GoogleError, headers: Mapping[str, str]
    ) -> ProviderError | None:
        """The ProviderError a Google error body means, or None for HttpProvider's default."""
        message = self.scrub(brief(err.message))
        said = f" ({message})" if message else ""
        env = " or ".join(self.settings.key_env) or "its API key"
        if err.reasons & _AUTH_REASONS or err.status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return AuthError(f"{self.name} refused the API key (HTTP {status}); check {env}.")
        if status == 429 or err.status == "RESOURCE_EXHAUSTED":
            daily = err.daily_quota
            if daily is not None:
                return QuotaExhausted(
                    f"{self.name} has used up its daily quota {daily}; it resets at midnight "
                    "Pacific time.",
                    per_model=True,  # Google counts quota per project and model
                )
            if "limit: 0" in err.message:
                return QuotaExhausted(
                    f"{self.name} gives this key no quota for this model (limit 0); enable "
                    "billing or pick another model.",
                    per_model=True,
                )
            which = f", {err.quota_ids[0]}" if err.quota_ids else ""
            wait = err.retry_delay if err.retry_delay is not None else parse_retry_after(headers)
            return RateLimited(f"{self.name} is rate limiting requests (HTTP 429{which}).", wait)
        lowered = err.message.lower()
        if err.status == "INVALID_ARGUMENT" and any(p in lowered for p in _CONTEXT_PHRASES):
            return ContextTooLong(f"{self.name} says the prompt is too long{said}.")
        if err.status == "UNAVAILABLE" or status == 503:
            return Overloaded(f"{self.name} is overloaded (HTTP {status}); try again shortly.")
        if err.status == "DEADLINE_EXCEEDED" or status == 504:
            return Timeout(f"{self.name} gave up on the request (HTTP {status}).")
        if err.status == "FAILED_PRECONDITION":
            return ProviderUnavailable(f"{self.name} cannot serve this key here{said}.")
        return None

    def _stream_error(self, payload: Any) -> ProviderError:
        """An `{"error": …}` object sent as an event after the 200 response began."""
        err = GoogleError.parse(payload) or GoogleError()
        status = err.code or 500
        specific = self.google_error(status, err, {})
        if specific is not None:
            return specific
        message = self.scrub(brief(err.message))
        said = f" ({message})" if message else ""
        return ServerError(f"{self.name} reported {err.status or 'an error'} mid-reply{said}.")

    # -- replies ---------------------------------------------------------------------------------

    def _chunk(self, payload: Any) -> _Chunk:
        if not isinstance(payload, dict):
            raise BadResponse(f"{self.name} answered with something other than a JSON object.")
        if "error" in payload:
            raise self._stream_error(payload)
        feedback = payload.get("promptFeedback")
        blocked = feedback.get("blockReason") if isinstance(feedback, dict) else None
        candidates = payload.get("candidates")
        first = candidates[0] if isinstance(candidates, list) and candidates else {}
        first = first if isinstance(first, dict) else {}
        content = first.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text = "".join(
            str(part.get("text", ""))
            for part in (parts if isinstance(parts, list) else [])
            if isinstance(part, dict) and not part.get("thought")
        )
        finish = first.get("finishReason")
        return _Chunk(
            text=text,
            finish=str(finish) if finish else None,
            blocked=str(blocked) if blocked else None,
            usage=_usage(payload.get("usageMetadata")),
            model=str(payload.get("modelVersion") or ""),
        )

    def _no_text(self, blocked: str | None, finish: str | None) -> BadResponse:
        if blocked:
            return BadResponse(f"{self.name} blocked the prompt ({blocked}); rephrase it.")
        if finish and finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            return BadResponse(f"{self.name} stopped without any text (finishReason {finish}).")
        return BadResponse(f"{self.name} returned an empty reply.")

    def _check_key(self) -> None:
        why = self.available()
        if why is not None:
            raise AuthError(why)

    async def complete(self, model: ModelSpec, request: LLMRequest) -> ProviderReply:
        """One generateContent reply, thoughts left out; without a key, AuthError and no request."""
        self._check_key()
        cap = self.reply_cap(model, request)
        payload = await self.post_json(
            model_path(model, "generateContent"), request_body(model, request), cap
        )
        chunk = self._chunk(payload)
        if not chunk.text.strip():
            raise self._no_text(chunk.blocked, chunk.finish)
        cap.add_text(chunk.text)
        return ProviderReply(chunk.text, chunk.usage or Usage(), chunk.model)

    async def stream(self, model: ModelSpec, request: LLMRequest) -> AsyncIterator[StreamChunk]:
        """Text as each streamed response brings it; the last chunk carries the usage."""
        self._check_key()
        path = model_path(model, "streamGenerateContent") + "?alt=sse"
        cap = self.reply_cap(model, request)
        events = cast(
            "AsyncGenerator[SSEEvent, None]",
            self.post_sse(path, request_body(model, request), cap),
        )
        usage: Usage | None = None
        finish: str | None = None
        seen_text = False
        async with aclosing(events):
            async for event in events:
                chunk = self._chunk(self.decode(event.data))
                if chunk.blocked:
                    raise self._no_text(chunk.blocked, None)
                usage = chunk.usage or usage
                finish = chunk.finish or finish
                if chunk.text:
                    cap.add_text(chunk.text)
                    seen_text = seen_text or bool(chunk.text.strip())
                    yield StreamChunk(chunk.text)
        if finish is None:
            # Gemini sends no end marker: a reply without a finishReason was cut short
            raise ServerError(f"{self.name} closed the stream mid-reply.")
        if not seen_text:
            raise self._no_text(None, finish)
        yield StreamChunk("", usage or Usage())


PROVIDER = GeminiProvider  # the class make_provider() builds for kind "gemini"
