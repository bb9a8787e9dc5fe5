"""Diff text both ways: finding the diff in a model's reply, and writing the normalized diff.

Models wrap diffs in fences or prose, miscount hunk headers, drop the space of blank context
lines and omit file headers; this module reads all of that, recounts every hunk and has
`unidiff` parse the normalized text, so `patches` only ever sees well-formed hunks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

# unidiff >= 0.7.6 ships types, older releases do not: the ignore serves both
from unidiff.errors import UnidiffParseError  # type: ignore[import-untyped, unused-ignore]
from unidiff.patch import PatchSet  # type: ignore[import-untyped, unused-ignore]

from ace_lsp.orchestrator.caps import MAX_ADDED_LINES

# Every pattern reads model text, so each is linear (Python 3.10 has no possessive quantifiers):
# a fence is its opening alone, the rest of its line is checked for backticks by `_fence_at`
# (`[ \t]*…[^`]*$` retried every split of a line's blanks), and a timestamp starts only where a
# run of blanks starts (`\s+` was tried from every blank of the run). Before, a 100 KB line of
# blanks took `_FENCE` 21 s and `_TIMESTAMP` 65 s.
_FENCE = re.compile(r"( {0,3})(`{3,}|~{3,})[ \t]*([^`\s]*)")
_NUMBERS = re.compile(r"^@@+\s*-(\d+)(?:,(\d+))?(?:\s+\+(\d+)(?:,(\d+))?)?")
_TIMESTAMP = re.compile(r"(?<!\s)\s+\d{4}-\d\d-\d\d[ T]\d\d:\d\d\S*(?:\s+[-+]\d{4})?\s*$")
_MAX_DIGITS = 9  # a line number or count in a hunk header; ACE's files have < 10**9 lines
_DIFF_INFOS = frozenset({"diff", "patch", "udiff", "git-diff"})
_DEV_NULL = "/dev/null"
_MARKER = "\\ No newline at end of file"
_ODD = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")  # str.splitlines breaks


class DiffFormatError(ValueError):
    """The reply holds a diff that cannot be read; the message is a clause, not a sentence."""


class DiffTooLarge(DiffFormatError):
    """The diff adds more than MAX_ADDED_LINES lines (or its hunk headers say so)."""


@dataclass(frozen=True)
class HunkLine:
    """One line of a hunk: context, removed or added, and its text."""

    tag: str  # " " context, "-" removed, "+" added
    text: str  # without prefix and "\n"; a CRLF line may keep its "\r"
    no_eol: bool = False  # followed by "\ No newline at end of file"


@dataclass(frozen=True)
class Hunk:
    """One hunk of a diff: where it starts in the old file, when its header says, and its lines."""

    number: int  # 1-based, in reply order, for messages
    old_start: int | None  # 0-based first old line (insertion point if none); None: find by context
    lines: tuple[HunkLine, ...]


@dataclass(frozen=True)
class FileDiff:
    """A diff's hunks for one file, and whether it creates or deletes that file."""

    name: str | None  # base name of the edited file; None when the hunks had no file header
    created: bool
    deleted: bool
    hunks: tuple[Hunk, ...]


def base_name(path: str) -> str:
    """The last part of `path`, split at either slash: the name a diff must give the file."""
    return re.split(r"[\\/]", path.rstrip("\\/"))[-1]


def _header_path(raw: str) -> str:
    name = _TIMESTAMP.sub("", raw.split("\t", 1)[0]).strip()
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return name


@dataclass
class _Section:
    old: str | None = None
    new: str | None = None
    git: str | None = None
    created: bool = False
    deleted: bool = False
    hunks: list[Hunk] = field(default_factory=list)
    fenced: bool = False  # found inside a fence (set when the scanner keeps it)

    def file_diff(self) -> FileDiff:
        new, old = self.new, self.old
        name = new if new and new != _DEV_NULL else old if old and old != _DEV_NULL else self.git
        created = self.created or old == _DEV_NULL
        deleted = self.deleted or new == _DEV_NULL
        return FileDiff(base_name(name) if name else None, created, deleted, tuple(self.hunks))


