"""The patch gate: a model's reply becomes a checked, minimal edit of one file, or a refusal.

`validate` applies the reply's diff exactly to the original and checks the file, the allowed
lines, that something changes and that the syntax got no worse; `unified_diff` writes diffs.
A reply with no diff may hold search/replace blocks or the allowed lines rewritten in one code
block (`edit_formats`): those become a diff against the original and pass the same checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from tree_sitter import Tree

from ace_lsp.orchestrator.code import diff_text, edit_formats, languages, secrets
from ace_lsp.orchestrator.code.diff_text import DiffFormatError, DiffTooLarge, Hunk, HunkLine
from ace_lsp.orchestrator.code.edit_formats import Rewrite
from ace_lsp.orchestrator.code.source import utf16_len
from ace_lsp.orchestrator.code.syntax import Replacement, check_syntax
from ace_lsp.orchestrator.errors import (
    ContextMismatch,
    MalformedDiff,
    MultipleFiles,
    NoChange,
    NoDiff,
    OutOfRange,
    PatchError,
    SyntaxBroken,
    TooLarge,
    WritesMasked,
    WrongFile,
)
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


@dataclass(frozen=True)
class Patch:
    """A checked edit of one file: the new text, the minimal edits to it and the normalized diff."""

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
        self.keys, self.newline, self.line_count = self.raw, "\n", len(self.raw)
        if "\r" in text:
            self.keys = text.replace("\r\n", "\n").split("\n")[: self.line_count]
            if self.line_count and not self.final_nl and self.keys[-1].endswith("\r"):
                self.keys[-1] = self.keys[-1][:-1]
            if 2 * text.count("\r\n") > text.count("\n"):
                self.newline = "\r\n"

    def ending_near(self, start: int, end: int) -> str:
        """The line ending of the lines at or around original lines [start, end)."""
        for line in (start, start - 1, end, start - 2):
            if 0 <= line < self.line_count and (line < self.line_count - 1 or self.final_nl):
                return "\r\n" if self.raw[line].endswith("\r") else "\n"
        return self.newline

    def with_ending(self, line: int) -> str:
        """Original line `line` with its line ending (none for a last line without one)."""
        ends = line < self.line_count - 1 or self.final_nl
        return self.raw[line] + ("\n" if ends else "")

    def offsets(self, lines: Sequence[int]) -> list[int]:
        """Character offsets of the starts of `lines` (non-decreasing)."""
        out, offset, counted = [], 0, 0
        for line in lines:
            offset += sum(map(len, self.raw[counted:line])) + (line - counted)
            counted = line
            out.append(min(offset, len(self.text)))
        return out


@dataclass
class _Change:
    start: int  # original lines [start, end) become `new_lines` (with their endings)
    end: int
    new_lines: list[str]


class _Block(NamedTuple):
    """A run of a hunk's changes: original lines [start, end) become the `added` lines."""

    start: int
    end: int
    added: list[HunkLine]


class _Placed(NamedTuple):
    """A hunk and the original line its old lines start at."""

    hunk: Hunk
    start: int


class _NoNewlineAtEnd(NamedTuple):
    """Whether a hunk says its old side and its new side end the file without a newline."""

    old: bool
    new: bool


def _key(text: str) -> str:
    return text[:-1] if text.endswith("\r") else text


def _markers(hunk: Hunk) -> _NoNewlineAtEnd:
    """Whether the diff says its old / new side ends the file without a newline."""
    return _NoNewlineAtEnd(
        old=any(line.no_eol for line in hunk.lines if line.tag != "+"),
        new=any(line.no_eol for line in hunk.lines if line.tag != "-"),
    )


def _lines(first: int, last: int) -> str:
    return f"line {first + 1}" if first == last else f"lines {first + 1}-{last + 1}"


def _allowed(ranges: Sequence[LineRange]) -> str:
    if len(ranges) == 1:
        return _lines(ranges[0].start, ranges[0].end)
    parts = [str(r.start + 1) if r.start == r.end else str(r) for r in sorted(ranges)]
    parts = parts or ["none"]
    return "lines " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])


