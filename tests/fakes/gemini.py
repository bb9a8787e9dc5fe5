"""A fake Google Gemini API (`v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`) on 127.0.0.1.

It answers with Google's exact shapes: GenerateContentResponse (`candidates`, `usageMetadata`,
`modelVersion`, `promptFeedback` for a blocked prompt), SSE events that are each a whole response
with the final usage in the last, and google.rpc.Status error bodies with their `details`
(QuotaFailure violations, RetryInfo, ErrorInfo `API_KEY_INVALID`). It takes the key only from
`x-goog-api-key` and refuses with 400 any request that puts a key in the URL, so a test proves the
provider never does. It is stricter than the real API about turn order (strict user/model
alternation) so that a test proves the provider merges same-role messages.
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

API_KEY = "test-gemini-key-0000"
RETRY_DELAY = "17s"  # RetryInfo.retryDelay of the per-minute 429
RESPONSE_ID = "fakeResponse0001"
_T = "type.googleapis.com/google.rpc."

STATUS_NAMES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MESSAGES: Mapping[int, str] = {
    400: "Request contains an invalid argument.",
    401: "Request had invalid authentication credentials.",
    403: "The caller does not have permission",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
KIND_STATUS: Mapping[str, int] = {
    "daily_quota": 429,
    "per_minute": 429,
    "no_quota": 429,
    "context_length": 400,
    "auth": 400,
    "location": 400,
    "overloaded": 503,
}
HELP = {
    "@type": _T + "Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}


def status_body(
    status: int, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details is not None:
        error["details"] = details
    return {"error": error}


def violation(metric: str, quota_id: str, model: str, value: str) -> dict[str, Any]:
    return {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": value,
    }


def api_key_invalid() -> dict[str, Any]:
    message = "API key not valid. Please pass a valid API key."
    return status_body(
        400,
        message,
        [
            {
                "@type": _T + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": _T + "LocalizedMessage", "locale": "en-US", "message": message},
        ],
    )


def fault_body(status: int, kind: str | None, model: str) -> dict[str, Any]:
    """The error body Google sends for this status and flavour."""
    if kind == "auth":
        return api_key_invalid()
    if kind == "daily_quota":
        return status_body(
            429,
            QUOTA_MESSAGE + f"\n* Quota exceeded for metric: generate_content_free_tier_requests, "
            f"limit: 250, model: {model}\nPlease retry in 43.5s.",
            [
                {
                    "@type": _T + "QuotaFailure",
                    "violations": [
                        violation(
                            "generate_content_free_tier_input_token_count",
                            "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                            model,
                            "250000",
                        ),
                        violation(
                            "generate_content_free_tier_requests",
                            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                            model,
                            "250",
                        ),
                    ],
                },
                HELP,
                {"@type": _T + "RetryInfo", "retryDelay": "43s"},
            ],
        )
    if kind == "per_minute":
        return status_body(
            429,
            QUOTA_MESSAGE + f"\n* Quota exceeded for metric: generate_content_free_tier_requests, "
            f"limit: 10, model: {model}\nPlease retry in 16.8s.",
            [
                {
                    "@type": _T + "QuotaFailure",
                    "violations": [
                        violation(
                            "generate_content_free_tier_requests",
                            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                            model,
                            "10",
                        )
                    ],
                },
                HELP,
                {"@type": _T + "RetryInfo", "retryDelay": RETRY_DELAY},
            ],
        )
    if kind == "no_quota":
        return status_body(
            429,
            QUOTA_MESSAGE + "\n* Quota exceeded for metric: generate_content_free_tier_requests, "
            f"limit: 0, model: {model}",
            [HELP],
        )
    if kind == "context_length":
        return status_body(
            400,
            "The input token count (1310133) exceeds the maximum number of tokens allowed "
            "(1048576).",
        )
    if kind == "location":
        body = status_body(400, "User location is not supported for the API use.")
        body["error"]["status"] = "FAILED_PRECONDITION"
        return body
    if status == 403:
        return status_body(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API.",
        )
    if status == 404:
        return status_body(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    return status_body(status, MESSAGES.get(status, "Error"))


def error_response(body: dict[str, Any], status: int, fault: Fault | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if fault is not None and fault.retry_after is not None:
        headers["retry-after"] = fault.retry_after
    if fault is not None and fault.retry_after_ms is not None:
        headers["retry-after-ms"] = fault.retry_after_ms
    return JSONResponse(body, status_code=status, headers=headers)


def check_request(request: Request, body: Any, api_key: str) -> JSONResponse | None:
    """The refusal for a key in the URL, a missing or wrong key, or a malformed body."""
    if "key" in request.query_params:
        return error_response(
            status_body(400, "This fake refuses API keys in the URL; send x-goog-api-key."), 400
        )
    key = request.headers.get("x-goog-api-key")
    if key is None:
        return error_response(fault_body(403, None, ""), 403)
    if key != api_key:
        return error_response(api_key_invalid(), 400)
    if not isinstance(body, dict):
        return error_response(status_body(400, "Invalid JSON payload received."), 400)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return error_response(
            status_body(400, "* GenerateContentRequest.contents: contents is not specified"), 400
        )
    previous = None
    for content in contents:
        role = content.get("role") if isinstance(content, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if role not in ("user", "model"):
            return error_response(status_body(400, "Please use a valid role: user, model."), 400)
        if role == previous:
            return error_response(
                status_body(
                    400,
                    "Please ensure that multiturn requests alternate between user and model.",
                ),
                400,
            )
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and "text" in p for p in parts
        ):
            return error_response(status_body(400, "* contents.parts: must contain text"), 400)
        previous = role
    system = body.get("systemInstruction")
    if system is not None and not (
        isinstance(system, dict) and isinstance(system.get("parts"), list)
    ):
        return error_response(status_body(400, "Invalid value at 'system_instruction'"), 400)
    return None


def usage_metadata(prompt: int, output: int, thoughts: int = 0) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": output,
        "totalTokenCount": prompt + output + thoughts,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def response(
    model: str,
    parts: list[dict[str, Any]] | None,
    finish: str | None,
    usage: dict[str, Any],
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": RESPONSE_ID,
    }


def blocked(model: str, prompt: int) -> dict[str, Any]:
    return {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"},
            ],
        },
        "usageMetadata": {"promptTokenCount": prompt, "totalTokenCount": prompt},
        "modelVersion": model,
        "responseId": RESPONSE_ID,
    }


def safety_stop(model: str, prompt: int) -> dict[str, Any]:
    body = response(model, None, "SAFETY", {"promptTokenCount": prompt, "totalTokenCount": prompt})
    body["candidates"][0]["safetyRatings"] = [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
    ]
    return body


def reply_parts(text: str, fault: Fault) -> tuple[list[dict[str, Any]], int]:
    """(parts, thinking tokens): kind "thinking" adds a thought summary part, as 2.5 models do."""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    if fault.kind == "thinking":
        return [{"text": "Thinking about the fix.", "thought": True}, *parts], 5
    return parts, 0


def whole_reply(model: str, text: str, fault: Fault) -> dict[str, Any]:
    if fault.kind == "blocked":
        return blocked(model, fault.usage[0])
    if fault.kind == "safety":
        return safety_stop(model, fault.usage[0])
    parts, thoughts = reply_parts(text, fault)
    prompt, output = fault.usage
    return response(model, parts, "STOP", usage_metadata(prompt, output - thoughts, thoughts))


def sse(data: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(data)}\r\n\r\n"  # Google ends SSE lines with CRLF


def stream_events(model: str, text: str, fault: Fault) -> list[str]:
    """Each event a whole GenerateContentResponse; the last has finishReason and final usage."""
    prompt, output = fault.usage
    if fault.kind == "blocked":
        return [sse(blocked(model, prompt))]
    if fault.kind == "safety":
        return [sse(safety_stop(model, prompt))]
    pieces = [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
    parts, thoughts = reply_parts(pieces[0], fault)
    events = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        chunk_parts = parts if i == 0 else [{"text": piece}]
        so_far = output - thoughts if last else (output - thoughts) * (i + 1) // len(pieces)
        usage = usage_metadata(prompt, so_far, thoughts)
        events.append(sse(response(model, chunk_parts, "STOP" if last else None, usage)))
        if fault.error_event and i == 0:
            events.append(sse(status_body(503, MESSAGES[503])))
            return events
    return events


async def play(events: list[str], cut_after: int | None) -> AsyncIterator[str]:
    for i, event in enumerate(events):
        if cut_after is not None and i >= cut_after:
            # raising after the response started makes uvicorn drop the connection mid-body
            raise ConnectionAbortedError("fake gemini: stream cut on purpose")
        yield event


async def generate(request: Request) -> Response:
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
    model, _, method = request.path_params["target"].partition(":")
    if method not in ("generateContent", "streamGenerateContent"):
        return error_response(fault_body(404, None, model), 404)
    refused = check_request(request, body, request.app.state.api_key)
    if refused is not None:
        return refused
    streaming = method == "streamGenerateContent"
    if streaming and request.query_params.get("alt") != "sse":
        return error_response(status_body(400, "This fake streams only with alt=sse."), 400)
    fault = vendor.next_fault(model)
    await pause(fault)
    status = fault.status or KIND_STATUS.get(fault.kind or "")
    if status is not None and not fault.error_event:
        return error_response(fault_body(status, fault.kind, model), status, fault)
    if fault.raw_body is not None:
        if streaming:
            events = [f"data: {fault.raw_body}\r\n\r\n"]
            return StreamingResponse(play(events, None), media_type="text/event-stream")
        return Response(fault.raw_body, media_type="application/json")
    text = "" if fault.empty else (fault.text if fault.text is not None else vendor.default_text)
    if streaming:
        return StreamingResponse(
            play(stream_events(model, text, fault), fault.cut_after),
            media_type="text/event-stream",
        )
    return JSONResponse(whole_reply(model, text, fault))


def create_app(vendor: FakeVendor | None = None, api_key: str = API_KEY) -> Starlette:
    """The fake; swap `app.state.vendor` between tests to reset requests and faults."""
    app = Starlette(routes=[Route("/v1beta/models/{target:path}", generate, methods=["POST"])])
    app.state.vendor = vendor or FakeVendor()
    app.state.api_key = api_key
    return app