@dataclass
class _Building:
    number: int
    old_start: int | None
    counts: tuple[int, int] | None  # the header's counts, only to read "--- "/"+++ " body lines
    after: bool = False  # the header reads "-L,0": its lines go after line L
    lines: list[HunkLine] = field(default_factory=list)
    blanks: int = 0  # empty reply lines seen; context if more hunk lines follow
    old_lines: int = 0  # lines of `lines` on the old side (not "+") and on the new side (not "-")
    new_lines: int = 0

    def add(self, tag: str, text: str) -> None:
        self.flush()
        self.lines.append(HunkLine(tag, text))
        self.old_lines += tag != "+"
        self.new_lines += tag != "-"

    def flush(self) -> None:
        self.lines.extend(HunkLine(" ", "") for _ in range(self.blanks))
        self.old_lines += self.blanks
        self.new_lines += self.blanks
        self.blanks = 0

    def wants_more(self) -> bool:
        if self.counts is None:
            return False
        old_count, new_count = self.counts
        blanks = self.blanks
        return self.old_lines + blanks < old_count and self.new_lines + blanks < new_count


class _Fence(NamedTuple):
    indent: int  # spaces before the opening fence, taken off every line inside it
    marker: str  # the opening run of backticks or tildes; a closing one is at least as long
    says_diff: bool  # its info string names a diff ("diff", "patch", …)


