"""The shared half of every HTTP provider: one keep-alive client, error mapping, SSE streaming.

A vendor module subclasses HttpProvider, builds its request body, parses its replies, and refines
`classify()` for the error kinds only it has (quota, context length, overload). Everything else —
timeouts, connection failures, status codes, malformed JSON, scrubbing the key out of messages,
how much of a reply is read (`ReplyCap`: a reply far larger than the output tokens asked for is
cut off while it streams in and refused) — is decided here, once.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from ace_lsp.orchestrator import caps
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
from ace_lsp.orchestrator.providers.sse import SSEDecoder, SSEEvent, SSELines
from ace_lsp.orchestrator.registry import ModelSpec
from ace_lsp.orchestrator.retry import parse_retry_after
from ace_lsp.orchestrator.types import LLMRequest

MAX_DETAIL = 200


def output_tokens(model: ModelSpec, request: LLMRequest) -> int:
    """The output tokens a request asks the model for: the request's, within the model's."""
    if model.max_output > 0:
        return min(request.max_output_tokens, model.max_output)
    return request.max_output_tokens


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


@dataclass
class ReplyCap:
    """How much of one reply is read (see `caps`): its text, a JSON body or one line or event of a
    stream, and all of a stream's bytes. Past any of them the reply is refused as a BadResponse."""

    provider: str
    tokens: int  # output tokens asked for
    text: int = 0  # bytes of reply text counted so far

    @property
    def text_bytes(self) -> int:
        """The most bytes of reply text read for the output tokens asked for."""
        return caps.reply_bytes(self.tokens)

    @property
    def body_bytes(self) -> int:
        """The most bytes read of a JSON body, or of one line or event of a stream."""
        return self.text_bytes * caps.BODY_PER_TEXT

    @property
    def stream_bytes(self) -> int:
        """The most bytes read of a whole stream."""
        return self.text_bytes * caps.STREAM_PER_TEXT

    def refuse(self, what: str, limit: int) -> BadResponse:
        """The BadResponse for a reply that sent `what` beyond `limit` bytes."""
        return BadResponse(
            f"{self.provider} sent {what} over {_size(limit)}, far more than the {self.tokens} "
            "output tokens asked for; ACE stopped reading it."
        )

    def add_text(self, text: str) -> None:
        """Count reply text as it arrives; a BadResponse once there is more than the cap."""
        self.text += len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        if self.text > self.text_bytes:
            raise self.refuse("a reply", self.text_bytes)


