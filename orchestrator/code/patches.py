"""The patch gate: a model's reply becomes a checked, minimal edit of one file, or a refusal.

`validate` applies the reply's diff exactly to the original and checks the file, the allowed
lines, that something changes and that the syntax got no worse; `unified_diff` writes diffs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tree_sitter import Tree

from ace_lsp.orchestrator.code import diff_text, languages, secrets
from ace_lsp.orchestrator.code.diff_text import DiffFormatError, DiffTooLarge, Hunk, HunkLine
from ace_lsp.orchestrator.code.source import utf16_len
from ace_lsp.orchestrator.code.syntax import Replacement, SyntaxBroken, check_syntax
from ace_lsp.orchestrator.errors import PatchError
from ace_lsp.orchestrator.types import LineRange, Position, TextEdit, TextRange

__all__ = [
    "ContextMismatch",
    "MalformedDiff",
    "MultipleFiles",
    "NoChange",
    "NoDiff",
    "OutOfRange",
    "Patch",
    "PatchError",
    "SyntaxBroken",
    "TooLarge",
    "WritesMasked",
    "WrongFile",
    "unified_diff",
    "validate",
]

_NEAR = 100  # lines either side of a hunk's stated start tried one by one before a full search
_CONTEXT = 3
# What secrets.mask() writes in place of a secret: a `«masked:<kind>»` label padded with MASK, or
# MASK alone — for a secret shorter than its label (8 or more), and for every base64 run of a
# private key block, at least one base64 quantum (4 characters) long.
MASK_LABEL = "«masked:"
MASK_RUN = secrets.MASK * 4


class NoDiff(PatchError):
    refusal = "no_diff"


class MalformedDiff(PatchError):
    refusal = "malformed_diff"


class WrongFile(PatchError):
    refusal = "wrong_file"


class MultipleFiles(PatchError):
    refusal = "multiple_files"


class OutOfRange(PatchError):
    refusal = "out_of_range"


class ContextMismatch(PatchError):
    refusal = "context_mismatch"


class NoChange(PatchError):
    refusal = "no_change"


class TooLarge(PatchError):
    refusal = "too_large"


class WritesMasked(PatchError):
    refusal = "writes_masked_secret"


@dataclass(frozen=True)
class Patch:
    new_text: str
    edits: tuple[TextEdit, ...]  # minimal, UTF-16 positions, non-overlapping, in document order
    diff: str  # normalized unified diff of original -> new_text
    hunks: int  # hunks in `diff`
    changed: tuple[LineRange, ...]  # original lines touched; an insertion names the line after it


class _Doc:
    """The original as lines: `raw` without "\\n", `keys` also without a CRLF's "\\r"."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.final_nl = text == "" or text.endswith("\n")  # an empty file takes a final newline
        self.raw = text.split("\n")
        if self.final_nl:
            self.raw.pop()
        self.keys, self.newline, self.n = self.raw, "\n", len(self.raw)
        if "\r" in text:
            self.keys = text.replace("\r\n", "\n").split("\n")[: self.n]
            if self.n and not self.final_nl and self.keys[-1].endswith("\r"):
                self.keys[-1] = self.keys[-1][:-1]
            if 2 * text.count("\r\n") > text.count("\n"):
                self.newline = "\r\n"

    def ending_near(self, start: int, end: int) -> str:
        """The line ending of the lines at or around original lines [start, end)."""
        for i in (start, start - 1, end, start - 2):
            if 0 <= i < self.n and (i < self.n - 1 or self.final_nl):
                return "\r\n" if self.raw[i].endswith("\r") else "\n"
        return self.newline

    def full(self, i: int) -> str:
        return self.raw[i] + ("\n" if i < self.n - 1 or self.final_nl else "")

    def offsets(self, lines: Sequence[int]) -> list[int]:
        """Character offsets of the starts of `lines` (non-decreasing)."""
        out, pos, at = [], 0, 0
        for i in lines:
            pos += sum(map(len, self.raw[at:i])) + (i - at)
            at = i
            out.append(min(pos, len(self.text)))
        return out