class _Scanner:
    """One pass over the reply's lines: fences, file headers, hunks and the prose between them."""

    def __init__(self) -> None:
        self.sections: list[_Section] = []
        self.section: _Section | None = None
        self.header: _Section | None = None  # file header lines waiting for their first hunk
        self.hunk: _Building | None = None
        self.fence: _Fence | None = None
        self.fence_hunks = 0
        self.interrupted = False  # a hunk was ended by prose
        self.numbered = 0
        self.added = 0  # "+" lines read so far, in every hunk

    def scan(self, lines: Iterator[str]) -> None:
        skip = False
        raw = next(lines, None)
        lineno = 0
        while raw is not None:
            following = next(lines, None)  # one line of lookahead, for "---"/"+++" pairs
            lineno += 1
            if skip:
                skip = False
            else:
                indent = self.fence.indent if self.fence else 0
                line = _dedent(raw, indent)
                if not self._fence(line):
                    next_line = None if following is None else _dedent(following, indent)
                    skip = self._line(line, next_line, lineno)
            raw = following
        self._close()
        self._flush_header()

    def _fence(self, line: str) -> bool:
        if self.hunk is not None and line.startswith(" "):
            return False  # a context line of a Markdown file, not a fence
        if self.fence is None:
            opening = _fence_at(line)
            if not opening:
                return False
            self._close()
            self._flush_header()
            indent, marker, info = opening.groups()
            self.fence = _Fence(len(indent), marker, info.lower() in _DIFF_INFOS)
        else:
            marker = self.fence.marker
            body = line.strip(" \t")
            if body.strip(marker[0]) or len(body) < len(marker):
                return False
            self._close()
            self._flush_header()
            self.fence = None
        self.section, self.fence_hunks, self.interrupted = None, 0, False
        return True

    def _line(self, line: str, next_line: str | None, lineno: int) -> bool:
        """Read one line; True when it also consumed the next one (a "+++ " header)."""
        hunk = self.hunk
        if line.startswith("@@"):
            self._start(line)
            return False
        if line.startswith("diff "):
            self._close()
            self._flush_header()
            self.header = _Section(git=line.split()[-1] if line.startswith("diff --git ") else None)
            return False
        if line.startswith(("--- ", "+++ ")) and (hunk is None or not hunk.wants_more()):
            # a "---"/"+++" pair is a file header; a lone one only right before a hunk header
            if line[0] == "-" and next_line is not None and next_line.startswith("+++ "):
                self._close()
                head = self._head()
                head.old, head.new = _header_path(line[4:]), _header_path(next_line[4:])
                return True
            if hunk is None and next_line is not None and next_line.startswith("@@"):
                if line[0] == "-":
                    self._head().old = _header_path(line[4:])
                else:
                    self._head().new = _header_path(line[4:])
                return False
        if hunk is None and self.header is not None:
            if line.startswith("new file mode"):
                self.header.created = True
            elif line.startswith("deleted file mode"):
                self.header.deleted = True
            elif line.startswith(("Binary files", "GIT binary patch")):
                raise DiffFormatError("it is a binary patch")
        if hunk is not None:
            if not line:
                hunk.blanks += 1
            elif line[0] in " +-":
                if line[0] == "+":
                    self.added += 1
                    if self.added > MAX_ADDED_LINES:
                        raise DiffTooLarge(
                            f"it adds more than {MAX_ADDED_LINES:,} lines, the most a patch may add"
                        )
                hunk.add(line[0], line[1:])
            elif line[0] == "\\":
                hunk.flush()
                if not hunk.lines:
                    raise DiffFormatError(f"hunk {hunk.number} starts with a 'No newline' marker")
                last = hunk.lines[-1]
                hunk.lines[-1] = HunkLine(last.tag, last.text, True)
            else:
                self._close()
                self.interrupted = True
            return False
        if not line or line[0] not in " +-":
            return False
        if self.fence is not None and self.fence.says_diff and not self.fence_hunks:
            self._start("@@")  # a ```diff block with bare -/+ lines and no hunk header
            self._line(line, next_line, lineno)
        elif self.interrupted and (self.fence is not None or line[0] == "+"):
            raise DiffFormatError(
                f"line {lineno} of the reply continues a hunk after a line that is not part of it"
            )
        return False

    def _head(self) -> _Section:
        if self.header is None:
            self.header = _Section()
        return self.header

    def _flush_header(self) -> None:
        # a header without hunks still matters when it creates or deletes a file
        if self.header is not None and (self.header.created or self.header.deleted):
            self._keep(self.header)
        self.header = None

    def _keep(self, section: _Section) -> None:
        section.fenced = self.fence is not None
        self.sections.append(section)

    def _start(self, line: str) -> None:
        self._close()
        if self.header is not None:
            self.section, self.header = self.header, None
            self._keep(self.section)
        elif self.section is None:
            self.section = _Section()
            self._keep(self.section)
        self.numbered += 1
        hunk = self.hunk = _Building(self.numbered, None, None)
        numbers = _NUMBERS.match(line)
        if numbers:
            if max(len(digits or "") for digits in numbers.groups()) > _MAX_DIGITS:
                raise DiffFormatError(f"hunk {hunk.number}'s header has an impossible line number")
            old_first, old_count, new_first, new_count = numbers.groups()
            first = int(old_first)
            # "-L,0" names the line after which to insert; otherwise L is the first old line
            hunk.after = old_count == "0"
            hunk.old_start = first if hunk.after else max(first - 1, 0)
            if new_first is not None:
                hunk.counts = (int(old_count or 1), int(new_count or 1))
                if hunk.counts[1] - hunk.counts[0] > MAX_ADDED_LINES:
                    raise DiffTooLarge(
                        f"hunk {hunk.number}'s header says it adds "
                        f"{hunk.counts[1] - hunk.counts[0]:,} lines, over the "
                        f"{MAX_ADDED_LINES:,} a patch may add"
                    )
        self.interrupted = False
        self.fence_hunks += 1

    def _close(self) -> None:
        hunk, self.hunk = self.hunk, None
        if hunk is None:
            return
        if not hunk.lines:
            raise DiffFormatError(f"hunk {hunk.number} has no lines")
        _check_markers(hunk.number, hunk.lines)
        # with no old lines the header alone places the hunk, so it must be the exact "-L,0"
        insert = all(line.tag == "+" for line in hunk.lines)
        start = None if insert and not hunk.after else hunk.old_start
        assert self.section is not None
        self.section.hunks.append(Hunk(hunk.number, start, tuple(hunk.lines)))


