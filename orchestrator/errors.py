"""The error taxonomy. Callers decide by type, never by provider or message text.

AceError                      every error ACE reports; `kind` names it, str() is one sentence
├── ProviderError             a model call failed
│   ├── AuthError             key missing or refused            stop, tell the user
│   ├── RateLimited           429; carries retry_after          retry later / next model
│   ├── QuotaExhausted        billing or daily quota spent      next model, no retry
│   ├── Overloaded            vendor overloaded (529)           retry / next model
│   ├── ServerError           other 5xx                         retry / next model
│   ├── Timeout               connect or read timeout           retry / next model
│   ├── BadResponse           malformed or empty reply          next model
│   ├── ContextTooLong        prompt does not fit               next model
│   ├── ProviderUnavailable   not configured / unreachable      next model
│   └── Unsupported           this provider cannot do this job  next model
├── PatchError                a reply's patch was refused; `refusal` says which check
├── CheckTimeout              masking a prompt or checking a reply ran past its time limit
├── InputError                bad input from the user: missing file, bad JSON
└── NoFix                     every attempt failed; lists why
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ace_lsp.orchestrator.types import Attempt


class AceError(Exception):
    kind: ClassVar[str] = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderError(AceError):
    kind = "provider_error"
    retryable: ClassVar[bool] = False


class AuthError(ProviderError):
    kind = "auth"


class RateLimited(ProviderError):
    kind = "rate_limited"
    retryable = True

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class QuotaExhausted(ProviderError):
    """A spent quota. Account-wide by default (credits, spending limit: every model behind the
    key is refused too); `per_model` when the vendor counts quota per model (Gemini's)."""

    kind = "quota_exhausted"

    def __init__(self, reason: str, *, per_model: bool = False) -> None:
        super().__init__(reason)
        self.per_model = per_model


class Overloaded(ProviderError):
    kind = "overloaded"
    retryable = True


class ServerError(ProviderError):
    kind = "server_error"
    retryable = True


class Timeout(ProviderError):
    kind = "timeout"
    retryable = True


class BadResponse(ProviderError):
    kind = "bad_response"


class ContextTooLong(ProviderError):
    kind = "context_too_long"


class BadRequest(ProviderError):
    kind = "bad_request"


class ProviderUnavailable(ProviderError):
    kind = "unavailable"


class Unsupported(ProviderError):
    kind = "unsupported"


class PatchError(AceError):
    """A model's reply did not yield a safe patch. Subclasses in code/patches.py set `refusal`."""

    kind = "invalid_patch"
    refusal: ClassVar[str] = "invalid_patch"


class CheckTimeout(AceError):
    """A CPU-heavy check (masking secrets, the patch gate) took longer than caps.CHECK_TIMEOUT_S;
    as a reply's check, the reply is refused and the next model is tried."""

    kind = "check_timeout"


class OverBudget(AceError):
    kind = "over_budget"


class InputError(AceError):
    kind = "input_error"


class NoFix(AceError):
    kind = "no_fix"

    def __init__(self, reason: str, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(reason)
        self.attempts = tuple(attempts)