@dataclass
class _Change:
    start: int  # original lines [start, end) become `new`
    end: int
    new: list[str]


def _key(text: str) -> str:
    return text[:-1] if text.endswith("\r") else text


def _markers(h: Hunk) -> tuple[bool, bool]:
    """Whether the diff says its old / new side ends the file without a newline."""
    old = any(ln.no_eol for ln in h.lines if ln.tag != "+")
    return old, any(ln.no_eol for ln in h.lines if ln.tag != "-")


def _lines(first: int, last: int) -> str:
    return f"line {first + 1}" if first == last else f"lines {first + 1}-{last + 1}"


def _allowed(ranges: Sequence[LineRange]) -> str:
    if len(ranges) == 1:
        return _lines(ranges[0].start, ranges[0].end)
    parts = [str(r.start + 1) if r.start == r.end else str(r) for r in sorted(ranges)] or ["none"]
    return "lines " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def _malformed(exc: DiffFormatError) -> MalformedDiff:
    return MalformedDiff(f"The diff is malformed: {exc}; send one unified diff with @@ hunks.")


def _read(reply: str, target: str, original: str) -> tuple[Hunk, ...]:
    try:
        files = diff_text.parse_reply(reply)
    except DiffTooLarge as exc:
        raise TooLarge(f"The diff is too large: {exc}; send a much smaller fix.") from exc
    except DiffFormatError as exc:
        raise _malformed(exc) from exc
    if not files:
        raise NoDiff(
            f"The reply contains no unified diff; answer with a ```diff block for {target}."
        )
    names = list(dict.fromkeys(f.name or target for f in files))
    if len(names) > 1:
        listed = ", ".join(names)
        raise MultipleFiles(f"The diff edits {len(names)} files ({listed}); edit only {target}.")
    if names[0] != target:
        raise WrongFile(f"The diff edits {names[0]}, not {target}; edit only {target}.")
    if any(f.deleted for f in files):
        raise MalformedDiff(f"The diff deletes {target} instead of editing it; change its lines.")
    if original and any(f.created for f in files):
        raise MalformedDiff(
            f"The diff creates {target} as a new file, but it exists; diff against its text."
        )
    # the same hunk twice (a block repeated in the reply) is one change, not an overlap
    unique: dict[tuple[int | None, tuple[HunkLine, ...]], Hunk] = {}
    for h in (h for f in files for h in f.hunks):
        unique.setdefault((h.old_start, h.lines), h)
    hunks = list(unique.values())
    if not hunks:
        raise NoDiff(f"The reply contains no diff hunks; answer with a ```diff block for {target}.")
    if all(h.old_start is not None for h in hunks):
        hunks.sort(key=lambda h: h.old_start or 0)
    try:
        hunks = list(diff_text.normalize(tuple(hunks)))
    except DiffFormatError as exc:
        raise _malformed(exc) from exc
    _refuse_placeholders(hunks, original)
    return tuple(hunks)


def _refuse_placeholders(hunks: Sequence[Hunk], original: str) -> None:
    """A line the diff adds may not carry a masked secret's placeholder (the model saw only that,
    never the secret): written into the file it would destroy the secret. A line the file already
    holds, bullets and all, is the file's own text, not a placeholder."""
    known: set[str] | None = None
    for h in hunks:
        for ln in h.lines:
            if ln.tag != "+" or (MASK_LABEL not in ln.text and MASK_RUN not in ln.text):
                continue
            if known is None:
                known = set(original.replace("\r\n", "\n").split("\n"))
            if _key(ln.text) not in known:
                raise WritesMasked(
                    f"Hunk {h.number} adds a line holding a masked secret's placeholder "
                    f"({MASK_LABEL}…» or {MASK_RUN}); leave the lines with secrets unchanged."
                )