def _malformed(exc: DiffFormatError) -> MalformedDiff:
    return MalformedDiff(f"The diff is malformed: {exc}; send one unified diff with @@ hunks.")


def _parse(reply: str) -> list[diff_text.FileDiff]:
    try:
        return diff_text.parse_reply(reply)
    except DiffTooLarge as exc:
        raise TooLarge(f"The diff is too large: {exc}; send a much smaller fix.") from exc
    except DiffFormatError as exc:
        raise _malformed(exc) from exc


def _read(
    reply: str, target: str, original: str, other_formats: Callable[[], Rewrite | None]
) -> tuple[Hunk, ...]:
    files = _parse(reply)
    if not files:
        # search/replace blocks or a rewritten span: diffed against the original, then checked
        # exactly as a diff the model wrote would be
        rewrite = other_formats()
        if rewrite is None:
            raise NoDiff(
                f"The reply contains no unified diff; answer with a ```diff block for {target}."
            )
        if rewrite.new_text == original:
            raise NoChange(
                f"The {rewrite.format} leave the file unchanged; change the lines that cause "
                "the problem."
            )
        files = _parse(unified_diff(original, rewrite.new_text, target))
    names = list(dict.fromkeys(file.name or target for file in files))
    if len(names) > 1:
        listed = ", ".join(names)
        raise MultipleFiles(f"The diff edits {len(names)} files ({listed}); edit only {target}.")
    if names[0] != target:
        raise WrongFile(f"The diff edits {names[0]}, not {target}; edit only {target}.")
    if any(file.deleted for file in files):
        raise MalformedDiff(f"The diff deletes {target} instead of editing it; change its lines.")
    if original and any(file.created for file in files):
        raise MalformedDiff(
            f"The diff creates {target} as a new file, but it exists; diff against its text."
        )
    # the same hunk twice (a block repeated in the reply) is one change, not an overlap
    unique: dict[tuple[int | None, tuple[HunkLine, ...]], Hunk] = {}
    for hunk in (hunk for file in files for hunk in file.hunks):
        unique.setdefault((hunk.old_start, hunk.lines), hunk)
    hunks = list(unique.values())
    if not hunks:
        raise NoDiff(f"The reply contains no diff hunks; answer with a ```diff block for {target}.")
    if all(hunk.old_start is not None for hunk in hunks):
        hunks.sort(key=lambda hunk: hunk.old_start or 0)
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
    for hunk in hunks:
        for line in hunk.lines:
            if line.tag != "+" or (MASK_LABEL not in line.text and MASK_RUN not in line.text):
                continue
            if known is None:
                known = set(original.replace("\r\n", "\n").split("\n"))
            if _key(line.text) not in known:
                raise WritesMasked(
                    f"Hunk {hunk.number} adds a line holding a masked secret's placeholder "
                    f"({MASK_LABEL}…» or {MASK_RUN}); leave the lines with secrets unchanged."
                )


def _blocks(hunk: Hunk, hunk_start: int) -> list[_Block]:
    """The changes of `hunk`, placed at original line `hunk_start`, minus identical -/+ pairs."""
    out: list[_Block] = []
    old_line, start = hunk_start, -1  # start: the first old line of the run of changes, if any
    removed, added = list[HunkLine](), list[HunkLine]()
    for line in (*hunk.lines, None):
        if line is not None and line.tag != " ":
            start = old_line if start < 0 else start
            (removed if line.tag == "-" else added).append(line)
            old_line += line.tag == "-"
            continue
        if start >= 0:
            same_head = same_tail = 0
            pairs = min(len(removed), len(added))
            while same_head < pairs and _same(removed[same_head], added[same_head]):
                same_head += 1
            while same_tail < pairs - same_head and _same(
                removed[-1 - same_tail], added[-1 - same_tail]
            ):
                same_tail += 1
            if len(removed) - same_head - same_tail or len(added) - same_head - same_tail:
                out.append(
                    _Block(
                        start + same_head,
                        start + len(removed) - same_tail,
                        added[same_head : len(added) - same_tail],
                    )
                )
            start, removed, added = -1, [], []
        old_line += 1
    return out