class HttpProvider:
    """Base class: subclasses set `kind` and implement complete/stream with the helpers below."""

    kind: ClassVar[str] = ""

    def __init__(
        self, settings: ProviderSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    # -- to override -------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        """Auth and version headers for every request (never logged)."""
        return {}

    def classify(
        self, status: int, message: str, code: str | None, headers: Mapping[str, str]
    ) -> ProviderError | None:
        """A vendor-specific error for this status and error body, or None for the default."""
        return None

    def error_detail(self, payload: Any) -> tuple[str, str | None]:
        """(message, vendor code) from an error body; the common {"error": {...}} shape."""
        err = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(err, dict):
            code = err.get("code") or err.get("type") or err.get("status")
            return str(err.get("message", "")), None if code is None else str(code)
        if isinstance(err, str):
            return err, None
        if isinstance(payload, dict) and "message" in payload:
            return str(payload["message"]), None
        return "", None

    # -- shared --------------------------------------------------------------------------------

    def available(self) -> str | None:
        """None when the provider can be called (a key is set, or none is needed); else why not."""
        return self.settings.unavailable()

    def reply_cap(self, model: ModelSpec, request: LLMRequest) -> ReplyCap:
        """A fresh ReplyCap for one call of `model` with `request`."""
        return ReplyCap(self.name, output_tokens(model, request))

    @property
    def client(self) -> httpx.AsyncClient:
        """The keep-alive client, made on first use: no redirects, no origin but `base_url`."""
        if self._client is None:
            s = self.settings
            self._client = httpx.AsyncClient(
                base_url=s.base_url,
                # uncompressed replies: the byte caps then bound memory too (httpx inflates
                # each compressed read whole, so a small gzip bomb could be large in memory)
                headers={"Accept-Encoding": "identity", **self.headers()},
                timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
                transport=self._transport,
                follow_redirects=False,  # a redirect would carry the key to another host
                event_hooks={"request": [self._same_origin]},
            )
        return self._client

    async def _same_origin(self, request: httpx.Request) -> None:
        """The key goes only to the provider's configured origin: refuse any other URL."""
        base = httpx.URL(self.settings.base_url)
        url = request.url
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise ProviderUnavailable(
                f"{self.name}: ACE refused to send a request to {url.scheme}://{url.host}, "
                "which is not this provider's configured base_url."
            )

    async def aclose(self) -> None:
        """Close the keep-alive client; the next request opens a new one."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def scrub(self, text: str) -> str:
        """`text` with the key (and anything after 'Bearer ') removed, cut to a readable length."""
        key = self.settings.api_key
        if key:
            text = text.replace(key, "***")
        text = " ".join(text.split())
        return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"

    def _transport_error(self, exc: httpx.TransportError) -> ProviderError:
        where = self.settings.base_url
        if isinstance(exc, httpx.ConnectTimeout):
            secs = self.settings.connect_timeout_s
            return Timeout(f"{self.name} did not accept a connection within {secs:g} s.")
        if isinstance(exc, httpx.TimeoutException):
            secs = self.settings.read_timeout_s
            return Timeout(f"{self.name} did not answer within {secs:g} s.")
        if isinstance(exc, httpx.ConnectError):
            return ProviderUnavailable(f"Cannot connect to {self.name} at {where}.")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return ServerError(f"{self.name} closed the connection mid-reply.")
        return ServerError(f"{self.name} failed at the network level ({type(exc).__name__}).")

    def _status_error(self, response: httpx.Response, body: bytes) -> ProviderError:
        status = response.status_code
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        message, code = self.error_detail(payload)
        message = self.scrub(message or body.decode("utf-8", "replace"))
        specific = self.classify(status, message, code, response.headers)
        if specific is not None:
            return specific
        said = f" ({message})" if message else ""
        if status in (401, 403):
            env = " or ".join(self.settings.key_env) or "its API key"
            return AuthError(f"{self.name} refused the API key (HTTP {status}); check {env}.")
        if status == 429:
            return RateLimited(
                f"{self.name} is rate limiting requests (HTTP 429){said}.",
                parse_retry_after(response.headers),
            )
        if status == 413:
            return ContextTooLong(f"{self.name} says the request is too large (HTTP 413).")
        if status == 529:
            return Overloaded(f"{self.name} is overloaded (HTTP 529); try again shortly.")
        if status >= 500:
            return ServerError(f"{self.name} had a server error (HTTP {status}){said}.")
        return BadRequest(f"{self.name} refused the request (HTTP {status}){said}.")

    async def _error_body(self, response: httpx.Response) -> bytes:
        """The start of an error reply's body: only quoted, so at most ERROR_BODY_BYTES."""
        parts: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if size >= caps.ERROR_BODY_BYTES:
                break
        return b"".join(parts)[: caps.ERROR_BODY_BYTES]

    async def post_json(self, path: str, body: Mapping[str, Any], cap: ReplyCap) -> Any:
        """POST `body`, return the decoded JSON reply; every failure is a ProviderError.

        A body over `cap.body_bytes` (said by its Content-Length, or counted while it arrives)
        is refused without reading the rest."""
        limit = cap.body_bytes
        try:
            async with self.client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    raise self._status_error(response, await self._error_body(response))
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise cap.refuse("a reply", limit)
                parts: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise cap.refuse("a reply", limit)
                    parts.append(chunk)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        try:
            return json.loads(b"".join(parts))
        except ValueError:
            raise BadResponse(f"{self.name} answered with malformed JSON.") from None

    async def post_sse(
        self, path: str, body: Mapping[str, Any], cap: ReplyCap
    ) -> AsyncIterator[SSEEvent]:
        """POST `body` and yield the reply's server-sent events as they arrive.

        A line or an event over `cap.body_bytes`, or a stream over `cap.stream_bytes`, is
        refused as soon as it gets there; nothing more is read."""
        try:
            async with self.client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    raise self._status_error(response, await self._error_body(response))
                text = codecs.getincrementaldecoder("utf-8")("replace")  # SSE is always UTF-8
                lines, decoder = SSELines(), SSEDecoder()
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap.stream_bytes:
                        raise cap.refuse("a stream", cap.stream_bytes)
                    for line in lines.feed(text.decode(chunk)):
                        event = decoder.feed(line)
                        if event is not None:
                            yield event
                    if max(lines.pending, decoder.pending) > cap.body_bytes:
                        raise cap.refuse("one event", cap.body_bytes)
                for line in lines.feed(text.decode(b"", final=True)) + lines.end():
                    event = decoder.feed(line)
                    if event is not None:
                        yield event
                last = decoder.end()
                if last is not None:
                    yield last
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None

    def decode(self, data: str) -> Any:
        """One SSE event's JSON data; malformed data is a BadResponse."""
        try:
            return json.loads(data)
        except ValueError:
            raise BadResponse(f"{self.name} streamed malformed JSON.") from None
