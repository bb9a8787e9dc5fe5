"""A fake Anthropic Messages API (`POST /v1/messages`, version 2023-06-01) on 127.0.0.1.

It answers with Anthropic's exact shapes: the Message object, the SSE event flow (`message_start`,
`content_block_start`, `ping`, `content_block_delta`, `content_block_stop`, `message_delta`,
`message_stop`, and an `error` event mid-stream), error bodies
`{"type": "error", "error": {"type", "message"}, "request_id"}` with their status codes, and the
`retry-after` / `anthropic-ratelimit-*` headers. It checks `x-api-key` and `anthropic-version`,
and is stricter than the real API about turn order (user first, then strict alternation) so that
a test proves the provider merges same-role messages.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.harness import FakeVendor, Fault, Recorded, pause

API_KEY = "sk-ant-test-0000"
VERSION = "2023-06-01"
REQUEST_ID = "req_fake0001"
MESSAGE_ID = "msg_fake0001"
RESET = "2025-01-01T00:00:30Z"

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
# Fault.kind -> (status, error message) for the flavours only Anthropic has
KINDS: Mapping[str, tuple[int, str]] = {
    "overloaded": (529, "Overloaded"),
    "context_length": (400, "prompt is too long: 208310 tokens > 200000 maximum"),
    "auth": (401, "invalid x-api-key"),
    "rate_limit": (
        429,
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    "credit_balance": (
        400,
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
}
MESSAGES: Mapping[int, str] = {
    400: "messages: field required",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "model: not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit.",
    500: "Internal server error",
    529: "Overloaded",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": REQUEST_ID}


def ratelimit_headers(remaining: int) -> dict[str, str]:
    return {
        "request-id": REQUEST_ID,
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": str(remaining),
        "anthropic-ratelimit-requests-reset": RESET,
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "39000" if remaining else "0",
        "anthropic-ratelimit-tokens-reset": RESET,
    }


def error_response(status: int, message: str, fault: Fault | None = None) -> JSONResponse:
    headers = ratelimit_headers(0) if status == 429 else {"request-id": REQUEST_ID}
    if fault is not None and fault.retry_after is not None:
        headers["retry-after"] = fault.retry_after
    if fault is not None and fault.retry_after_ms is not None:
        headers["retry-after-ms"] = fault.retry_after_ms
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def check_request(request: Request, body: Any, api_key: str) -> JSONResponse | None:
    """The error the real API gives for a missing key or version, or a malformed body."""
    if request.headers.get("x-api-key") != api_key:
        return error_response(401, "invalid x-api-key")
    if request.headers.get("anthropic-version") != VERSION:
        return error_response(400, "anthropic-version: header is required")
    if not isinstance(body, dict):
        return error_response(400, "There was an issue with the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        return error_response(400, "model: Field required")
    if not isinstance(body.get("max_tokens"), int):
        return error_response(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(400, "messages: at least one message is required")
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return error_response(
                400,
                f'messages.{i}.role: Unexpected role "{role}". The Messages API accepts a '
                'top-level `system` parameter, not "system" as an input message role.',
            )
        if (i == 0 and role != "user") or role == previous:
            return error_response(
                400, 'messages: roles must alternate between "user" and "assistant"'
            )
        previous = role
    if "system" in body and not isinstance(body["system"], str | list):
        return error_response(400, "system: Input should be a valid string")
    return None


def message_object(model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": text}] if text else [],
        "model": model,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def sse(name: str, data: Mapping[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def pieces(text: str, size: int = 8) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def stream_events(model: str, text: str, fault: Fault) -> list[str]:
    """The SSE events of one streamed reply, in the order Anthropic sends them."""
    start = message_object(model, "", (fault.usage[0], 1))
    events = [sse("message_start", {"type": "message_start", "message": start})]
    if text:
        events.append(
            sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        events.append(sse("ping", {"type": "ping"}))
        for i, piece in enumerate(pieces(text)):
            delta = {"type": "text_delta", "text": piece}
            events.append(
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            )
            if fault.error_event and i == 0:
                kind = (
                    fault.kind
                    if fault.kind and fault.kind.endswith("_error")
                    else "overloaded_error"
                )
                message = "Overloaded" if kind == "overloaded_error" else "Internal server error"
                events.append(
                    sse("error", {"type": "error", "error": {"type": kind, "message": message}})
                )
                return events  # the API ends the stream after an error event
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": fault.usage[1]},
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


async def play(events: list[str], cut_after: int | None) -> AsyncIterator[str]:
    for i, event in enumerate(events):
        if cut_after is not None and i >= cut_after:
            # raising after the response started makes uvicorn drop the connection mid-body
            raise ConnectionAbortedError("fake anthropic: stream cut on purpose")
        yield event


async def messages(request: Request) -> Response:
    vendor: FakeVendor = request.app.state.vendor
    raw = await request.body()
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = None
    vendor.record(
        Recorded(
            request.method,
            request.url.path,
            dict(request.headers),
            dict(request.query_params),
            body,
        )
    )
    refused = check_request(request, body, request.app.state.api_key)
    if refused is not None:
        return refused
    model = str(body["model"])
    fault = vendor.next_fault(model)
    await pause(fault)
    if fault.status is not None or (fault.kind in KINDS and not fault.error_event):
        status, message = KINDS.get(fault.kind or "", (0, ""))
        status = fault.status or status
        return error_response(status, message or MESSAGES.get(status, "Error"), fault)
    streaming = body.get("stream") is True
    headers = ratelimit_headers(49)
    if fault.raw_body is not None:
        if streaming:
            events = [f"event: content_block_delta\ndata: {fault.raw_body}\n\n"]
            return StreamingResponse(
                play(events, None), media_type="text/event-stream", headers=headers
            )
        return Response(fault.raw_body, media_type="application/json", headers=headers)
    text = "" if fault.empty else (fault.text if fault.text is not None else vendor.default_text)
    if streaming:
        return StreamingResponse(
            play(stream_events(model, text, fault), fault.cut_after),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )
    return JSONResponse(message_object(model, text, fault.usage), headers=headers)


def create_app(vendor: FakeVendor | None = None, api_key: str = API_KEY) -> Starlette:
    """The fake; swap `app.state.vendor` between tests to reset requests and faults."""
    app = Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])
    app.state.vendor = vendor or FakeVendor()
    app.state.api_key = api_key
    return app
