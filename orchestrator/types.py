"""Values shared across the orchestrator: tasks, tiers, positions, requests, replies and attempts.

Positions follow LSP: 0-based lines, `character` in UTF-16 code units. Everything here is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

# An attempt's outcome is one of these or an error's `kind` (errors.py).
OK = "ok"
CANCELLED = "cancelled"  # the caller stopped waiting (a hedge won, the editor cancelled)
CACHED = "cached"  # a ledger row's outcome for a reply served from the cache (its Attempt: OK)


class TaskType(str, Enum):
    """What a request asks a model to do; routing picks the models for each task."""

    AUTO_FIX = "AUTO_FIX"
    CODE_REVIEW = "CODE_REVIEW"
    CHAT = "CHAT"
    PLANNING = "PLANNING"
    MULTIMODAL = "MULTIMODAL"
    CODE_GEN = "CODE_GEN"
    REFACTOR = "REFACTOR"
    COMPLEX_ANALYSIS = "COMPLEX_ANALYSIS"
    LONG_CONTEXT = "LONG_CONTEXT"


class Tier(str, Enum):
    """The user's plan: it decides which models routing offers and the cap on one request's cost."""

    FREE = "free"
    PRO = "pro"
    ULTIMATE = "ultimate"


class RiskLevel(str, Enum):
    """How far a fix may reach: the diagnostic's lines ± 2, its enclosing scope, or the file."""

    CONSERVATIVE = "conservative"
    BALANCED = "balanced"
    AGGRESSIVE = "aggressive"


@dataclass(frozen=True, order=True)
class Position:
    """A point in a document: a 0-based line and a character offset in UTF-16 code units."""

    line: int
    character: int  # UTF-16 code units, as LSP counts them


@dataclass(frozen=True)
class TextRange:
    """A span of a document from `start` up to, not including, `end`, as LSP ranges are."""

    start: Position
    end: Position

    @classmethod
    def lines(cls, start: int, end: int | None = None) -> TextRange:
        """From the start of line `start` to the start of line `end` (default: the same line)."""
        return cls(Position(start, 0), Position(start if end is None else end, 0))


@dataclass(frozen=True, order=True)
class LineRange:
    """0-based, inclusive line interval."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"bad line range {self.start}..{self.end}")

    def __contains__(self, line: object) -> bool:
        return isinstance(line, int) and self.start <= line <= self.end

    def __str__(self) -> str:
        return f"{self.start + 1}-{self.end + 1}"


@dataclass(frozen=True)
class Related:
    """A place a diagnostic points at besides its own range ("first defined here")."""

    message: str
    lines: LineRange  # 0-based, in `file`
    file: str | None = None  # another file's name; None: the diagnostic's own file


@dataclass(frozen=True)
class CodeIssue:
    """A diagnostic from any tool, without LSP types: what the editor or a linter reported.

    Built from untrusted input by `code.diagnostics`, which checks and caps every field.
    """

    range: TextRange
    message: str
    code: str | None = None
    source: str | None = None
    severity: int | None = None  # LSP DiagnosticSeverity: 1 error … 4 hint
    href: str | None = None  # codeDescription.href: the rule's page, an http(s) URL
    related: tuple[Related, ...] = ()  # relatedInformation
    data: str | None = None  # the diagnostic's `data`, as compact JSON


@dataclass(frozen=True)
class TextEdit:
    """One change to a document: the text in `range` replaced by `new_text`."""

    range: TextRange
    new_text: str


@dataclass(frozen=True)
class Message:
    """One turn of a chat prompt: who speaks (`role`) and what is said."""

    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class FixJob:
    """The structured form of an AUTO_FIX request, for providers that fix without a model."""

    path: str
    language: str | None
    text: str
    issues: tuple[CodeIssue, ...]
    allowed: tuple[LineRange, ...]


@dataclass(frozen=True)
class LLMRequest:
    """What a caller asks the orchestrator for: a task and its prompt, for a user on a tier."""

    task: TaskType
    messages: tuple[Message, ...]
    tier: Tier = Tier.FREE
    user: str = "local"
    max_output_tokens: int = 2048
    temperature: float = 0.0
    fix: FixJob | None = None


@dataclass(frozen=True)
class Usage:
    """The tokens one call used: the prompt's (input) and the reply's (output)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ProviderReply:
    """What a provider's `complete` returns: the text, its usage and the model that answered."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""  # the model the vendor says answered


@dataclass(frozen=True)
class Attempt:
    """One try of one model: what the ledger records and `ace fix --json` prints."""

    model: str
    provider: str
    outcome: str  # OK, CANCELLED or an error kind: "server_error", "invalid_patch", …
    latency_ms: float
    cost_usd: float = 0.0
    reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    chain_position: int = 0  # 0-based position of the model in the routed chain
    retry: int = 1  # 1 for the first try of this model, 2 for its first retry, …
    cached: bool = False  # the reply came from the response cache: no call, no cost


@dataclass(frozen=True)
class LLMResult:
    """What `Orchestrator.call` returns: the accepted reply, who gave it, every attempt and skip."""

    text: str
    model: str
    provider: str
    cost_usd: float  # every attempt's cost, the refused and the cancelled included
    attempts: Sequence[Attempt]
    request_id: str = ""
    skipped: Sequence[tuple[str, str]] = ()  # (model, reason) the router or budget passed over
