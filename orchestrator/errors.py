"""The error taxonomy: every exception ACE raises, drawn and defined here.

Callers decide by type, never by provider or message text. `kind` names an error in attempts, the
ledger and `ace fix --json`; str() is one sentence for the user. `verdict` says how an attempt
that ended in the error counts for its model's circuit breaker (see `health.py`): the model
*answered* (resets the failure count, closes a half-open circuit), *failed* (counts toward
opening it), or the error says nothing about the model (*neutral*).

AceError                        kind             verdict    what the caller does
├── ProviderError               a model call failed
│   ├── AuthError               auth             neutral    key missing or refused: stop, say so
│   ├── RateLimited             rate_limited     neutral    429, carries retry_after: next / later
│   ├── QuotaExhausted          quota_exhausted  neutral    billing or daily quota spent: next model
│   ├── Overloaded              overloaded       failed     529: next model / retry
│   ├── ServerError             server_error     failed     other 5xx: next model / retry
│   ├── Timeout                 timeout          failed     connect or read timeout: next / retry
│   ├── BadResponse             bad_response     failed     malformed or empty reply: next model
│   ├── ContextTooLong          context_too_long neutral    the prompt does not fit: next model
│   ├── BadRequest              bad_request      neutral    the vendor refused the request: next
│   ├── ProviderUnavailable     unavailable      failed     not configured / unreachable: next
│   └── Unsupported             unsupported      neutral    this provider cannot do this job: next
├── PatchError                  invalid_patch    answered   a reply's patch was refused; `refusal`:
│   ├── NoDiff                                              no_diff
│   ├── MalformedDiff                                       malformed_diff
│   ├── WrongFile                                           wrong_file
│   ├── MultipleFiles                                       multiple_files
│   ├── OutOfRange                                          out_of_range
│   ├── ContextMismatch                                     context_mismatch
│   ├── NoChange                                            no_change
│   ├── TooLarge                                            too_large
│   ├── WritesMasked                                        writes_masked_secret
│   ├── SyntaxBroken                                        syntax_error
│   └── VerificationFailed                                  verification_failed
├── InvalidReview               invalid_review   answered   a review reply held no readable findings
├── CheckTimeout                check_timeout    neutral    masking or checking ran past its limit
├── OverBudget                  over_budget      neutral    an estimate breaks a cap: skip the model
├── LedgerError                 ledger_error     neutral    the usage ledger failed; fixes go on
│   └── Unreachable             ledger_unreachable          the team database is away: go offline
├── InputError                  input_error      neutral    bad input from the user: say so
└── NoFix                       no_fix           neutral    every attempt failed; lists why

An attempt's outcome is "ok" (answered), "cancelled" (neutral) or an error's kind; `verdict()`
maps any outcome, and a kind this tree does not know is neutral.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from ace_lsp.orchestrator.types import CANCELLED, OK

if TYPE_CHECKING:
    from ace_lsp.orchestrator.types import Attempt


class Verdict(Enum):
    """What an attempt's outcome says about the model that was called (for its circuit)."""

    ANSWERED = "answered"  # it replied, even if ACE refused the reply
    FAILED = "failed"  # it did not answer: down, overloaded, too slow, garbled
    NEUTRAL = "neutral"  # a limit, a key, a cancel or ACE itself: nothing about the model


class AceError(Exception):
    """The root of ACE's errors: `reason` is the one sentence shown to the user."""

    kind: ClassVar[str] = "error"
    verdict: ClassVar[Verdict] = Verdict.NEUTRAL

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- a model call failed -----------------------------------------------------------------------


class ProviderError(AceError):
    """A call to a model failed; `retryable` errors may be retried on the same model."""

    kind = "provider_error"
    retryable: ClassVar[bool] = False
    retry_after: float | None = None  # seconds the vendor asked to wait (RateLimited's)


class AuthError(ProviderError):
    """The provider's key is missing or was refused."""

    kind = "auth"


class RateLimited(ProviderError):
    """The vendor's rate limit refused the call (HTTP 429); `retry_after`: the wait it asked for."""

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
    """The vendor is overloaded (HTTP 529 or its equivalent)."""

    kind = "overloaded"
    verdict = Verdict.FAILED
    retryable = True


class ServerError(ProviderError):
    """The vendor failed with a 5xx other than overloaded, or broke off a reply mid-stream."""

    kind = "server_error"
    verdict = Verdict.FAILED
    retryable = True


class Timeout(ProviderError):
    """The connection or the reply took longer than its timeout."""

    kind = "timeout"
    verdict = Verdict.FAILED
    retryable = True