def _same(old: HunkLine, new: HunkLine) -> bool:
    return old.text == new.text and not old.no_eol and not new.no_eol


def _outside(blocks: Sequence[_Block], ranges: Sequence[LineRange]) -> str | None:
    """What the first block outside `ranges` does, or None when all are inside."""
    for start, end, _ in blocks:
        if start == end:
            if not any(r.start <= start <= r.end + 1 for r in ranges):
                return f"inserts lines after line {start}" if start else "inserts lines at the top"
        elif not all(any(line in r for r in ranges) for line in range(start, end)):
            return f"changes {_lines(start, end - 1)}"
    return None


def _locate(
    doc: _Doc, hunk: Hunk, old: list[str], earliest: int, ranges: Sequence[LineRange]
) -> int:
    """The original line where `hunk`'s old lines (`old`, as keys) start, at `earliest` or after."""
    size, keys, latest, hint = len(old), doc.keys, doc.line_count - len(old), hunk.old_start
    if hint is not None:
        # drift, as GNU patch's "offset N lines": the nearest exact match wins, earlier on a tie
        for drift in range(_NEAR):
            for start in (hint - drift, hint + drift):
                if earliest <= start <= latest and keys[start : start + size] == old:
                    return start
    # the longest line has fewest false hits
    anchor = max(range(size), key=lambda offset: len(old[offset]))
    found, line, stop = [], earliest + anchor, latest + anchor + 1
    while line < stop:
        try:
            line = keys.index(old[anchor], line, stop)
        except ValueError:
            break
        if keys[line - anchor : line - anchor + size] == old:
            found.append(line - anchor)
        line += 1
    if hint is not None:
        if found:
            return min(found, key=lambda start: (abs(start - hint), start))
        raise ContextMismatch(
            f"Hunk {hunk.number} does not match the file near line {_near(doc, hint, old)}; "
            "copy its context and removed lines exactly from the current file."
        )
    if len(found) > 1:
        inside = [start for start in found if _outside(_blocks(hunk, start), ranges) is None]
        found = inside if len(inside) == 1 else found
    if len(found) == 1:
        return found[0]
    if not found:
        raise ContextMismatch(
            f"Hunk {hunk.number} has no line numbers and matches nowhere in the file; "
            "copy its context and removed lines exactly from the current file."
        )
    places = ", ".join(str(start + 1) for start in found[:5])
    raise ContextMismatch(
        f"Hunk {hunk.number} has no line numbers and matches the file at lines {places}; "
        "add line numbers or more context lines."
    )


def _near(doc: _Doc, start: int, old: list[str]) -> int:
    """The 1-based line where `old`, put at `start`, first differs from the file."""
    for offset, key in enumerate(old):
        line = start + offset
        if line >= doc.line_count or doc.keys[line] != key:
            return max(min(line, doc.line_count - 1), 0) + 1
    return start + 1


def _place(doc: _Doc, hunks: tuple[Hunk, ...], ranges: Sequence[LineRange]) -> list[_Placed]:
    placed: list[_Placed] = []
    earliest = 0  # hunks apply in order and may not overlap
    for hunk in hunks:
        old = [_key(line.text) for line in hunk.lines if line.tag != "+"]
        if old:
            start = _locate(doc, hunk, old, earliest, ranges)
        elif hunk.old_start is None:
            raise MalformedDiff(
                f"The diff is malformed: hunk {hunk.number} only adds lines but does not say "
                "after which line (-L,0 in its header); add unchanged lines around it as context."
            )
        elif not earliest <= hunk.old_start <= doc.line_count:
            raise ContextMismatch(
                f"Hunk {hunk.number} inserts lines after line {hunk.old_start}, which is past the "
                "end of the file or inside an earlier hunk; use the file's current line numbers."
            )
        else:
            start = hunk.old_start
        end = start + len(old)
        no_newline = _markers(hunk)
        if no_newline.old and (end != doc.line_count or doc.final_nl):
            raise ContextMismatch(
                f"Hunk {hunk.number} says line {end} ends the file without a newline, but it "
                "does not; drop the 'No newline at end of file' marker."
            )
        if no_newline.new and end != doc.line_count:
            raise ContextMismatch(
                f"Hunk {hunk.number} ends the file after line {end}, but the file goes on; drop "
                "the 'No newline at end of file' marker."
            )
        placed.append(_Placed(hunk, start))
        earliest = end
    return placed