def _blocks(h: Hunk, pos: int) -> list[tuple[int, int, list[HunkLine]]]:
    """The hunk's changes as (first old line, end, added lines), minus identical -/+ pairs."""
    out: list[tuple[int, int, list[HunkLine]]] = []
    i, start, removed, added = pos, -1, list[HunkLine](), list[HunkLine]()
    for ln in (*h.lines, None):
        if ln is not None and ln.tag != " ":
            start = i if start < 0 else start
            (removed if ln.tag == "-" else added).append(ln)
            i += ln.tag == "-"
            continue
        if start >= 0:
            a = b = 0
            m = min(len(removed), len(added))
            while a < m and _same(removed[a], added[a]):
                a += 1
            while b < m - a and _same(removed[-1 - b], added[-1 - b]):
                b += 1
            if len(removed) - a - b or len(added) - a - b:
                out.append((start + a, start + len(removed) - b, added[a : len(added) - b]))
            start, removed, added = -1, [], []
        i += 1
    return out


def _same(old: HunkLine, new: HunkLine) -> bool:
    return old.text == new.text and not old.no_eol and not new.no_eol


def _outside(blocks: Sequence[tuple[int, int, object]], ranges: Sequence[LineRange]) -> str | None:
    """What the first block outside `ranges` does, or None when all are inside."""
    for s, e, _ in blocks:
        if s == e:
            if not any(r.start <= s <= r.end + 1 for r in ranges):
                return f"inserts lines after line {s}" if s else "inserts lines at the top"
        elif not all(any(i in r for r in ranges) for i in range(s, e)):
            return f"changes {_lines(s, e - 1)}"
    return None


def _locate(doc: _Doc, h: Hunk, old: list[str], lo: int, ranges: Sequence[LineRange]) -> int:
    size, keys, last, hint = len(old), doc.keys, doc.n - len(old), h.old_start
    if hint is not None:
        # drift, as GNU patch's "offset N lines": the nearest exact match wins, earlier on a tie
        for d in range(_NEAR):
            for s in (hint - d, hint + d):
                if lo <= s <= last and keys[s : s + size] == old:
                    return s
    anchor = max(range(size), key=lambda j: len(old[j]))  # the longest line has fewest false hits
    found, i, stop = [], lo + anchor, last + anchor + 1
    while i < stop:
        try:
            i = keys.index(old[anchor], i, stop)
        except ValueError:
            break
        if keys[i - anchor : i - anchor + size] == old:
            found.append(i - anchor)
        i += 1
    if hint is not None:
        if found:
            return min(found, key=lambda s: (abs(s - hint), s))
        raise ContextMismatch(
            f"Hunk {h.number} does not match the file near line {_near(doc, hint, old)}; "
            "copy its context and removed lines exactly from the current file."
        )
    if len(found) > 1:
        inside = [s for s in found if _outside(_blocks(h, s), ranges) is None]
        found = inside if len(inside) == 1 else found
    if len(found) == 1:
        return found[0]
    if not found:
        raise ContextMismatch(
            f"Hunk {h.number} has no line numbers and matches nowhere in the file; "
            "copy its context and removed lines exactly from the current file."
        )
    places = ", ".join(str(s + 1) for s in found[:5])
    raise ContextMismatch(
        f"Hunk {h.number} has no line numbers and matches the file at lines {places}; "
        "add line numbers or more context lines."
    )


def _near(doc: _Doc, start: int, old: list[str]) -> int:
    """The 1-based line where `old`, put at `start`, first differs from the file."""
    for j, key in enumerate(old):
        if start + j >= doc.n or doc.keys[start + j] != key:
            return max(min(start + j, doc.n - 1), 0) + 1
    return start + 1


