"""Reading a review a model wrote as prose instead of JSON: the liberal fallback of `review.py`.

A line that starts with a line reference is a finding — `Line 8:`, `line 8 —`, `Lines 8-10:`,
`L8:`, `L8-10` (or an en or em dash) — optionally as a list item (`-`, `*`, `+`, `1.`, `1)`), a
heading, in bold or in backticks (`**Line 8**:`, `` `L8`: ``). The rest of the line, and the
lines that continue it, is the message. Line numbers are kept as written (1-based); `review.py`
checks them against the reviewed lines.

Severity: a leading label (`Error:`, `(nit)`, `[warning]`) decides; else the words of the message
outside code spans: error, bug, crash, undefined, security, `…Error` → error; nit, style, minor →
hint; warning, should, might, consider → warning; anything else is info (a reply without JSON
states no severity, so none is claimed).

Model text is hostile: this is plain string code over one pass of the lines (the one regex is a
single character class), and the caller bounds how many findings it takes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ace_lsp.orchestrator import caps

__all__ = ["TextFinding", "findings", "says_nothing_to_report"]

_DIGITS = "0123456789"
_MAX_DIGITS = 7  # more is no line of any file ACE reviews (and int() of a long run is slow)
_DASHES = "-\u2013\u2014"  # hyphen-minus, en dash, em dash
_SEPARATORS = ":" + _DASHES
_EMPHASIS = "*_`"
_LEADING_JUNK = " \t:,.;" + _DASHES  # between a reference or label and the message
_BULLETS = "-*+\u2022"
_WORD = re.compile(r"[a-z0-9]+")
# The continuation lines joined onto a finding stop here; the message is clipped to the cap later.
_GATHER_CHARS = 4 * caps.MAX_FINDING_CHARS

# A label that opens a message says the severity outright.
_LABELS = {
    **dict.fromkeys(("error", "bug", "critical", "crash", "security", "severe", "high"), "error"),
    **dict.fromkeys(("warning", "warn", "major", "medium"), "warning"),
    **dict.fromkeys(("info", "note", "suggestion", "improvement", "question", "low"), "info"),
    **dict.fromkeys(("hint", "nit", "nitpick", "style", "minor", "cosmetic"), "hint"),
}
_ERROR_STEMS = ("error", "bug", "crash", "undefined", "security", "insecure", "vulnerab")
_HINT_WORDS = frozenset(("nit", "nits", "nitpick", "style", "stylistic", "minor", "cosmetic"))
_WARNING_WORDS = frozenset(("warning", "warn", "warns", "should", "might", "consider"))

# "Nothing to report": a negation shortly before one of these, or one of the phrases.
_ISSUE_WORDS = frozenset(
    {
        *("issue", "issues", "problem", "problems", "bug", "bugs", "finding", "findings"),
        *("concern", "concerns", "defect", "defects"),
    }
)  # not "error": "no error handling" is a finding
_NEGATIONS = frozenset(("no", "not", "t", "zero", "nothing"))  # "t": don't, can't, didn't
_NOTHING_PHRASES = frozenset(
    {
        *(("looks", "good"), ("looks", "fine"), ("looks", "correct"), ("look", "good")),
        *(("nothing", "wrong"), ("nothing", "to")),  # "nothing to report / flag / fix"
    }
)
_CONTRAST = frozenset(("but", "however", "except", "although", "though", "apart", "besides"))
_NOTHING_MAX_CHARS = 600  # a longer answer is a review, not a shrug


@dataclass(frozen=True)
class TextFinding:
    """A finding as the reply wrote it: 1-based lines, not yet checked against the file."""

    line: int
    end_line: int
    severity: str  # "error" | "warning" | "info" | "hint"
    message: str


def _number(text: str, i: int) -> tuple[int, int] | None:
    """The line number (≥ 1) at `text[i:]` and the index after it, or None."""
    j = i
    while j < len(text) and j - i < _MAX_DIGITS and text[j] in _DIGITS:
        j += 1
    if j == i or (j < len(text) and text[j].isalnum()):  # "L10n", "8th", eight digits
        return None
    n = int(text[i:j])
    return (n, j) if n >= 1 else None


def _skip(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _body(line: str) -> tuple[str, bool, bool]:
    """`line` (stripped) without its list marker or heading marks; is it a list item, a heading."""
    if line[:1] in _BULLETS and line[1:2] in (" ", "\t"):
        return line[2:], True, False
    digits = _skip(line, 0, _DIGITS)
    if (
        0 < digits <= 3
        and line[digits : digits + 1] in (".", ")")
        and line[digits + 1 : digits + 2] in (" ", "\t")
    ):
        return line[digits + 2 :], True, False
    if line[:1] == "#":
        return line.lstrip("#"), False, True
    return line, False, False


def _reference(body: str, item: bool) -> tuple[int, int, str] | None:
    """(first line, last line, the rest) when `body` opens with a line reference."""
    s = body.lstrip(" \t" + _EMPHASIS)
    head = s[:5].lower()
    if head.startswith("lines"):
        i = _skip(s, 5, " \t")
    elif head.startswith("line"):
        i = _skip(s, 4, " \t")
    elif head.startswith("l"):
        i = 1  # "L8": the number follows at once
    else:
        return None
    first = _number(s, i)
    if first is None:
        return None
    start, i = first
    end = start
    j = _skip(s, i, " \t")
    if j < len(s) and s[j] in _DASHES:  # a range, or the dash before the message
        k = _skip(s, j + 1, " \t")
        if s[k : k + 1] in ("l", "L"):
            k += 1
        second = _number(s, k)
        if second is not None:
            end, i = second
    j = _skip(s, i, " \t" + _EMPHASIS)
    rest = s[j:]
    if rest[:1] and rest[0] in _SEPARATORS:
        return start, end, rest[1:]
    if rest[:1] in ("(", "[") or (item and j > i and rest):
        return start, end, rest  # "- Line 8 (error): …", "- Line 8 uses …"
    return None


def _prose(text: str) -> list[str]:
    """The parts of `text` outside code spans."""
    return text.split("`")[::2]


def _clean(text: str) -> str:
    """`text` on one line, without bold markers outside code spans or italics around it all."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("**", "")
    text = " ".join("`".join(parts).split()).lstrip(_LEADING_JUNK)
    if len(text) > 2 and text[0] in "*_" and text[-1] == text[0]:
        text = text[1:-1].strip()
    return text


