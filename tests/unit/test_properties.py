"""Properties of the patch gate and of position conversion, on hostile text: tabs, CRLF and LF
mixed, no final newline, é, CJK and astral characters (surrogate pairs in UTF-16).

A diff `unified_diff` writes applies back exactly, and its reverse restores the original; any
reply, however broken, either is refused with a PatchError or edits only the allowed lines;
positions survive every conversion the server makes.
"""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lsprotocol import types as lsp

from ace_lsp.orchestrator.code.patches import PatchError, unified_diff, validate
from ace_lsp.orchestrator.code.source import Source, utf16_len
from ace_lsp.orchestrator.types import LineRange, Position
from ace_lsp.server.positions import SourceLines, from_client, to_client
from tests.edits import apply_edits

# no example database: nothing written into the checkout; a failure prints its reproduce blob
QUIET = {"deadline": None, "database": None, "print_blob": True}
FAST = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], **QUIET)
FUZZ = settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], **QUIET)

CHARS = "ab z\t\té中文😀\U0001d518#-+@"  # U+1D518 (Fraktur U): astral
line_bodies = st.text(alphabet=CHARS, max_size=8)
endings = st.sampled_from(["\n", "\r\n"])


@st.composite
def texts(draw: st.DrawFn, max_lines: int = 8) -> str:
    """Lines ending in LF or CRLF (mixed), the last one perhaps without a newline."""
    lines = draw(st.lists(st.tuples(line_bodies, endings), max_size=max_lines))
    text = "".join(body + end for body, end in lines)
    if draw(st.booleans()):
        text += draw(line_bodies)  # no final newline (or an empty tail)
    return text