def _changes(
    doc: _Doc, placed: list[_Placed], ranges: Sequence[LineRange]
) -> tuple[list[_Change], list[_Block]]:
    # A diff whose old lines show the file's CRLFs as "\r" (as `unified_diff` writes them) gives
    # every line's ending, so an added line without "\r" ends in "\n"; models drop the "\r", so
    # their added lines take the ending of the lines around them (the file's, if it is uniform).
    olds = [
        (start, [line.text for line in hunk.lines if line.tag != "+"]) for hunk, start in placed
    ]
    exact = any(text.endswith("\r") for _, old in olds for text in old) and all(
        old == doc.raw[start : start + len(old)] for start, old in olds
    )
    changes: list[_Change] = []
    touched: list[_Block] = []
    for hunk, hunk_start in placed:
        for block in _blocks(hunk, hunk_start):
            touched.append(block)
            start, end = block.start, block.end
            ending = "\n" if exact else doc.ending_near(start, end)
            new_lines = [
                line.text
                if line.no_eol
                else line.text + ("\n" if line.text.endswith("\r") else ending)
                for line in block.added
            ]
            if changes and changes[-1].end == start:
                changes[-1].end = end
                changes[-1].new_lines = changes[-1].new_lines + new_lines
            else:
                changes.append(_Change(start, end, new_lines))
    problem = _outside(touched, ranges)
    if problem:
        raise OutOfRange(
            f"The diff {problem}, outside the allowed {_allowed(ranges)}; "
            "keep the fix within those lines."
        )
    last_hunk, last_start = placed[-1]
    count = doc.line_count
    final_nl = doc.final_nl  # whether the new text ends with a newline
    old_size = sum(1 for line in last_hunk.lines if line.tag != "+")
    no_newline = _markers(last_hunk)
    if last_start + old_size == count and any(no_newline):
        final_nl = not no_newline.new
    if count and final_nl != doc.final_nl and (not changes or changes[-1].end < count):
        changes.append(_Change(count - 1, count, [doc.with_ending(count - 1)]))
    if count and changes and changes[-1].end == count:
        # the final line's ending follows `final_nl`; a line that stops being last needs one
        last = changes[-1]
        ending = "\n" if exact else doc.ending_near(count, count)
        if (last.start == count and not doc.final_nl) or (
            not last.new_lines and last.start and not final_nl
        ):
            last.start -= 1
            last.new_lines.insert(0, doc.with_ending(last.start))
        new_lines = last.new_lines
        new_lines[:-1] = [line if line.endswith("\n") else line + ending for line in new_lines[:-1]]
        if new_lines and final_nl and not new_lines[-1].endswith("\n"):
            new_lines[-1] += ending
        elif new_lines and not final_nl and new_lines[-1].endswith("\n"):
            new_lines[-1] = new_lines[-1][: -2 if new_lines[-1].endswith("\r\n") else -1]
    return changes, touched


