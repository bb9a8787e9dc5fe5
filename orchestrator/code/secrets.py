"""Secret-shaped text masked out of code before it is sent to a provider.

`mask(text)` finds private key blocks (PEM), AWS access key ids, OpenAI, Anthropic, Google, GitHub
and Slack keys, and `password = "…"`-style assignments with a long enough value, and replaces the
secret's characters — only those — with a placeholder of the same length, such as
`sk-«masked:openai-key»•••••`. Everything else stays verbatim: the text keeps its lines (line
breaks are never replaced), every line keeps its length in characters (and in UTF-16 units: the
secrets matched are ASCII and the placeholder's characters are in the BMP), so line numbers and
columns in a prompt still match the file.

A model never sees a secret, so it never needs to write one: a reply whose diff quotes a masked
line (as context or as a removed line) carries the placeholder, which does not match the original
text, and the patch gate refuses it (context mismatch). That is the safe outcome: the fix falls
back to another model or fails with a clear reason; a placeholder is never written into a file.

`Finding.line` is 0-based, like every line number inside ACE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MASK = "•"


@dataclass(frozen=True)
class Finding:
    kind: str  # "private-key", "aws-key", "openai-key", "anthropic-key", "google-key", …
    line: int  # 0-based line where the secret starts


@dataclass(frozen=True)
class Masked:
    text: str
    found: tuple[Finding, ...]


def placeholder(kind: str, n: int) -> str:
    """Exactly `n` characters: `«masked:<kind>»` padded with `•`, or only `•` when too short."""
    label = f"«masked:{kind}»"
    return label + MASK * (n - len(label)) if len(label) <= n else MASK * n


_END = r"(?![A-Za-z0-9_-])"

# (kind, pattern); group "s" is the secret part to mask (what stays outside it is not secret:
# a vendor's prefix such as `sk-` or `AKIA`). Earlier patterns win where matches overlap.
_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("anthropic-key", re.compile(r"\bsk-ant-(?P<s>[A-Za-z0-9_-]{20,})")),
    (
        "openai-key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?(?P<s>(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{20,})"),
    ),
    ("aws-key", re.compile(r"\b(?:AKIA|ASIA)(?P<s>[A-Z0-9]{16})\b")),
    ("google-key", re.compile(r"\bAIza(?P<s>[0-9A-Za-z_-]{35})" + _END)),
    ("github-token", re.compile(r"\bgh[pousr]_(?P<s>[A-Za-z0-9]{30,})\b")),
    ("github-token", re.compile(r"\bgithub_pat_(?P<s>[A-Za-z0-9_]{22,})\b")),
    ("slack-token", re.compile(r"\bxox[baprs]-(?P<s>[A-Za-z0-9-]{10,})")),
)

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_BASE64 = re.compile(r"(?<!\\)[A-Za-z0-9+/=]+")
# a line that is only (quoted, concatenated) base64: how a key block without its END line goes on
_BASE64_LINE = re.compile(r"""[\s"'`+,;()\\n]*[A-Za-z0-9+/=]{16,}[\s"'`+,;()\\n]*""")

_NAME = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"secret[_-]?key|private[_-]?key|client[_-]?secret|credentials?)"
)
# `password = "…"`, `"api_key": '…'`, `token: str = "…"`, `connect(secret="…")`, `SECRET=…`
_ASSIGN = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:[A-Za-z0-9_-]*[_-])?" + _NAME + r"""["']?"""
    r"(?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\], |]*?)?[ \t]*(?::=|=>|=|:)[ \t]*"
    r"""(?:[rbuRBU]{0,2}(?P<q>["'`])(?P<s>[!-~]{8,}?)(?P=q)"""
    r"""|(?P<u>[A-Za-z0-9_+/=.~-]{8,})[ \t]*(?:#.*)?$)""",
    re.MULTILINE,
)
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def _generic_value(m: re.Match[str]) -> tuple[int, int] | None:
    """The span of an assignment's value when it looks like a secret, not code or prose."""
    if m.group("s") is not None:
        value, group = m.group("s"), "s"
        if any(c in value for c in "\"'`"):
            return None  # the lazy match ran over a closing quote: not one literal
    else:
        value, group = m.group("u"), "u"
        # unquoted (YAML, .env): a real token mixes letters and digits; a dotted name is code
        if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
            return None
        if _DOTTED.fullmatch(value):
            return None
    if value[0] in "$<{%" or len(set(value)) < 3:  # ${VAR}, <your-key>, {…}, "********"
        return None
    return m.span(group)


def _pem_spans(text: str) -> list[tuple[int, int]]:
    """The bodies of private key blocks: between BEGIN and END, or the base64 lines after BEGIN."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        end = _PEM_END.search(text, begin.end())
        if end is not None:
            spans.append((begin.end(), end.start()))
            pos = end.end()
            continue
        # no END line (a truncated block): the base64-only lines that follow
        stop = text.find("\n", begin.end())
        body_end = begin.end() if stop == -1 else stop
        while stop != -1:
            nxt = text.find("\n", stop + 1)
            line = text[stop + 1 : len(text) if nxt == -1 else nxt]
            if not _BASE64_LINE.fullmatch(line):
                break
            body_end = len(text) if nxt == -1 else nxt
            stop = nxt
        # also what follows BEGIN on its own line (a key inlined with `\n` escapes)
        spans.append((begin.end(), body_end))
        pos = begin.end()
    return spans


def mask(text: str) -> Masked:
    """`text` with every secret-shaped substring replaced by a same-length placeholder."""
    taken: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in taken)

    for start, end in _pem_spans(text):
        taken.append((start, end, "private-key"))
    for kind, pattern in _TOKENS:
        for m in pattern.finditer(text):
            s, e = m.span("s")
            if free(*m.span()):
                taken.append((s, e, kind))
    for m in _ASSIGN.finditer(text):
        span = _generic_value(m)
        if span is not None and free(*span):
            taken.append((*span, "secret"))
    if not taken:
        return Masked(text, ())
    taken.sort()
    out: list[str] = []
    found: list[Finding] = []
    pos = 0
    for start, end, kind in taken:
        out.append(text[pos:start])
        found.append(Finding(kind, text.count("\n", 0, start)))
        if kind == "private-key":
            # every base64 run of the block, line by line: quotes, escapes, breaks stay
            out.append(_BASE64.sub(lambda r: MASK * len(r.group()), text[start:end]))
        else:
            out.append(placeholder(kind, end - start))
        pos = end
    out.append(text[pos:])
    return Masked("".join(out), tuple(found))
