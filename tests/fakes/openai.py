"""A fake of OpenAI's Chat Completions API (`POST /v1/chat/completions`), served on 127.0.0.1.

It answers as api.openai.com does: `chat.completion` bodies (`chatcmpl-` ids, a dated model
snapshot, `system_fingerprint`, detailed `usage`), `x-request-id` and `x-ratelimit-*` headers, SSE
`chat.completion.chunk` events with the usage-only chunk when `stream_options.include_usage` is set,
then `data: [DONE]`; and OpenAI's `{"error": {message, type, param, code}}` bodies. The `llamacpp`
flavour plays a local OpenAI-compatible server instead: `: ping` comment lines, no usage chunk, no
fingerprint, the model name echoed.

Faults (`harness.Fault`) it knows: `status` (401, 404, 429, 500, 503, …) and these `kind`s —
"auth", "rate_limit", "insufficient_quota", "context_length", "model_not_found", "overloaded",
"bare" (a compatible server's `{"error": {"type": "internal_server_error"}}`), "echo_key" (not a
vendor's: an error that quotes the bearer token, to prove the client scrubs it); for streams
"keepalive", "no_usage", "no_done" (a clean close with neither `finish_reason` nor [DONE]), plus
`error_event`, `cut_after`, `raw_body`, `empty`, `delay_s`, `text`, `usage`.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.harness import FakeVendor, Fault, Recorded, pause

KEY = "sk-test-not-a-real-key-0000"  # short on purpose: secret scanners look for 32+ characters


class CutConnection(Exception):
    """Raised inside a streaming body: uvicorn then drops the connection mid-reply."""


def _caused_by_cut(exc: BaseException | None) -> bool:
    if isinstance(exc, CutConnection):
        return True
    return any(_caused_by_cut(e) for e in getattr(exc, "exceptions", ()))


class _QuietCuts(logging.Filter):
    """Keeps the deliberate CutConnection tracebacks out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _caused_by_cut(record.exc_info[1]))


_QUIET_CUTS = _QuietCuts()
logging.getLogger("uvicorn.error").addFilter(_QUIET_CUTS)  # same object: adding twice is a no-op