def _spans(doc: _Doc, changes: list[_Change]) -> list[Replacement]:
    """Each change as the smallest replacement of characters that makes it."""
    text = doc.text
    offsets = doc.offsets([line for change in changes for line in (change.start, change.end)])
    out = []
    for k, change in enumerate(changes):
        change_start, change_end = offsets[2 * k], offsets[2 * k + 1]
        old, new = text[change_start:change_end], "".join(change.new_lines)
        if old == new:
            continue
        prefix = diff_text.common_prefix(old, new)
        if prefix and old[prefix - 1] == "\r" and old[prefix : prefix + 1] == "\n":
            prefix -= 1  # never split a CRLF: editors cannot address the point between \r and \n
        suffix = diff_text.common_suffix(old, new, 0, min(len(old), len(new)) - prefix)
        old_end = len(old) - suffix
        if suffix and old[old_end - 1 : old_end] == "\r" and old[old_end] == "\n":
            suffix -= 1
        start, end = change_start + prefix, change_end - suffix
        line = change.start + text.count("\n", change_start, start)
        line_start = text.rfind("\n", change_start, start) + 1 or change_start
        end_line = line + text.count("\n", start, end)
        end_line_start = text.rfind("\n", start, end) + 1 or line_start
        out.append(
            Replacement(
                start,
                end,
                new[prefix : len(new) - suffix],
                line,
                line_start,
                end_line,
                end_line_start,
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
    hunks = _read(
        reply,
        target,
        original,
        lambda: edit_formats.read(
            reply, original, ranges, target=target, language=language, path=path
        ),
    )
    doc = _Doc(original)
    changes, touched = _changes(doc, _place(doc, hunks, ranges), ranges)
    spans = _spans(doc, changes)
    if not spans:
        raise NoChange(
            "The diff leaves the file unchanged; change the lines that cause the problem."
        )
    parts, copied = [], 0
    for span in spans:
        parts += [original[copied : span.start], span.text]
        copied = span.end
    parts.append(original[copied:])
    new_text = "".join(parts)
    spec = languages.resolve(language, path)
    if spec is not None:
        check_syntax(spec, doc.text, new_text, original_tree, spans)
    edits = tuple(
        TextEdit(
            TextRange(
                Position(span.line, utf16_len(original[span.line_start : span.start])),
                Position(span.end_line, utf16_len(original[span.end_line_start : span.end])),
            ),
            span.text,
        )
        for span in spans
    )
    # the texts agree outside the changed lines, so a window around them gives the whole diff
    first_line = max(changes[0].start - _CONTEXT, 0)
    end_line = min(changes[-1].end + _CONTEXT, doc.line_count)
    window_start, window_end = doc.offsets([first_line, end_line])
    new_window_end = len(new_text) - len(original) + window_end
    diff = diff_text.write_diff(
        diff_text.split_lines(original[window_start:window_end]),
        diff_text.split_lines(new_text[window_start:new_window_end]),
        display_path or target,
        _CONTEXT,
        changes[0].start - first_line,
        end_line - changes[-1].end,
        first_line,
    )
    changed = _changed(touched, doc.line_count)
    return Patch(new_text, edits, diff, diff.count("\n@@ -"), changed)


def unified_diff(original: str, new_text: str, display_path: str, context: int = 3) -> str:
    """A unified diff ("--- a/<path>", "+++ b/<path>") that `validate` applies back exactly.

    Lines keep their own endings ("\\r" shows before the newline) and a missing final newline is
    marked, so CRLF and mixed files round-trip; identical texts give "".
    """
    return diff_text.write_diff(
        diff_text.split_lines(original), diff_text.split_lines(new_text), display_path, context
    )


def _changed(touched: list[_Block], line_count: int) -> tuple[LineRange, ...]:
    """The original lines the blocks touch, merged; an insertion names the line after it."""
    merged: list[LineRange] = []
    for start, end, _ in sorted(touched, key=lambda block: (block.start, block.end)):
        if end > start:
            first, last = start, end - 1
        else:
            first = last = min(start, max(line_count - 1, 0))
        if merged and first <= merged[-1].end + 1:
            prev = merged.pop()
            first, last = prev.start, max(last, prev.end)
        merged.append(LineRange(first, last))
    return tuple(merged)
