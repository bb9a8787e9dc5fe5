"""Model text made safe to show as Markdown (a hover's review findings).

A review's messages come from a model, and a reply is hostile until checked: the code under
review can carry a prompt injection. Rendered as Markdown in an editor, a message could load a
remote image (`![x](https://…/?leak=…)` tells a server what was reviewed, and when), show a link
that looks like ACE's own, or bring raw HTML. `escape(text)` keeps what a reader needs — the
words, inline code and fenced code shown as written — and neutralises the rest:

- `[` and `]` become character references: no link, image or link reference definition can form
  (CommonMark never reads a character reference as structure);
- `<`, `>` and `&` become character references: no raw HTML, no `<https://…>` autolink;
- a bare URL (`https://…`, `www.…`) is shown in a code span, where no renderer makes it a link;
- backslashes and stray backticks are escaped, so the only code spans are the ones re-emitted.

Inline code and fenced code are kept as they are: a renderer shows their content literally. An
indented code block (4 spaces) shows the escapes literally; findings are one line, so it does not
arise in a hover. `code(text)` is an inline code span that shows any text. Pure string code,
linear in the text.
"""

from __future__ import annotations

import re

_TEXT = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "[": "&#91;",
        "]": "&#93;",
        "\\": "\\\\",
        "`": "\\`",
    }
)
_TICKS = re.compile(r"`+")
# a scheme (bounded) and `://`, or `www.`; to the next space, angle bracket or backtick
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s<>`]*|www\.[^\s<>`]*")
_URL_TAIL = ".,;:!?)'\"*_"  # punctuation after a URL belongs to the sentence, as in GFM
_INFO = re.compile(r"[A-Za-z0-9_+.#-]*")


def _longest_ticks(text: str) -> int:
    return max((len(m.group()) for m in _TICKS.finditer(text)), default=0)


def code(text: str) -> str:
    """`text` as an inline code span, shown literally whatever it holds ("" for "")."""
    text = " ".join(text.splitlines())
    if not text:
        return ""
    fence = "`" * (_longest_ticks(text) + 1)
    pad = " " if text[0] == "`" or text[-1] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _text(segment: str) -> str:
    """Prose: Markdown's active characters escaped, bare URLs in code spans."""
    out: list[str] = []
    pos = 0
    for m in _URL.finditer(segment):
        url = m.group().rstrip(_URL_TAIL)
        if "://" not in url and not url.startswith("www."):
            continue
        out.append(segment[pos : m.start()].translate(_TEXT))
        out.append(code(url))
        pos = m.start() + len(url)
    out.append(segment[pos:].translate(_TEXT))
    return "".join(out)


def _inline(line: str) -> str:
    """One line: its code spans kept (CommonMark's pairing of backtick runs), the rest escaped."""
    runs = [m.span() for m in _TICKS.finditer(line)]
    closer: list[int | None] = [None] * len(runs)  # the next run of the same length
    last: dict[int, int] = {}
    for k in range(len(runs) - 1, -1, -1):
        size = runs[k][1] - runs[k][0]
        closer[k] = last.get(size)
        last[size] = k
    out: list[str] = []
    pos = k = 0
    while k < len(runs):
        j = closer[k]
        if j is None:
            k += 1  # a stray run: escaped with the text around it
            continue
        out.append(_text(line[pos : runs[k][0]]))
        out.append(line[runs[k][0] : runs[j][1]])
        pos, k = runs[j][1], j + 1
    out.append(_text(line[pos:]))
    return "".join(out)


def _fence(line: str) -> tuple[str, int, str] | None:
    """(fence character, length, info word) when `line` opens a fenced code block."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3 or stripped[:3] not in ("```", "~~~"):
        return None
    char = stripped[0]
    size = len(stripped) - len(stripped.lstrip(char))
    info = stripped[size:].strip()
    if char == "`" and "`" in info:
        return None  # CommonMark: not a fence but inline code
    word = _INFO.match(info)
    return char, size, word.group() if word else ""


def _closes(line: str, char: str, size: int) -> bool:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    body = stripped.rstrip(" \t")
    return len(body) >= size and body == char * len(body)


def escape(text: str) -> str:
    """`text` (a model's Markdown) as Markdown that shows the same words and code, and can load,
    link or inject nothing."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        opened = _fence(lines[i])
        if opened is None:
            out.append(_inline(lines[i]))
            i += 1
            continue
        char, size, info = opened
        j = i + 1
        while j < len(lines) and not _closes(lines[j], char, size):
            j += 1
        body = lines[i + 1 : j]
        fence = "`" * max(3, _longest_ticks("\n".join(body)) + 1)
        out.extend((fence + info, *body, fence))  # an unclosed block ends with the text
        i = j + 1
    return "\n".join(out)