def _place(
    doc: _Doc, hunks: tuple[Hunk, ...], ranges: Sequence[LineRange]
) -> list[tuple[Hunk, int]]:
    placed, lo = [], 0
    for h in hunks:
        old = [_key(ln.text) for ln in h.lines if ln.tag != "+"]
        if old:
            pos = _locate(doc, h, old, lo, ranges)
        elif h.old_start is None:
            raise MalformedDiff(
                f"The diff is malformed: hunk {h.number} only adds lines but does not say after "
                "which line (-L,0 in its header); add unchanged lines around it as context."
            )
        elif not lo <= h.old_start <= doc.n:
            raise ContextMismatch(
                f"Hunk {h.number} inserts lines after line {h.old_start}, which is past the end "
                "of the file or inside an earlier hunk; use the file's current line numbers."
            )
        else:
            pos = h.old_start
        end = pos + len(old)
        old_eof, new_eof = _markers(h)
        if old_eof and (end != doc.n or doc.final_nl):
            raise ContextMismatch(
                f"Hunk {h.number} says line {end} ends the file without a newline, but it does "
                "not; drop the 'No newline at end of file' marker."
            )
        if new_eof and end != doc.n:
            raise ContextMismatch(
                f"Hunk {h.number} ends the file after line {end}, but the file goes on; drop the "
                "'No newline at end of file' marker."
            )
        placed.append((h, pos))
        lo = end
    return placed


def _changes(
    doc: _Doc, placed: list[tuple[Hunk, int]], ranges: Sequence[LineRange]
) -> tuple[list[_Change], list[tuple[int, int, object]]]:
    # A diff whose old lines show the file's CRLFs as "\r" (as `unified_diff` writes them) gives
    # every line's ending, so an added line without "\r" ends in "\n"; models drop the "\r", so
    # their added lines take the ending of the lines around them (the file's, if it is uniform).
    olds = [(pos, [ln.text for ln in h.lines if ln.tag != "+"]) for h, pos in placed]
    exact = any(t.endswith("\r") for _, old in olds for t in old) and all(
        old == doc.raw[p : p + len(old)] for p, old in olds
    )
    changes: list[_Change] = []
    touched: list[tuple[int, int, object]] = []
    for h, pos in placed:
        for s, e, added in _blocks(h, pos):
            touched.append((s, e, None))
            nl = "\n" if exact else doc.ending_near(s, e)
            new = [
                ln.text if ln.no_eol else ln.text + ("\n" if ln.text.endswith("\r") else nl)
                for ln in added
            ]
            if changes and changes[-1].end == s:
                changes[-1].end, changes[-1].new = e, changes[-1].new + new
            else:
                changes.append(_Change(s, e, new))
    problem = _outside(touched, ranges)
    if problem:
        raise OutOfRange(
            f"The diff {problem}, outside the allowed {_allowed(ranges)}; "
            "keep the fix within those lines."
        )
    last, pos = placed[-1]
    want = doc.final_nl
    if pos + sum(1 for ln in last.lines if ln.tag != "+") == doc.n and any(_markers(last)):
        want = not _markers(last)[1]
    if doc.n and want != doc.final_nl and (not changes or changes[-1].end < doc.n):
        changes.append(_Change(doc.n - 1, doc.n, [doc.full(doc.n - 1)]))
    if doc.n and changes and changes[-1].end == doc.n:
        # the final line's ending follows `want`; a line that stops being last needs one
        ch, nl = changes[-1], "\n" if exact else doc.ending_near(doc.n, doc.n)
        if (ch.start == doc.n and not doc.final_nl) or (not ch.new and ch.start and not want):
            ch.start -= 1
            ch.new.insert(0, doc.full(ch.start))
        ch.new = [s if s.endswith("\n") else s + nl for s in ch.new[:-1]] + ch.new[-1:]
        if ch.new and want and not ch.new[-1].endswith("\n"):
            ch.new[-1] += nl
        elif ch.new and not want and ch.new[-1].endswith("\n"):
            ch.new[-1] = ch.new[-1][: -2 if ch.new[-1].endswith("\r\n") else -1]
    return changes, touched


