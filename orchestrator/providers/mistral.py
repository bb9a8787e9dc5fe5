"""Mistral's chat API (`POST {base_url}/chat/completions`) for Mistral, Codestral and Devstral.

The wire is OpenAI's Chat Completions with Mistral's differences, which are all this module holds:

- requests are validated strictly: an unknown field (`stream_options`, `max_completion_tokens`) is a
  422 whose body carries a pydantic `detail` list, so streaming sends no `stream_options`; Mistral
  puts `usage` on the last streamed chunk (the one with `finish_reason`) on its own;
- errors are `{"object": "error", "message", "type", "param", "code"}` at the top level (429
  `rate_limited` code "1300", 429 `service_tier_capacity_exceeded` code "3505"), or the gateway's
  `{"message": "Requests rate limit exceeded"}` and `{"detail": "Unauthorized"}`;
- a spent quota is a 402 "Payment required" (credits at zero, the monthly spending limit reached,
  a failed payment): QuotaExhausted, whatever its body says. The monthly *token* cap of a usage
  tier answers a 429 that cannot be told from a per-minute limit, so it stays RateLimited (and a
  Vibe plan's spent key is reported to answer the bare 401 of a bad key: AuthError);
- a prompt that does not fit is a 400 "Prompt contains N tokens, too large for model with M maximum
  context length"; `finish_reason` may be "error" (a failed generation) or "model_length";
- `content` may be a list of parts (`text`, `thinking`, `reference`); only text parts are the reply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ace_lsp.orchestrator.errors import Overloaded, ProviderError, QuotaExhausted
from ace_lsp.orchestrator.providers.openai import OpenAIProvider

# Mistral's code and type for "this model has no capacity for your tier right now".
CAPACITY = frozenset({"3505", "service_tier_capacity_exceeded"})
# "402 Payment required — a billing condition on your Organization blocks the request" (Mistral's
# error glossary, as digested at developersdigest.tech/errors/api/mistral-api/402-payment-required;
# see tests/fakes/mistral.py). No real body was found: the status is the signal, not the wording.
PAYMENT_REQUIRED = 402


class MistralProvider(OpenAIProvider):
    """Mistral's API: OpenAI's shape, Mistral's validation, errors and streaming usage."""

    kind: ClassVar[str] = "mistral"
    ask_stream_usage: ClassVar[bool] = False  # Mistral refuses the field (422) and needs no asking

    def classify(
        self, status: int, message: str, code: str | None, headers: Mapping[str, str]
    ) -> ProviderError | None:
        """Mistral's 402 (quota spent) and 429 for capacity (overloaded); else OpenAI's mapping."""
        if status == PAYMENT_REQUIRED:
            said = f" ({message.rstrip('.')})" if message else ""
            return QuotaExhausted(
                f"{self.name} refused the request for billing (HTTP 402): the organization's "
                f"credits or monthly spending limit are used up{said}."
            )
        if status == 429 and (code in CAPACITY or "capacity exceeded" in message.lower()):
            return Overloaded(
                f"{self.name} has no capacity for this model right now (HTTP 429); "
                "try again shortly or use another model."
            )
        return super().classify(status, message, code, headers)


PROVIDER = MistralProvider  # the class make_provider() builds for kind "mistral"