def _fence_at(line: str) -> re.Match[str] | None:
    """An opening fence: up to 3 spaces, ``` or ~~~, an info string; no backtick after it."""
    opening = _FENCE.match(line)
    return opening if opening and "`" not in line[opening.end() :] else None


def _split(text: str) -> Iterator[str]:
    """`text.split("\\n")`, one line at a time: a refused diff never has all its lines in memory."""
    start = 0
    while (end := text.find("\n", start)) != -1:
        yield text[start:end]
        start = end + 1
    yield text[start:]


def _dedent(line: str, indent: int) -> str:
    """`line` of a fence indented by `indent` spaces, without that indentation (as Markdown)."""
    if not indent:
        return line
    body = line.lstrip(" ")
    return line[min(indent, len(line) - len(body)) :]


def _check_markers(number: int, lines: list[HunkLine]) -> None:
    for side in ("+", "-"):
        other_side = [line for line in lines if line.tag != side]
        if any(line.no_eol for line in other_side[:-1]):
            raise DiffFormatError(f"hunk {number} has a 'No newline' marker before its last line")


def parse_reply(reply: str) -> list[FileDiff]:
    """The file diffs in `reply`, one per file header; fenced diffs win over bare ones."""
    if "\r\n" in reply and reply.count("\r\n") == reply.count("\n"):
        reply = reply.replace("\r\n", "\n")  # the whole reply came with CRLF, not the diff lines
    scanner = _Scanner()
    scanner.scan(_split(reply))
    found = [
        section
        for section in scanner.sections
        if section.hunks or section.created or section.deleted
    ]
    if any(section.fenced for section in found):
        found = [section for section in found if section.fenced]
    return [section.file_diff() for section in found]


def normalize(hunks: tuple[Hunk, ...]) -> tuple[Hunk, ...]:
    """Recount the hunks into a well-formed unified diff and read it back through `unidiff`."""
    out = ["--- a/file\n", "+++ b/file\n"]
    for hunk in hunks:
        old_count = sum(1 for line in hunk.lines if line.tag != "+")
        start = 1 if hunk.old_start is None else hunk.old_start + (old_count > 0)
        new_count = sum(1 for line in hunk.lines if line.tag != "-")
        out.append(f"@@ -{start},{old_count} +{start},{new_count} @@\n")
        for line in hunk.lines:
            out.append(f"{line.tag}{line.text}\n")
            if line.no_eol:
                out.append(_MARKER + "\n")
    try:
        (parsed,) = PatchSet("".join(out))
    except (UnidiffParseError, ValueError) as exc:
        raise DiffFormatError(f"its hunks do not form a unified diff ({exc})") from exc
    if len(parsed) != len(hunks):
        raise DiffFormatError("its hunks do not form a unified diff")
    result = []
    for hunk, parsed_hunk in zip(hunks, parsed, strict=True):
        lines: list[HunkLine] = []
        for parsed_line in parsed_hunk:
            tag: str = parsed_line.line_type
            if tag == "\\":
                lines[-1] = HunkLine(lines[-1].tag, lines[-1].text, True)
            else:
                value: str = parsed_line.value
                lines.append(HunkLine(tag, value[:-1] if value.endswith("\n") else value))
        result.append(Hunk(hunk.number, hunk.old_start, tuple(lines)))
    return tuple(result)


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split at "\\n" only (a lone "\\r" is part of its line)."""
    if ("\r" in text and text.count("\r") != text.count("\r\n")) or any(c in text for c in _ODD):
        parts = text.split("\n")
        return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return text.splitlines(keepends=True)


def common_prefix(a: Sequence[object], b: Sequence[object], lo: int = 0) -> int:
    """Length of the common prefix, knowing the first `lo` items agree; compares C-speed slices."""
    hi = min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if a[lo:mid] == b[lo:mid] else (lo, mid - 1)
    return lo


def common_suffix(a: Sequence[object], b: Sequence[object], lo: int, limit: int) -> int:
    """Length of the common suffix up to `limit`, knowing the last `lo` items agree."""
    la, lb, hi = len(a), len(b), limit
    lo = min(lo, hi)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        same = a[la - mid : la - lo] == b[lb - mid : lb - lo]
        lo, hi = (mid, hi) if same else (lo, mid - 1)
    return lo


class _Opcode(NamedTuple):
    """One of difflib's opcodes: old lines [old_start, old_end) become new [new_start, new_end)."""

    tag: str  # "equal", "replace", "delete" or "insert"
    old_start: int
    old_end: int
    new_start: int
    new_end: int