def _alnum(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def pieces(text: str, parts: int = 3) -> list[str]:
    """`text` cut into a few deltas at word boundaries, as a model streams it."""
    words = text.split(" ")
    size = max(1, -(-len(words) // parts))
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [c + " " if i < len(chunks) - 1 else c for i, c in enumerate(chunks)]


@dataclass(frozen=True)
class VendorError:
    status: int
    body: Any  # JSON, or a str sent as text/plain
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ChatCompletionsFake:
    """One fake server; `app()` is its Starlette application. Subclasses change the vendor."""

    vendor: FakeVendor
    key: str | None = KEY  # None: a keyless local server that ignores Authorization
    flavour: str = "openai"  # or "llamacpp"
    prefix: str = "/v1"

    # -- the application ---------------------------------------------------------------------

    def app(self) -> Starlette:
        route = Route(f"{self.prefix}/chat/completions", self.handle, methods=["POST"])
        return Starlette(routes=[route])

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.vendor.record(
            Recorded(
                request.method,
                request.url.path,
                dict(request.headers),
                dict(request.query_params),
                body,
            )
        )
        if not self.authorized(request.headers.get("authorization")):
            return self.respond(self.auth_error(request.headers.get("authorization")))
        if not isinstance(body, dict):
            return self.respond(self.invalid_json())
        invalid = self.validate(body)
        if invalid is not None:
            return self.respond(invalid)
        model = str(body.get("model", ""))
        fault = self.vendor.next_fault(model)
        await pause(fault)
        streamed_error = fault.error_event and bool(body.get("stream"))
        if fault.kind == "echo_key":
            return self.respond(self.echo_key(request.headers.get("authorization", "")))
        if not streamed_error and (fault.status is not None or fault.kind in self.error_kinds):
            return self.respond(self.error(fault, model))
        if fault.raw_body is not None:
            kind = "text/event-stream" if body.get("stream") else "application/json"
            return Response(fault.raw_body, media_type=kind, headers=self.headers())
        text = "" if fault.empty else (fault.text or self.vendor.default_text)
        if body.get("stream"):
            events = self.stream_events(body, model, text, fault)
            return StreamingResponse(
                events, media_type="text/event-stream; charset=utf-8", headers=self.headers()
            )
        return JSONResponse(self.completion(model, text, fault), headers=self.headers())

    def respond(self, err: VendorError) -> Response:
        headers = {**self.headers(), **err.headers}
        if isinstance(err.body, str):
            return Response(err.body, status_code=err.status, headers=headers)
        return JSONResponse(err.body, status_code=err.status, headers=headers)

    def authorized(self, authorization: str | None) -> bool:
        return self.key is None or authorization == f"Bearer {self.key}"

    def validate(self, body: dict[str, Any]) -> VendorError | None:
        """OpenAI ignores nothing it does not know either, but tolerates every field we send."""
        if not isinstance(body.get("messages"), list):
            return self.openai_error(
                400, "Missing required parameter: 'messages'.", param="messages"
            )
        return None

    # -- success ------------------------------------------------------------------------------

    def headers(self) -> dict[str, str]:
        if self.flavour == "llamacpp":
            return {}
        return {
            "x-request-id": f"req_{secrets.token_hex(16)}",
            "openai-processing-ms": "321",
            "openai-version": "2020-10-01",
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999950",
            "x-ratelimit-reset-tokens": "0s",
        }

    def answered_model(self, model: str) -> str:
        return model if self.flavour == "llamacpp" else f"{model}-2024-08-06"

    def usage(self, fault: Fault) -> dict[str, Any]:
        prompt, completion = fault.usage
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if self.flavour != "llamacpp":
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage

    def envelope(self, obj: str, model: str, cid: str, created: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": cid,
            "object": obj,
            "created": created,
            "model": self.answered_model(model),
        }
        if self.flavour != "llamacpp":
            out["service_tier"] = "default"
            out["system_fingerprint"] = "fp_f33640a400"
        return out

    def completion(self, model: str, text: str, fault: Fault) -> dict[str, Any]:
        out = self.envelope("chat.completion", model, f"chatcmpl-{_alnum(29)}", int(time.time()))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        }
        out["choices"] = [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        ]
        out["usage"] = self.usage(fault)
        return out

    def chunks(
        self, body: dict[str, Any], model: str, text: str, fault: Fault
    ) -> list[dict[str, Any]]:
        """Every `chat.completion.chunk` of one streamed reply, in order."""
        cid, created = f"chatcmpl-{_alnum(29)}", int(time.time())
        options = body.get("stream_options")
        with_usage = (
            self.flavour != "llamacpp"
            and isinstance(options, dict)
            and options.get("include_usage") is True
            and fault.kind != "no_usage"
        )

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            out = self.envelope("chat.completion.chunk", model, cid, created)
            out["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ]
            if with_usage:
                out["usage"] = None
            return out

        out = [chunk({"role": "assistant", "content": "", "refusal": None}, None)]
        out += [chunk({"content": piece}, None) for piece in (pieces(text) if text else [])]
        if fault.error_event:
            return out[:2]
        if fault.kind == "no_done":
            return out
        out.append(chunk({}, "stop"))
        if with_usage:
            last = self.envelope("chat.completion.chunk", model, cid, created)
            last["choices"] = []
            last["usage"] = self.usage(fault)
            out.append(last)
        return out

    async def stream_events(
        self, body: dict[str, Any], model: str, text: str, fault: Fault
    ) -> AsyncIterator[str]:
        keepalive = self.flavour == "llamacpp" or fault.kind == "keepalive"
        for sent, chunk in enumerate(self.chunks(body, model, text, fault)):
            if fault.cut_after is not None and sent >= fault.cut_after:
                raise CutConnection
            if keepalive:
                yield f": ping - {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n"
            yield f"data: {json.dumps(chunk)}\n\n"
        if fault.error_event:
            yield f"data: {json.dumps(self.stream_error(fault, model))}\n\n"
            return
        if fault.kind != "no_done":
            yield "data: [DONE]\n\n"

    def stream_error(self, fault: Fault, model: str) -> Any:
        """The error object sent as an event after the stream began (then the stream ends)."""
        return self.error(Fault(status=fault.status or 500, kind=fault.kind), model).body

    # -- errors -------------------------------------------------------------------------------

    error_kinds = frozenset(
        {
            "auth",
            "rate_limit",
            "insufficient_quota",
            "context_length",
            "model_not_found",
            "overloaded",
            "bare",
        }
    )

    def openai_error(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> VendorError:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return VendorError(status, body, headers or {})

    def auth_error(self, authorization: str | None) -> VendorError:
        if not authorization:
            return self.openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). "
                "You can obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        given = authorization.removeprefix("Bearer ")
        masked = given[:8] + "*" * max(len(given) - 12, 0) + given[-4:]
        return self.openai_error(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            code="invalid_api_key",
        )

    def invalid_json(self) -> VendorError:
        if self.flavour == "llamacpp":
            return VendorError(500, {"error": {"type": "internal_server_error"}})
        return self.openai_error(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
        )

    def echo_key(self, authorization: str) -> VendorError:
        return self.openai_error(400, f"Malformed header: Authorization: {authorization}.")

    def retry_headers(self, fault: Fault) -> dict[str, str]:
        headers = {}
        if fault.retry_after is not None:
            headers["retry-after"] = fault.retry_after
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = fault.retry_after_ms
        return headers

    def error(self, fault: Fault, model: str) -> VendorError:
        """The vendor's error for this fault: its status, its body, its headers."""
        kind, status = fault.kind, fault.status
        if kind == "auth" or (status == 401 and kind is None):
            err = self.auth_error(f"Bearer {self.key or 'sk-wrong'}")
            return VendorError(status or 401, err.body, err.headers)
        if kind == "insufficient_quota":
            return self.openai_error(
                status or 429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                type_="insufficient_quota",
                code="insufficient_quota",
            )
        if kind == "rate_limit" or (status == 429 and kind is None):
            headers = {
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": "20s",
                "x-ratelimit-limit-tokens": "40000",
                "x-ratelimit-remaining-tokens": "39000",
                "x-ratelimit-reset-tokens": "1.5s",
                **self.retry_headers(fault),
            }
            return self.openai_error(
                status or 429,
                f"Rate limit reached for {model} in organization org-fake on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                type_="requests",
                code="rate_limit_exceeded",
                headers=headers,
            )
        if kind == "context_length":
            return self.openai_error(
                status or 400,
                "This model's maximum context length is 128000 tokens. However, your messages "
                "resulted in 204308 tokens. Please reduce the length of the messages.",
                code="context_length_exceeded",
                param="messages",
            )
        if kind == "model_not_found" or (status == 404 and kind is None):
            return self.openai_error(
                status or 404,
                f"The model `{model}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if kind == "overloaded" or (status == 503 and kind is None):
            return self.openai_error(
                status or 503,
                "That model is currently overloaded with other requests. You can retry your "
                "request, or contact us through our help center at help.openai.com if the "
                "error persists.",
                type_="server_error",
                headers=self.retry_headers(fault),
            )
        if kind == "bare":
            return VendorError(status or 500, {"error": {"type": "internal_server_error"}})
        if status is not None and status >= 500:
            return self.openai_error(
                status,
                "The server had an error while processing your request. Sorry about that!",
                type_="server_error",
                headers=self.retry_headers(fault),
            )
        return self.openai_error(
            status or 400, "Invalid request.", headers=self.retry_headers(fault)
        )


def openai_app(vendor: FakeVendor, *, key: str | None = KEY, flavour: str = "openai") -> Starlette:
    """The fake's Starlette app; serve it with `harness.serve()` (base URL + "/v1")."""
    return ChatCompletionsFake(vendor, key=key, flavour=flavour).app()