class BadResponse(ProviderError):
    """The vendor's answer is not a usable reply: malformed, empty, declined or too large."""

    kind = "bad_response"
    verdict = Verdict.FAILED


class ContextTooLong(ProviderError):
    """The vendor says the prompt does not fit the model's context window."""

    kind = "context_too_long"


class BadRequest(ProviderError):
    """The vendor refused the request as invalid (a 4xx that is not auth, quota or rate limit)."""

    kind = "bad_request"


class ProviderUnavailable(ProviderError):
    """The provider is not configured or cannot be reached."""

    kind = "unavailable"
    verdict = Verdict.FAILED


class Unsupported(ProviderError):
    """The provider cannot do this kind of job (the `local` provider beyond ruff's fixes)."""

    kind = "unsupported"


# -- a model answered, ACE refused the answer --------------------------------------------------


class PatchError(AceError):
    """A model's reply did not yield a safe patch; `refusal` says which check refused it."""

    kind = "invalid_patch"
    verdict = Verdict.ANSWERED
    refusal: ClassVar[str] = "invalid_patch"


class NoDiff(PatchError):
    """The reply holds no unified diff, or a diff without hunks."""

    refusal = "no_diff"


class MalformedDiff(PatchError):
    """The diff cannot be parsed, or deletes or creates the file instead of editing it."""

    refusal = "malformed_diff"


class WrongFile(PatchError):
    """The diff edits a file other than the one being fixed."""

    refusal = "wrong_file"


class MultipleFiles(PatchError):
    """The diff edits more than one file."""

    refusal = "multiple_files"


class OutOfRange(PatchError):
    """The diff changes a line outside the allowed ranges."""

    refusal = "out_of_range"


class ContextMismatch(PatchError):
    """A hunk's context or removed lines do not match the file, even with small offset drift."""

    refusal = "context_mismatch"


class NoChange(PatchError):
    """The diff, applied, leaves the file unchanged."""

    refusal = "no_change"


class TooLarge(PatchError):
    """The diff is larger than caps allow."""

    refusal = "too_large"


class WritesMasked(PatchError):
    """The diff writes a masked secret's placeholder into the file: the secret would be lost."""

    refusal = "writes_masked_secret"


class SyntaxBroken(PatchError):
    """The patched file parses with ERROR or MISSING nodes the original did not have."""

    refusal = "syntax_error"


class VerificationFailed(PatchError):
    """Re-checked by a checker (ruff for Python, code/verify.py), the patched file still has the
    target diagnostic or a new error; the reason is the checker's verdict."""

    refusal = "verification_failed"


class InvalidReview(AceError):
    """A review reply held no readable findings."""

    kind = "invalid_review"
    verdict = Verdict.ANSWERED


class CheckTimeout(AceError):
    """A CPU-heavy check (masking secrets, the patch gate) took longer than caps.CHECK_TIMEOUT_S;
    as a reply's check, the reply is refused and the next model is tried."""

    kind = "check_timeout"


# -- ACE's own books and the user's input ------------------------------------------------------


class OverBudget(AceError):
    """An estimate or a reservation would break a budget cap; the model is skipped."""

    kind = "over_budget"


class LedgerError(AceError):
    """The usage ledger (SQLite, or the team's database) failed; fixes go on without it."""

    kind = "ledger_error"


class Unreachable(LedgerError):
    """The database did not answer (down, refused, timed out): a reason to go offline."""

    kind = "ledger_unreachable"


class InputError(AceError):
    """Bad input from the user (a config file, a model name, an argument); the message says what."""

    kind = "input_error"


class NoFix(AceError):
    """No model produced an accepted reply; `attempts` says what each try ended in."""

    kind = "no_fix"

    def __init__(self, reason: str, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(reason)
        self.attempts = tuple(attempts)


def _tree(cls: type[AceError]) -> Iterator[type[AceError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _tree(sub)


# every class above, as this module defines them (a kind is one class's, or its subclasses')
_VERDICTS: dict[str, Verdict] = {
    OK: Verdict.ANSWERED,
    CANCELLED: Verdict.NEUTRAL,
    **{cls.kind: cls.verdict for cls in _tree(AceError)},
}


def verdict(outcome: str) -> Verdict:
    """How an attempt that ended in `outcome` ("ok", "cancelled" or an error's kind) counts for
    its model's circuit; a kind this module does not define is neutral."""
    return _VERDICTS.get(outcome, Verdict.NEUTRAL)
