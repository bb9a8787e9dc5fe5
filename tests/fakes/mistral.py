"""A fake of Mistral's chat API (`POST /v1/chat/completions`), served on 127.0.0.1.

It answers as api.mistral.ai does where Mistral differs from OpenAI: 32-hex ids, the model name
echoed, `usage` without details; strict validation (an unknown field such as `stream_options` is a
422 with a pydantic `detail` list); streams whose last chunk (the one with `finish_reason`) carries
`usage`, then `data: [DONE]`; error bodies `{"object": "error", "message", "type", "param",
"code"}` at the top level, the gateway's `{"message": "Unauthorized", "request_id"}` and
`{"message": "Requests rate limit exceeded"}`, and Envoy's plain-text 503.

Faults: `status` (401, 402, 422, 429, 500, 503, …) and `kind`s "auth", "detail" (the newer
`{"detail": "Unauthorized"}` 401, or a bare FastAPI 422), "rate_limit", "gateway" (the gateway's
429), "capacity" (429 `service_tier_capacity_exceeded`), "payment_required" (402: the
organization's credits or monthly spending limit are used up), "context_length"; `error_event`
ends a stream with `finish_reason: "error"`; the stream kinds and the other fields as in
`openai.py`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from tests.fakes.harness import FakeVendor, Fault
from tests.fakes.openai import KEY, ChatCompletionsFake, VendorError, pieces

# The request fields Mistral's chat completions accept; any other is refused with a 422.
FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
    }
)


def mistral_error(
    status: int, message: Any, type_: str, code: str | None = None, **headers: str
) -> VendorError:
    body = {"object": "error", "message": message, "type": type_, "param": None, "code": code}
    return VendorError(status, body, headers)


@dataclass
class MistralFake(ChatCompletionsFake):
    error_kinds = frozenset(
        {
            "auth",
            "detail",
            "rate_limit",
            "gateway",
            "capacity",
            "payment_required",
            "context_length",
        }
    )

    def headers(self) -> dict[str, str]:
        return {
            "mistral-correlation-id": secrets.token_hex(16),
            "x-kong-request-id": secrets.token_hex(12),
            "x-ratelimit-limit-req-minute": "720",
            "x-ratelimit-remaining-req-minute": "719",
            "x-ratelimit-limit-tokens-minute": "5000000",
            "x-ratelimit-remaining-tokens-minute": "4999911",
            "x-ratelimit-tokens-query-cost": "89",
        }

    def answered_model(self, model: str) -> str:
        return model

    def usage(self, fault: Fault) -> dict[str, Any]:
        prompt, completion = fault.usage
        return {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens": completion,
        }

    def completion(self, model: str, text: str, fault: Fault) -> dict[str, Any]:
        message = {"role": "assistant", "tool_calls": None, "content": text}
        return {
            "id": secrets.token_hex(16),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": self.usage(fault),
        }

    def chunks(
        self, body: dict[str, Any], model: str, text: str, fault: Fault
    ) -> list[dict[str, Any]]:
        cid, created = secrets.token_hex(16), int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        out = [chunk({"role": "assistant", "content": ""}, None)]
        out += [chunk({"content": piece}, None) for piece in (pieces(text) if text else [])]
        if fault.error_event:
            return out[:2]
        if fault.kind == "no_done":
            return out
        last = chunk({"content": ""}, "stop")
        if fault.kind != "no_usage":
            last["usage"] = self.usage(fault)
        out.append(last)
        return out

    def stream_error(self, fault: Fault, model: str) -> Any:
        """Mistral ends a failed generation with a chunk whose `finish_reason` is "error"."""
        return {
            "id": secrets.token_hex(16),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }

    def validate(self, body: dict[str, Any]) -> VendorError | None:
        detail = [
            {
                "type": "extra_forbidden",
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "input": value,
            }
            for name, value in body.items()
            if name not in FIELDS
        ]
        for name in ("model", "messages"):
            if name not in body:
                detail.append(
                    {
                        "type": "missing",
                        "loc": ["body", name],
                        "msg": "Field required",
                        "input": body,
                    }
                )
        if not detail:
            return None
        return mistral_error(422, {"detail": detail}, "invalid_request_error")

    def auth_error(self, authorization: str | None) -> VendorError:
        return VendorError(401, {"message": "Unauthorized", "request_id": secrets.token_hex(16)})

    def invalid_json(self) -> VendorError:
        detail = [{"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"}]
        return mistral_error(422, {"detail": detail}, "invalid_request_error")

    def echo_key(self, authorization: str) -> VendorError:
        return mistral_error(
            400, f"Malformed header: Authorization: {authorization}", "bad_request"
        )

    def error(self, fault: Fault, model: str) -> VendorError:
        kind, status = fault.kind, fault.status
        retry = self.retry_headers(fault)
        if kind == "detail" and status in (None, 401):
            return VendorError(401, {"detail": "Unauthorized"})
        if kind == "detail":
            missing = {"type": "missing", "loc": ["body", "messages"], "msg": "Field required"}
            return VendorError(status or 422, {"detail": [missing]})
        if kind == "auth" or (status == 401 and kind is None):
            return VendorError(status or 401, self.auth_error(None).body)
        if kind == "gateway":
            return VendorError(status or 429, {"message": "Requests rate limit exceeded"}, retry)
        if kind == "capacity":
            return mistral_error(
                status or 429,
                "Service tier capacity exceeded for this model.",
                "service_tier_capacity_exceeded",
                "3505",
                **retry,
            )
        if kind == "payment_required" or (status == 402 and kind is None):
            # Where this comes from (no captured 402 body was found, so only the status and the
            # envelope are evidence; the wording, `type` and `code` below are ours):
            # - the 402 entry of Mistral's error glossary as digested, citing the official docs,
            #   at developersdigest.tech/errors/api/mistral-api/402-payment-required: "402
            #   Payment required — a billing condition on your Organization blocks the request"
            #   (prepaid credits at zero; the Organization's or Workspace's monthly spending
            #   limit reached; included monthly usage spent without pay-as-you-go; a failed
            #   invoice payment), fix: "follow the link in the error message" to Admin Panel >
            #   Subscriptions > Billing. (The copy of docs.mistral.ai/resources/error-glossary
            #   we could read lists 400, 401, 403 … and no 402: the entry may be newer.)
            # - docs.mistral.ai/admin/billing-usage/billing: when the monthly spending limit is
            #   reached, "API access can be suspended until the next month begins or an admin
            #   increases the limit";
            # - the glossary's envelope for every error: top-level `{"object": "error",
            #   "message", "type", "param", "code"}`.
            return mistral_error(
                status or 402,
                "You have reached your monthly spending limit. To continue using the API, "
                "increase it at https://admin.mistral.ai/organization/billing",
                "invalid_request_error",
                **retry,
            )
        if kind == "rate_limit" or (status == 429 and kind is None):
            return mistral_error(
                status or 429, "Rate limit exceeded", "rate_limited", "1300", **retry
            )
        if kind == "context_length":
            return mistral_error(
                status or 400,
                "Prompt contains 40213 tokens, too large for model with 32768 maximum context "
                "length",
                "invalid_request_error",
            )
        if status == 422:
            return self.validate(
                {"model": model, "messages": [], "unexpected": True}
            ) or VendorError(422, {})
        if status == 503:
            envoy = (
                "upstream connect error or disconnect/reset before headers. reset reason: overflow"
            )
            return VendorError(503, envoy, retry)
        if status is not None and status >= 500:
            return mistral_error(status, "Internal server error", "internal_server_error", **retry)
        return mistral_error(status or 400, "Invalid request", "invalid_request_error", **retry)


def mistral_app(vendor: FakeVendor, *, key: str | None = KEY) -> Starlette:
    """The fake's Starlette app; serve it with `harness.serve()` (base URL + "/v1")."""
    return MistralFake(vendor, key=key).app()
