"""The shared half of every HTTP provider: one keep-alive client, error mapping, SSE streaming.

A vendor module subclasses HttpProvider, builds its request body, parses its replies, and refines
`classify()` for the error kinds only it has (quota, context length, overload). Everything else —
timeouts, connection failures, status codes, malformed JSON, scrubbing the key out of messages —
is decided here, once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx

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
from ace_lsp.orchestrator.providers.sse import SSEDecoder, SSEEvent
from ace_lsp.orchestrator.retry import parse_retry_after

MAX_DETAIL = 200


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
        return self.settings.unavailable()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = httpx.AsyncClient(
                base_url=s.base_url,
                headers=self.headers(),
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

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST `body`, return the decoded JSON reply; every failure is a ProviderError."""
        try:
            response = await self.client.post(path, json=body)
            raw = await response.aread()
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        if response.status_code >= 400:
            raise self._status_error(response, raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise BadResponse(f"{self.name} answered with malformed JSON.") from None

    async def post_sse(self, path: str, body: Mapping[str, Any]) -> AsyncIterator[SSEEvent]:
        """POST `body` and yield the reply's server-sent events as they arrive."""
        try:
            async with self.client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    raise self._status_error(response, await response.aread())
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
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