def _spans(doc: _Doc, changes: list[_Change]) -> list[Replacement]:
    text = doc.text
    offsets = doc.offsets([x for ch in changes for x in (ch.start, ch.end)])
    out = []
    for k, ch in enumerate(changes):
        s, e = offsets[2 * k], offsets[2 * k + 1]
        old, new = text[s:e], "".join(ch.new)
        if old == new:
            continue
        p = diff_text.common_prefix(old, new)
        if p and old[p - 1] == "\r" and old[p : p + 1] == "\n":
            p -= 1  # never split a CRLF: editors cannot address the point between \r and \n
        q = diff_text.common_suffix(old, new, 0, min(len(old), len(new)) - p)
        if q and old[len(old) - q - 1 : len(old) - q] == "\r" and old[len(old) - q] == "\n":
            q -= 1
        start, end = s + p, e - q
        line = ch.start + text.count("\n", s, start)
        line_start = text.rfind("\n", s, start) + 1 or s
        end_line = line + text.count("\n", start, end)
        end_line_start = text.rfind("\n", start, end) + 1 or line_start
        out.append(
            Replacement(
                start, end, new[p : len(new) - q], line, line_start, end_line, end_line_start
            )
        )
    return out


def validate(
    original: str,
    reply: str,
    allowed: LineRange | Sequence[LineRange],
    *,
    path: str,
    language: str | None = None,
    display_path: str | None = None,
    original_tree: Tree | None = None,
) -> Patch:
    """The reply's diff applied to `original`, checked; raises a PatchError subclass if unsafe.

    `original_tree`, when given, must be the parse of `original`; it is reused, never modified.
    """
    ranges = (allowed,) if isinstance(allowed, LineRange) else tuple(allowed)
    target = diff_text.base_name(path)
    hunks = _read(reply, target, original)
    doc = _Doc(original)
    changes, touched = _changes(doc, _place(doc, hunks, ranges), ranges)
    spans = _spans(doc, changes)
    if not spans:
        raise NoChange(
            "The diff leaves the file unchanged; change the lines that cause the problem."
        )
    parts, at = [], 0
    for sp in spans:
        parts += [original[at : sp.start], sp.text]
        at = sp.end
    parts.append(original[at:])
    new_text = "".join(parts)
    spec = languages.resolve(language, path)
    if spec is not None:
        check_syntax(spec, doc.text, new_text, original_tree, spans)
    edits = tuple(
        TextEdit(
            TextRange(
                Position(sp.line, utf16_len(original[sp.line_start : sp.start])),
                Position(sp.end_line, utf16_len(original[sp.end_line_start : sp.end])),
            ),
            sp.text,
        )
        for sp in spans
    )
    # the texts agree outside the changed lines, so a window around them gives the whole diff
    lo, hi = max(changes[0].start - _CONTEXT, 0), min(changes[-1].end + _CONTEXT, doc.n)
    cut, keep = doc.offsets([lo, hi])
    diff = diff_text.write_diff(
        diff_text.split_lines(original[cut:keep]),
        diff_text.split_lines(new_text[cut : len(new_text) - len(original) + keep]),
        display_path or target,
        _CONTEXT,
        changes[0].start - lo,
        hi - changes[-1].end,
        lo,
    )
    return Patch(new_text, edits, diff, diff.count("\n@@ -"), _changed(touched, doc.n))


def unified_diff(original: str, new_text: str, display_path: str, context: int = 3) -> str:
    """A unified diff ("--- a/<path>", "+++ b/<path>") that `validate` applies back exactly.

    Lines keep their own endings ("\\r" shows before the newline) and a missing final newline is
    marked, so CRLF and mixed files round-trip; identical texts give "".
    """
    return diff_text.write_diff(
        diff_text.split_lines(original), diff_text.split_lines(new_text), display_path, context
    )


def _changed(touched: list[tuple[int, int, object]], n: int) -> tuple[LineRange, ...]:
    merged: list[LineRange] = []
    for s, e, _ in sorted(touched):
        first, last = (s, e - 1) if e > s else (min(s, max(n - 1, 0)),) * 2
        if merged and first <= merged[-1].end + 1:
            prev = merged.pop()
            first, last = prev.start, max(last, prev.end)
        merged.append(LineRange(first, last))
    return tuple(merged)