def split(text: str) -> list[str]:
    """Lines with their endings ("\\n" only splits; a CRLF keeps its "\\r")."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    return [*out, parts[-1]] if parts[-1] else out


@st.composite
def edited(draw: st.DrawFn, original: str) -> str:
    """`original` after a few line edits: replace, insert, delete, change an ending."""
    lines = split(original)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "ending", "tail"]))
        i = draw(st.integers(0, len(lines)))
        if op == "insert":
            lines.insert(i, draw(line_bodies) + draw(endings))
        elif op == "tail":  # toggle the final newline
            if lines and lines[-1].endswith("\n"):
                lines[-1] = lines[-1].rstrip("\r\n")
            elif lines:
                lines[-1] += draw(endings)
        elif i < len(lines):
            if op == "delete":
                del lines[i]
            elif op == "replace":
                end = lines[i][len(lines[i].rstrip("\r\n")) :]
                lines[i] = draw(line_bodies) + end
            else:
                body = lines[i].rstrip("\r\n")
                lines[i] = body + draw(endings)
    # a line that is not last must end in a newline
    for k in range(len(lines) - 1):
        if not lines[k].endswith("\n"):
            lines[k] += "\n"
    return "".join(lines)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[str, str]:
    original = draw(texts())
    new = draw(edited(original))
    assume(new != original)
    return original, new


def whole(text: str) -> LineRange:
    return LineRange(0, max(len(split(text)) - 1, 0))


# (a) a diff `unified_diff` writes applies exactly, both as new_text and as the LSP edits


@FAST
@given(pairs())
def test_written_diff_applies_exactly(pair: tuple[str, str]) -> None:
    original, new = pair
    patch = validate(original, unified_diff(original, new, "x.txt"), whole(original), path="x.txt")
    assert patch.new_text == new
    assert apply_edits(original, patch.edits) == new


# (b) a patch then its reverse restores the original exactly


@FAST
@given(pairs())
def test_patch_then_reverse_restores(pair: tuple[str, str]) -> None:
    original, new = pair
    forward = validate(
        original, unified_diff(original, new, "x.txt"), whole(original), path="x.txt"
    )
    after = apply_edits(original, forward.edits)
    back = validate(after, unified_diff(after, original, "x.txt"), whole(after), path="x.txt")
    assert back.new_text == original
    assert apply_edits(after, back.edits) == original
    # the patch's own normalized diff is a diff too: it applies to the original as well
    again = validate(original, forward.diff, whole(original), path="x.txt")
    assert again.new_text == new


# (c) a fuzzed reply is refused or stays inside the allowed lines

HEADERS = [
    "--- a/x.txt\n+++ b/x.txt\n",
    "--- x.txt\n+++ x.txt\n",
    "--- a/y.txt\n+++ b/y.txt\n",
    "--- /dev/null\n+++ b/x.txt\n",
    "--- a/x.txt\n+++ /dev/null\n",
    "+++ b/x.txt\n",
    "",
]
numbers = st.integers(-3, 12) | st.integers(-(2**70), 2**70)


@st.composite
def hunk_headers(draw: st.DrawFn) -> str:
    a, b, c, d = (draw(numbers) for _ in range(4))
    form = draw(
        st.sampled_from(["@@ -{a},{b} +{c},{d} @@", "@@ -{a} +{c} @@", "@@ -{a},{b} @@", "@@"])
    )
    return form.format(a=a, b=b, c=c, d=d) + draw(st.sampled_from(["\n", " f()\n", "\r\n"]))


@st.composite
def hunk_lines(draw: st.DrawFn, original: str) -> str:
    pool = [ln.rstrip("\n") for ln in split(original)] or [""]
    out = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(" -+\\?"))
        if kind == "\\":
            out.append("\\ No newline at end of file\n")
        elif kind == "?":
            out.append(draw(st.text(alphabet=CHARS + "\r", max_size=6)) + "\n")
        else:
            body = draw(st.sampled_from(pool) | line_bodies)
            out.append(kind + body + draw(st.sampled_from(["\n", "\r\n"])))
    return "".join(out)


@st.composite
def random_diffs(draw: st.DrawFn, original: str) -> str:
    body = draw(st.sampled_from(HEADERS))
    for _ in range(draw(st.integers(1, 3))):
        body += draw(hunk_headers()) + draw(hunk_lines(original))
    return body


@st.composite
def mutated_diffs(draw: st.DrawFn, original: str) -> str:
    new = draw(edited(original))
    lines = unified_diff(original, new, "x.txt").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(["drop", "dup", "retag", "renumber", "junk", "swap", "cut"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "retag":
            lines[i] = draw(st.sampled_from(" -+\\@")) + lines[i][1:]
        elif op == "renumber":
            lines[i] = draw(hunk_headers())
        elif op == "junk":
            lines.insert(i, draw(st.text(alphabet=CHARS + "\r\n", max_size=8)) + "\n")
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            lines = lines[:i]
    return "".join(lines)


@st.composite
def replies(draw: st.DrawFn, original: str) -> str:
    kind = draw(st.sampled_from(["junk", "random", "random", *["mutated"] * 5]))
    if kind == "junk":
        return draw(st.text(max_size=40))
    diff = draw(random_diffs(original) if kind == "random" else mutated_diffs(original))
    fence = draw(st.sampled_from([("", ""), ("```diff\n", "```\n"), ("Fix:\n```\n", "```\nDone.")]))
    return fence[0] + diff + fence[1]


@st.composite
def fuzz_cases(draw: st.DrawFn) -> tuple[str, LineRange, str]:
    original = draw(texts())
    n = max(len(split(original)), 1)
    start = draw(st.integers(0, n - 1))
    allowed = LineRange(start, draw(st.integers(start, n - 1)))
    return original, allowed, draw(replies(original))


def body(line: str) -> str:
    return line.rstrip("\n").removesuffix("\r")


@FUZZ
@given(fuzz_cases())
def test_fuzzed_reply_is_refused_or_stays_inside(case: tuple[str, LineRange, str]) -> None:
    original, allowed, reply = case
    try:
        patch = validate(original, reply, allowed, path="x.txt")
    except PatchError:
        return
    # anything else raised fails the test: a reply never breaks the gate
    assert apply_edits(original, patch.edits) == patch.new_text
    old = split(original)
    for r in patch.changed:
        # an insertion right after the last allowed line names that next line (the text checks
        # below show that line itself is kept)
        assert allowed.start <= r.start and r.end <= allowed.end + 1, (patch.changed, allowed)
    for e in patch.edits:
        assert allowed.start - 1 <= e.range.start.line, (e, allowed)
        assert e.range.end.line <= allowed.end + 1, (e, allowed)
    # lines before the allowed range keep their text (the one right before may lose its newline
    # when the file's last lines go); lines after it keep text and endings
    head, tail = old[: allowed.start], old[allowed.end + 1 :]
    kept = [body(x) for x in patch.new_text.split("\n")]  # "" for an empty last line too
    assert kept[: len(head)] == [body(x) for x in head]
    assert "".join(head[:-1]) == patch.new_text[: len("".join(head[:-1]))]
    if tail:
        assert patch.new_text.endswith("".join(tail))


# (d) positions round-trip through every conversion


@st.composite
def positions(draw: st.DrawFn) -> tuple[str, int, int]:
    """A text, a line in it, and a character index on that line (a character boundary)."""
    text = draw(texts())
    lines = [body(x) for x in split(text)] or [""]
    line = draw(st.integers(0, len(lines) - 1))
    return text, line, draw(st.integers(0, len(lines[line])))


@FAST
@given(positions())
def test_source_point_round_trip(case: tuple[str, int, int]) -> None:
    text, line, index = case
    source = Source(text)
    content = source.line_text(line)
    pos = Position(line, utf16_len(content[:index]))
    row, col = source.to_point(pos)
    assert (row, col) == (line, len(content[:index].encode("utf-8")))
    assert source.to_position(row, col) == pos
    assert source.to_byte(pos) == source.line_start_byte(line) + col


@FAST
@given(positions())
def test_client_positions_round_trip(case: tuple[str, int, int]) -> None:
    text, line, index = case
    source = Source(text)
    content = source.line_text(line)
    ace = Position(line, utf16_len(content[:index]))
    client_units = {
        lsp.PositionEncodingKind.Utf8: len(content[:index].encode("utf-8")),
        lsp.PositionEncodingKind.Utf16: utf16_len(content[:index]),
        lsp.PositionEncodingKind.Utf32: index,
    }
    for lines in (SourceLines(source), split(text) or [""]):
        for encoding, units in client_units.items():
            client = lsp.Position(line, units)
            assert from_client(lines, client, encoding) == ace, encoding
            assert to_client(lines, ace, encoding) == client, encoding
