"""LSP diagnostics, as JSON from the editor or a linter, read into `CodeIssue`s for prompts.

Every field is hostile input. What is not the type LSP gives it is dropped, not guessed at (a
`code` that is a list, a line that is `true` or NaN); text is capped (caps.py); the one-line
fields (source, code, a related note, another file's name) have their line breaks folded into
spaces, so that none can pose as a further line of the prompt; `codeDescription.href` is kept only
when it is a plain http(s) URL; `data` becomes compact JSON. Whether a related location is in the
diagnostic's own file is the caller's to say (it knows the document's URI); only then does the
prompt quote its lines, and only the ones inside the file (prompts.py).
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

from ace_lsp.orchestrator.caps import (
    MAX_DATA_CHARS,
    MAX_HREF_CHARS,
    MAX_LABEL_CHARS,
    MAX_RELATED,
    MAX_RELATED_CHARS,
    clip,
)
from ace_lsp.orchestrator.types import CodeIssue, LineRange, Related, TextRange

SameFile = Callable[[str], bool]  # a related location's URI -> is it the diagnostic's own file?


def to_issue(raw: Mapping[str, object], range: TextRange, same_file: SameFile) -> CodeIssue:
    """The issue an LSP Diagnostic (as JSON) reports at `range` (already in server positions).

    Raises TypeError when `message` is not a string; every other field is optional and dropped
    when it is junk.
    """
    message = raw.get("message")
    if not isinstance(message, str):
        raise TypeError("a diagnostic's message must be a string")
    code = raw.get("code")
    return CodeIssue(
        range=range,
        message=message,
        code=_label(str(code) if _is_int(code) else code),  # LSP: integer | string
        source=_label(raw.get("source")),
        severity=_severity(raw.get("severity")),
        href=_href(raw.get("codeDescription")),
        related=_related(raw.get("relatedInformation"), same_file),
        data=_data(raw.get("data")),
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _severity(value: object) -> int | None:
    """LSP's DiagnosticSeverity (1 error … 4 hint), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        return None
    return value


def one_line(text: str, limit: int) -> str:
    """`text` with every run of whitespace (line breaks included) one space, cut to `limit`."""
    return clip(" ".join(text.split()), limit)


def _label(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return one_line(value, MAX_LABEL_CHARS) or None


def _href(description: object) -> str | None:
    """codeDescription.href when it is an http(s) URL with a host and no credentials, else None."""
    href = description.get("href") if isinstance(description, Mapping) else None
    if not isinstance(href, str) or not href or len(href) > MAX_HREF_CHARS:
        return None
    if any(c.isspace() or not c.isprintable() for c in href):
        return None  # a line break would start a line of the prompt of its own
    try:
        url = urlsplit(href)
        _ = url.port  # a port that is no number raises here
        ok = url.scheme.lower() in ("http", "https") and bool(url.hostname)
        ok = ok and url.username is None and url.password is None  # no credentials in a prompt
    except ValueError:  # a bad port or IPv6 literal
        return None
    return href if ok else None


def _line(value: object) -> int | None:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # JSON's 3.0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _lines(rng: object) -> LineRange | None:
    """The whole lines of an LSP Range (one ending at a line's start leaves that line out)."""
    if not isinstance(rng, Mapping):
        return None
    start, end = rng.get("start"), rng.get("end")
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        return None
    first, last = _line(start.get("line")), _line(end.get("line"))
    if first is None:
        return None
    if last is None or last < first:
        return LineRange(first, first)
    if last > first and end.get("character") == 0:
        last -= 1
    return LineRange(first, last)


def _file_name(uri: str) -> str:
    """How the prompt names another file: the last segment of the URI's path."""
    try:
        path = urlsplit(uri).path
    except ValueError:
        path = uri
    return one_line(posixpath.basename(unquote(path)), MAX_LABEL_CHARS) or "another file"


def _related(entries: object, same_file: SameFile) -> tuple[Related, ...]:
    """The first MAX_RELATED entries of relatedInformation; a malformed entry is left out."""
    if not isinstance(entries, list):
        return ()
    out: list[Related] = []
    for entry in entries[:MAX_RELATED]:
        if not isinstance(entry, Mapping):
            continue
        message, location = entry.get("message"), entry.get("location")
        if not isinstance(message, str) or not isinstance(location, Mapping):
            continue
        uri, lines = location.get("uri"), _lines(location.get("range"))
        if not isinstance(uri, str) or lines is None:
            continue
        file = None if same_file(uri) else _file_name(uri)
        out.append(Related(one_line(message, MAX_RELATED_CHARS), lines, file))
    return tuple(out)


def _data(value: object) -> str | None:
    """`data` as compact JSON, cut to MAX_DATA_CHARS; None when absent or not JSON (NaN, too
    deep)."""
    if value is None:
        return None
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return clip(text, MAX_DATA_CHARS)