def _label(message: str) -> tuple[str | None, str]:
    """The severity a leading label states (`Bug:`, `(nit)`, `[warning]`), and the rest."""
    head = message[:24]
    if head[:1] in ("(", "["):
        close = head.find(")" if head[0] == "(" else "]")
        word = head[1:close].strip(" " + _EMPHASIS).lower() if close > 0 else ""
        if word in _LABELS:
            return _LABELS[word], message[close + 1 :].lstrip(_LEADING_JUNK + "*")
    colon = head.find(":")
    if colon > 0:
        word = head[:colon].strip(" " + _EMPHASIS).lower()
        if word in _LABELS:
            return _LABELS[word], message[colon + 1 :].lstrip(_LEADING_JUNK + "*")
    return None, message


def _severity(message: str) -> str:
    words = _WORD.findall(" ".join(_prose(message)).lower())
    if any(w.startswith(_ERROR_STEMS) or w.endswith("error") for w in words):
        return "error"
    if any(w in _HINT_WORDS for w in words):
        return "hint"
    if any(w in _WARNING_WORDS for w in words):
        return "warning"
    return "info"


def _finding(start: int, end: int, parts: list[str]) -> TextFinding | None:
    severity, message = _label(_clean(" ".join(parts)))
    message = _clean(message)
    if not message:
        return None
    return TextFinding(
        start, end, severity or _severity(message), caps.clip(message, caps.MAX_FINDING_CHARS)
    )


def findings(reply: str) -> Iterator[TextFinding]:
    """The findings of a reply written as text, in order (lines as written, unchecked)."""
    pending: tuple[int, int, list[str]] | None = None
    gathered = 0
    fenced = False
    for raw in reply.splitlines():
        line = raw.strip()
        fence = line.startswith(("```", "~~~"))
        if fenced and not fence:
            continue  # code in a fence is neither a finding nor part of one
        body, item, heading = _body(line)
        ref = _reference(body, item) if line and not fence else None
        if pending is not None and ref is None and line and not (fence or item or heading):
            if gathered < _GATHER_CHARS:  # the finding's text goes on
                pending[2].append(line)
                gathered += len(line)
            continue
        if pending is not None:
            done = _finding(*pending)
            pending = None
            if done is not None:
                yield done
        if fence:
            fenced = not fenced
        elif ref is not None:
            pending = (ref[0], ref[1], [ref[2]])
            gathered = len(ref[2])
    if pending is not None:
        done = _finding(*pending)
        if done is not None:
            yield done


def says_nothing_to_report(reply: str) -> bool:
    """Whether a short reply with no findings says the code is fine ("No issues found.", "LGTM").

    Not when it hedges (but, however, except, …), has list items, names a line, or carries the
    JSON schema's key (a JSON review that failed to validate is no all-clear).
    """
    prose: list[str] = []
    fenced = False
    for raw in reply.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line:
            if _body(line)[1]:
                return False
            prose.append(line)
    text = " ".join(prose)
    if len(text) > _NOTHING_MAX_CHARS or '"findings"' in text:
        return False
    words = _WORD.findall(text.lower())
    if any(w in _CONTRAST for w in words):
        return False
    for i, w in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else ""
        if (w in ("line", "lines") and after.isdigit()) or (w[:1] == "l" and w[1:].isdigit()):
            return False  # "line 8 needs a guard" is a finding this parser could not read
    if "lgtm" in words or any(pair in _NOTHING_PHRASES for pair in itertools.pairwise(words)):
        return True
    return any(
        w in _ISSUE_WORDS and not _NEGATIONS.isdisjoint(words[max(i - 3, 0) : i])
        for i, w in enumerate(words)
    )