def write_diff(
    old: list[str],
    new: list[str],
    path: str,
    context: int,
    head: int = 0,
    tail: int = 0,
    base: int = 0,
) -> str:
    """The unified diff of line lists `old` -> `new` (lines keep their endings), as difflib's.

    `head`/`tail` count lines known to agree at either end; `base` is the line number of old[0]
    and new[0] when they are windows of larger texts that agree outside them.
    """
    head = common_prefix(old, new, head)
    if head == len(old) == len(new):
        return ""
    tail = common_suffix(old, new, tail, min(len(old), len(new)) - head)
    old_end, new_end = len(old) - tail, len(new) - tail
    opcodes = [_Opcode("equal", 0, head, 0, head)] if head else []
    matcher = difflib.SequenceMatcher(None, old[head:old_end], new[head:new_end])
    for tag, old_from, old_to, new_from, new_to in matcher.get_opcodes():
        opcodes.append(_Opcode(tag, old_from + head, old_to + head, new_from + head, new_to + head))
    if tail:
        opcodes.append(_Opcode("equal", old_end, len(old), new_end, len(new)))
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    for group in _groups(opcodes, context):
        first, last = group[0], group[-1]
        old_range = _range(base + first.old_start, last.old_end - first.old_start)
        new_range = _range(base + first.new_start, last.new_end - first.new_start)
        out.append(f"@@ -{old_range} +{new_range} @@\n")
        for op in group:
            _emit(out, " " if op.tag == "equal" else "-", old[op.old_start : op.old_end])
            if op.tag != "equal":
                _emit(out, "+", new[op.new_start : op.new_end])
    return "".join(out)


def _groups(opcodes: list[_Opcode], context: int) -> list[list[_Opcode]]:
    """Opcodes grouped into hunks with `context` lines of context, as difflib groups them."""
    first = opcodes[0]
    if first.tag == "equal":
        opcodes[0] = first._replace(
            old_start=max(first.old_start, first.old_end - context),
            new_start=max(first.new_start, first.new_end - context),
        )
    last = opcodes[-1]  # the same opcode as the first when there is only one
    if last.tag == "equal":
        opcodes[-1] = last._replace(
            old_end=min(last.old_end, last.old_start + context),
            new_end=min(last.new_end, last.new_start + context),
        )
    groups: list[list[_Opcode]] = []
    group: list[_Opcode] = []
    for op in opcodes:
        if op.tag == "equal" and op.old_end - op.old_start > 2 * context:
            group.append(
                op._replace(
                    old_end=min(op.old_end, op.old_start + context),
                    new_end=min(op.new_end, op.new_start + context),
                )
            )
            groups.append(group)
            group = []
            op = op._replace(
                old_start=max(op.old_start, op.old_end - context),
                new_start=max(op.new_start, op.new_end - context),
            )
        group.append(op)
    groups.append(group)
    return [group for group in groups if any(op.tag != "equal" for op in group)]


def _range(start: int, length: int) -> str:
    """difflib's hunk range: "L" for one line, "L,N" for more, and "L,0" after line L for none."""
    if length == 1:
        return str(start + 1)
    return f"{start + (length > 0)},{length}"


def _emit(out: list[str], prefix: str, lines: list[str]) -> None:
    for line in lines:
        out.append(prefix + line if line.endswith("\n") else f"{prefix}{line}\n{_MARKER}\n")
