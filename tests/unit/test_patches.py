"""The patch gate on replies as models write them: accepted shapes, every refusal, exact edits."""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Sequence
from itertools import pairwise

import pytest
from tree_sitter import Node, Parser, Tree

from ace_lsp.orchestrator.code import languages, patches, secrets
from ace_lsp.orchestrator.code.languages import LanguageSpec, parser, resolve
from ace_lsp.orchestrator.code.patches import (
    ContextMismatch,
    MalformedDiff,
    MultipleFiles,
    NoChange,
    NoDiff,
    OutOfRange,
    Patch,
    PatchError,
    SyntaxBroken,
    TooLarge,
    WritesMasked,
    WrongFile,
    unified_diff,
    validate,
)
from ace_lsp.orchestrator.types import LineRange, Position, TextEdit, TextRange

PY = (
    "import os\n"  # 1
    "\n"
    "\n"
    "def area(w, h):\n"  # 4
    "    total = w * h\n"
    "    return total\n"  # 6
    "\n"
    "\n"
    "def volume(w, h, d):\n"  # 9
    "    total = w * h * d\n"
    "    return total\n"  # 11
    "\n"
    "\n"
    "def main():\n"  # 14
    "    print(area(2, 3))\n"
    "    print(volume(2, 3, 4))\n"  # 16
    "    return 0\n"
)
WHOLE = LineRange(0, 16)
HUNK5 = " def area(w, h):\n-    total = w * h\n+    total = abs(w * h)\n     return total\n"
FIX5 = PY.replace("total = w * h\n", "total = abs(w * h)\n")
HUNK16 = "-    print(volume(2, 3, 4))\n+    print(volume(2, 3, 5))\n"
FIX16 = PY.replace("3, 4)", "3, 5)")
HUNK9 = "-def volume(w, h, d):\n+def volume(w, h, d=1):\n"


def offset(text: str, pos: Position) -> int:
    """Index of an LSP position; lines end at "\\n" and a CRLF's "\\r" is not addressable."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    assert 0 <= pos.line < len(starts), pos
    start = starts[pos.line]
    end = starts[pos.line + 1] - 1 if pos.line + 1 < len(starts) else len(text)
    line = text[start:end]
    if end < len(text) and line.endswith("\r"):
        line = line[:-1]
    units = 0
    for i, ch in enumerate(line):
        if units == pos.character:
            return start + i
        assert units < pos.character, f"{pos} splits a surrogate pair"
        units += 2 if ord(ch) > 0xFFFF else 1
    assert units == pos.character, f"{pos} is past the end of its line"
    return start + len(line)


def apply_lsp(text: str, edits: Sequence[TextEdit]) -> str:
    """Apply LSP edits as an editor does, refusing overlaps, disorder and invalid positions."""
    spans = [(offset(text, e.range.start), offset(text, e.range.end), e.new_text) for e in edits]
    for (start, end, _), (after, _, _) in pairwise(spans):
        assert start <= end <= after, "edits overlap or are out of order"
    for start, end, new in reversed(spans):
        assert start <= end
        text = text[:start] + new + text[end:]
    return text


def check(original: str, patch: Patch, expected: str, display: str = "x.py") -> None:
    assert patch.new_text == expected
    assert apply_lsp(original, patch.edits) == expected
    assert patch.diff == unified_diff(original, expected, display)
    assert patch.hunks == patch.diff.count("\n@@ ") > 0


def fenced(body: str, before: str = "Here is the fix:\n\n", after: str = "\nDone.\n") -> str:
    return f"{before}```diff\n{body}```\n{after}"


def sentence(message: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][^\n]*\.", message)) and not re.search(r"[.;!?] [A-Z]", message)


HEADERS = "--- a/x.py\n+++ b/x.py\n"
ACCEPTED = [
    pytest.param(fenced(f"{HEADERS}@@ -4,3 +4,3 @@\n{HUNK5}"), FIX5, id="fenced-prose"),
    pytest.param(f"```patch\n{HEADERS}@@ -4,3 +4,3 @@\n{HUNK5}```", FIX5, id="patch-fence"),
    pytest.param(f"```\n@@ -4,3 +4,3 @@\n{HUNK5}```\n", FIX5, id="plain-fence-no-header"),
    pytest.param(f"Sure.\n{HEADERS}@@ -4,3 +4,3 @@\n{HUNK5}It works.\n", FIX5, id="bare-prose"),
    pytest.param(
        "diff --git a/x.py b/x.py\nindex 83db48f..bf269f4 100644\n"
        f"{HEADERS}@@ -4,3 +4,3 @@\n{HUNK5}",
        FIX5,
        id="git-header",
    ),
    pytest.param(f"--- x.py\n+++ x.py\n@@ -4,3 +4,3 @@\n{HUNK5}", FIX5, id="no-ab-prefix"),
    pytest.param(f"--- a/src/x.py\n+++ b/src/x.py\n@@ -4,3 +4,3 @@\n{HUNK5}", FIX5, id="subdir"),
    pytest.param(
        "--- x.py\t2024-05-01 10:00:00.000 +0200\n+++ x.py\t2024-05-01 10:01:00.000 +0200\n"
        f"@@ -4,3 +4,3 @@\n{HUNK5}",
        FIX5,
        id="timestamps",
    ),
    pytest.param(fenced(f"@@ -4,9 +4,12 @@\n{HUNK5}"), FIX5, id="counts-too-many"),
    pytest.param(fenced(f"@@ -4,1 +4,1 @@\n{HUNK5}"), FIX5, id="counts-too-few"),
    pytest.param(fenced(f"@@ -4,3 +4,3 @@ def area(w, h):\n{HUNK5}"), FIX5, id="section-header"),
    pytest.param(fenced(f"@@ ... @@\n{HUNK5}"), FIX5, id="header-dots"),
    pytest.param(fenced(f"@@\n{HUNK5}"), FIX5, id="header-bare"),
    pytest.param(fenced(f"@@ -7,3 +7,3 @@\n{HUNK5}"), FIX5, id="drift-plus-3"),
    pytest.param(fenced(f"@@ -11 +11 @@\n{HUNK16}"), FIX16, id="drift-minus-5"),
    pytest.param(
        fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}@@ -15,2 +15,2 @@\n     print(area(2, 3))\n{HUNK16}"),
        FIX5.replace("3, 4)", "3, 5)"),
        id="two-hunks",
    ),
    pytest.param(
        fenced(f"@@ -16 +16 @@\n{HUNK16}") + fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}", before="Also:\n"),
        FIX5.replace("3, 4)", "3, 5)"),
        id="two-fences-merged-in-file-order",
    ),
    pytest.param(fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}") * 2, FIX5, id="same-fence-twice"),
    pytest.param(
        fenced("@@ -6,4 +6,4 @@\n     return total\n\n\n" + HUNK9),
        PY.replace("d):", "d=1):"),
        id="blank-context-without-space",
    ),
    pytest.param(fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}\n\n\n"), FIX5, id="trailing-blank-lines"),
    pytest.param(fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}").replace("\n", "\r\n"), FIX5, id="crlf-reply"),
    pytest.param(
        fenced("-    total = w * h\n+    total = abs(w * h)\n"), FIX5, id="no-hunk-header"
    ),
    pytest.param(
        "1. Apply this:\n   ```diff\n   @@ -4,3 +4,3 @@\n"
        + "".join(f"   {line}\n" for line in HUNK5.splitlines())
        + "   ```\n",
        FIX5,
        id="indented-fence",
    ),
    pytest.param(
        fenced("@@ -1,0 +2,1 @@\n+import sys\n"),
        PY.replace("os\n", "os\nimport sys\n"),
        id="insert",
    ),
]


@pytest.mark.parametrize(("reply", "expected"), ACCEPTED)
def test_accepts_replies_as_models_write_them(reply: str, expected: str) -> None:
    check(PY, validate(PY, reply, WHOLE, path="/home/me/proj/src/x.py"), expected)


def test_minimal_edit_and_metadata() -> None:
    reply = fenced(f"@@ -4,3 +4,3 @@\n{HUNK5}@@ -16 +16 @@\n{HUNK16}")
    patch = validate(
        PY, reply, [LineRange(4, 4), LineRange(15, 15)], path="x.py", display_path="s/x.py"
    )
    assert patch.edits == (
        TextEdit(TextRange(Position(4, 12), Position(4, 17)), "abs(w * h)"),
        TextEdit(TextRange(Position(15, 23), Position(15, 24)), "5"),
    )
    assert patch.changed == (LineRange(4, 4), LineRange(15, 15))
    assert patch.hunks == 2
    assert patch.diff.startswith("--- a/s/x.py\n+++ b/s/x.py\n@@ -2,7 +2,7 @@\n")


def test_nearest_of_two_identical_contexts_wins() -> None:
    reply = fenced("@@ -12,2 +12,2 @@\n-    return total\n+    return int(total)\n")
    patch = validate(PY, reply, WHOLE, path="x.py")
    check(PY, patch, PY.replace("d\n    return total", "d\n    return int(total)"))
    assert patch.changed == (LineRange(10, 10),)


def test_unnumbered_hunk_disambiguated_by_allowed_lines() -> None:
    reply = fenced("@@\n-    return total\n+    return int(total)\n")
    expected = PY.replace("h\n    return total", "h\n    return int(total)")
    check(PY, validate(PY, reply, LineRange(3, 6), path="x.py"), expected)
    with pytest.raises(ContextMismatch, match="matches the file at lines 6, 11;"):
        validate(PY, reply, WHOLE, path="x.py")


GO = "package main\n\nfunc main() {\n\tx := 1\n\tfmt.Println(x)\n}\n"
MAKE = "all: app\n\napp: main.c\n\tcc -o app main.c\n"
DOC = '"""Example:\n\n```\nf()\n```\n"""\nx = 1\n'


@pytest.mark.parametrize(
    ("original", "reply", "path", "expected"),
    [
        pytest.param(
            GO,
            fenced(
                "@@ -3,4 +3,4 @@\n func main() {\n-\tx := 1\n+\tx := 2\n \tfmt.Println(x)\n }\n"
            ),
            "main.go",
            GO.replace("1", "2"),
            id="go-tabs",
        ),
        pytest.param(
            MAKE,
            fenced("@@ -3,2 +3,2 @@\n app: main.c\n-\tcc -o app main.c\n+\tcc -O2 -o app main.c\n"),
            "Makefile",
            MAKE.replace("cc -o", "cc -O2 -o"),
            id="makefile-tabs",
        ),
        pytest.param(
            "-- old\nSELECT 1;\n",
            "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,2 @@\n--- old\n+++ new\n SELECT 1;\n",
            "q.sql",
            "++ new\nSELECT 1;\n",
            id="body-lines-that-look-like-headers",
        ),
        pytest.param(
            DOC,
            fenced('@@ -4,4 +4,4 @@\n f()\n ```\n """\n-x = 1\n+x = 2\n'),
            "doc.py",
            DOC.replace("x = 1", "x = 2"),
            id="fence-inside-the-diffed-text",
        ),
    ],
)
def test_other_texts(original: str, reply: str, path: str, expected: str) -> None:
    whole = LineRange(0, original.count("\n"))
    check(original, validate(original, reply, whole, path=path), expected, path)


def test_utf16_positions_after_non_ascii() -> None:
    original = "x = 1\ns = 'é😀中' + name\n"
    reply = fenced("@@ -2 +2 @@\n-s = 'é😀中' + name\n+s = 'é😀中' + other\n")
    patch = validate(original, reply, WHOLE, path="x.py")
    check(original, patch, original.replace("name", "other"))
    # s, space, =, space, quote, é, 😀 (2 units), 中, quote, space, +, space: 13 units
    assert patch.edits == (TextEdit(TextRange(Position(1, 13), Position(1, 17)), "other"),)


def test_crlf_file_stays_crlf() -> None:
    original = PY.replace("\n", "\r\n")
    reply = fenced(f"@@ -4,3 +4,4 @@\n{HUNK5}+    assert total >= 0\n")
    expected = FIX5.replace("n total\n", "n total\n    assert total >= 0\n", 1)
    patch = validate(original, reply, WHOLE, path="x.py")
    check(original, patch, expected.replace("\n", "\r\n"))
    assert "\n" not in patch.new_text.replace("\r\n", "")


def test_mixed_endings_new_lines_follow_their_neighbours() -> None:
    original = "a = 1\r\nb = 2\r\nc = 3\r\nd = 4\n"
    reply = fenced("@@ -3,2 +3,3 @@\n c = 3\n d = 4\n+e = 5\n")
    check(original, validate(original, reply, WHOLE, path="x.py"), original + "e = 5\n")


NO_EOL = "a = 1\nb = 2"
MARKER = "\\ No newline at end of file\n"


@pytest.mark.parametrize(
    ("original", "body", "expected"),
    [
        pytest.param(NO_EOL, "@@ -2 +2 @@\n-b = 2\n+b = 3\n", "a = 1\nb = 3", id="kept-absent"),
        pytest.param(f"{NO_EOL}\n", "@@ -2 +2 @@\n-b = 2\n+b = 3\n", "a = 1\nb = 3\n", id="kept"),
        pytest.param(NO_EOL, "@@ -2 +2,2 @@\n b = 2\n+c = 3\n", "a = 1\nb = 2\nc = 3", id="append"),
        pytest.param(
            "a = 1\r\nb = 2",
            "@@ -2 +2,2 @@\n b = 2\n+c = 3\n",
            "a = 1\r\nb = 2\r\nc = 3",
            id="crlf",
        ),
        pytest.param(NO_EOL, f"@@ -2 +2 @@\n-b = 2\n{MARKER}+b = 3\n", "a = 1\nb = 3\n", id="add"),
        pytest.param(
            f"{NO_EOL}\n", f"@@ -2 +2 @@\n-b = 2\n+b = 3\n{MARKER}", "a = 1\nb = 3", id="drop"
        ),
        pytest.param(NO_EOL, "@@ -1,2 +1 @@\n a = 1\n-b = 2\n", "a = 1", id="delete-last"),
    ],
)
def test_final_newline(original: str, body: str, expected: str) -> None:
    check(original, validate(original, fenced(body), WHOLE, path="x.py"), expected)


def hunk5(header: str = "@@ -4,3 +4,3 @@") -> str:
    return f"{header}\n{HUNK5}"


REFUSALS = [
    pytest.param("The code looks correct to me.", WHOLE, NoDiff, "no unified diff", id="prose"),
    pytest.param(
        f"```python\n{FIX5}```\n```python\n{FIX16}```\n",
        WHOLE,
        NoDiff,
        "2 code blocks and no diff",
        id="two-code-blocks",
    ),
    pytest.param(
        fenced(f"{hunk5()}...\n{HUNK16}"), WHOLE, MalformedDiff, "continues a hunk", id="elision"
    ),
    pytest.param(
        fenced("@@\n+import sys\n"), WHOLE, MalformedDiff, "after which line", id="add-no-number"
    ),
    pytest.param(
        fenced("@@ -1 +2 @@\n+import sys\n"), WHOLE, MalformedDiff, "-L,0", id="add-count-not-0"
    ),
    pytest.param(
        fenced("@@ -4,3 +4,3 @@\n"), WHOLE, MalformedDiff, "hunk 1 has no lines", id="empty"
    ),
    pytest.param(
        fenced(f"--- a/x.py\n+++ /dev/null\n{hunk5()}"),
        WHOLE,
        MalformedDiff,
        "deletes x.py",
        id="rm",
    ),
    pytest.param(
        fenced("--- /dev/null\n+++ b/x.py\n@@ -0,0 +1 @@\n+x = 1\n"),
        WHOLE,
        MalformedDiff,
        "creates x.py",
        id="create-existing",
    ),
    pytest.param(
        fenced(f"--- a/y.py\n+++ b/y.py\n{hunk5()}"),
        WHOLE,
        WrongFile,
        "edits y.py, not x.py",
        id="y",
    ),
    pytest.param(
        fenced(f"{HEADERS}{hunk5()}--- a/y.py\n+++ b/y.py\n{hunk5()}"),
        WHOLE,
        MultipleFiles,
        "2 files (x.py, y.py)",
        id="two-files",
    ),
    pytest.param(
        fenced(hunk5()),
        [LineRange(0, 1), LineRange(9, 16)],
        OutOfRange,
        "changes line 5, outside the allowed lines 1-2 and 10-17;",
        id="change-outside",
    ),
    pytest.param(
        fenced("@@ -6,0 +7 @@\n+    # note\n"),
        LineRange(4, 4),
        OutOfRange,
        "inserts lines after line 6, outside the allowed line 5;",
        id="insert-at-end-plus-2",
    ),
    pytest.param(
        fenced(hunk5().replace(" def area(w, h):", " def area(w, h) :")),
        WHOLE,
        ContextMismatch,
        "Hunk 1 does not match the file near line 4;",
        id="one-char-off",
    ),
    pytest.param(
        fenced(f"{hunk5()}@@ -16 +16 @@\n{HUNK16.replace('3, 4', '3, 9')}"),
        WHOLE,
        ContextMismatch,
        "Hunk 2 does not match the file near line 16;",
        id="second-hunk",
    ),
    pytest.param(
        fenced(f"@@ -17 +17 @@\n-    return 0\n{MARKER}+    return 1\n"),
        WHOLE,
        ContextMismatch,
        "ends the file without a newline, but it does not",
        id="wrong-marker",
    ),
    pytest.param(
        fenced("@@ -15 +15 @@\n-    print(area(2, 3))\n+    print(area(2, 3)\n"),
        WHOLE,
        SyntaxBroken,
        "new syntax error",
        id="drops-paren",
    ),
    pytest.param(
        fenced("@@ -5 +5 @@\n-    total = w * h\n+    total = w * h\n"),
        WHOLE,
        NoChange,
        "leaves the file unchanged",
        id="same-line",
    ),
    pytest.param(
        fenced("@@ -4,2 +4,2 @@\n def area(w, h):\n     total = w * h\n"),
        WHOLE,
        NoChange,
        "leaves the file unchanged",
        id="context-only",
    ),
    pytest.param(
        fenced("@@ -5 +5 @@\n-    total = w * h\n+    total = «masked:secret»•••\n"),
        WHOLE,
        WritesMasked,
        "masked secret's placeholder",
        id="writes-a-placeholder-label",
    ),
    pytest.param(
        fenced(f"@@ -5,0 +6 @@\n+    key = '{'•' * 64}'\n"),
        WHOLE,
        WritesMasked,
        "leave the lines with secrets unchanged",
        id="writes-a-mask-run",
    ),
    pytest.param(
        fenced("@@ -5,0 +6 @@\n" + "+    pass\n" * 10_001),
        WHOLE,
        TooLarge,
        "adds more than 10,000 lines",
        id="adds-too-many-lines",
    ),
]


@pytest.mark.parametrize(("reply", "allowed", "error", "fragment"), REFUSALS)
def test_refusals(
    reply: str, allowed: LineRange | list[LineRange], error: type[PatchError], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        validate(PY, reply, allowed, path="src/x.py")
    assert type(caught.value) is error
    assert caught.value.refusal == REFUSAL[error]
    assert caught.value.kind == "invalid_patch"
    assert str(caught.value) == caught.value.reason
    assert fragment in caught.value.reason
    assert sentence(str(caught.value)), str(caught.value)


REFUSAL = {
    NoDiff: "no_diff",
    MalformedDiff: "malformed_diff",
    WrongFile: "wrong_file",
    MultipleFiles: "multiple_files",
    OutOfRange: "out_of_range",
    ContextMismatch: "context_mismatch",
    SyntaxBroken: "syntax_error",
    NoChange: "no_change",
    TooLarge: "too_large",
    WritesMasked: "writes_masked_secret",
}


def test_refusal_names_and_sentences() -> None:
    assert all(error.refusal == name for error, name in REFUSAL.items())
    assert all(issubclass(error, PatchError) for error in REFUSAL)
    assert sentence("The diff is fine; really.")
    assert not sentence("Two. Sentences.") and not sentence("lower.") and not sentence("No stop")


# What secrets.mask() leaves of a secret, as a model sees it: a line that writes it back is refused.
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw\n"
SECRET_LINES = [
    pytest.param("", 'API_KEY = "sk-proj-' + "a1" * 20 + '"', id="openai-key-label"),
    pytest.param("", 'password = "hunter22"', id="short-password-bullets-only"),
    pytest.param("", 'token: "ghp_' + "A1b2" * 9 + '"', id="github-token"),
    pytest.param(PEM, "AB==", id="pem-last-line-four-bullets"),
]


@pytest.mark.parametrize(("before", "line"), SECRET_LINES)
def test_a_diff_that_writes_a_masked_secret_back_is_refused(before: str, line: str) -> None:
    after = "-----END PRIVATE KEY-----\n" if before else ""
    original = f"{before}{line}\n{after}x = 1\n"
    at = before.count("\n")  # 0-based line of `line`
    masked = secrets.mask(original).text.split("\n")[at]
    assert masked != line  # the masker found it (what the model was shown instead)
    n = original.count("\n")  # 1-based line of "x = 1"
    for reply in (
        f"@@ -{n} +{n},2 @@\n x = 1\n+{masked}\n",  # a copy of the masked line
        f"@@ -{at + 1} +{at + 1} @@\n-{line}\n+{masked}\n",  # the line "fixed"
    ):
        with pytest.raises(WritesMasked, match="placeholder"):
            validate(original, reply, LineRange(0, n - 1), path="x.py")


def test_the_mask_markers_are_what_secrets_writes() -> None:
    assert secrets.placeholder("openai-key", 40).startswith(patches.MASK_LABEL)
    assert patches.MASK_RUN in secrets.placeholder("secret", 8)  # shorter than its label
    assert patches.MASK_RUN == secrets.MASK * 4


def test_bullets_the_file_already_has_are_its_own_text() -> None:
    original = 'a = 1\nhint = "••••••••"\nlabel = "«masked:demo»"\n'
    reply = '@@ -1,3 +1,3 @@\n-a = 1\n-hint = "••••••••"\n+a = 2\n+hint = "••••••••"\n label = "«masked:demo»"\n'
    patch = validate(original, reply, LineRange(0, 2), path="x.py")
    assert patch.new_text == original.replace("a = 1", "a = 2")
    one_bullet = validate(
        original, "@@ -1 +1 @@\n-a = 1\n+a = 1  # • step\n", LineRange(0, 0), path="x.py"
    )
    assert "• step" in one_bullet.new_text  # one bullet is punctuation, not a placeholder


def test_insert_allowed_at_end_plus_one() -> None:
    patch = validate(PY, fenced("@@ -5,0 +6 @@\n+    # note\n"), LineRange(4, 4), path="x.py")
    check(PY, patch, PY.replace("w * h\n", "w * h\n    # note\n", 1))
    assert patch.changed == (LineRange(5, 5),)


BROKEN = "def broken(:\n    pass\n\n\nx = [1, 2]\ny = 3\n"


@pytest.mark.parametrize("with_tree", [False, True])
def test_existing_syntax_error_does_not_block_a_clean_fix(with_tree: bool) -> None:
    tree = parser(python()).parse(BROKEN.encode()) if with_tree else None
    reply = fenced("@@ -6 +6 @@\n-y = 3\n+y = 4\n")
    patch = validate(BROKEN, reply, WHOLE, path="x.py", original_tree=tree)
    check(BROKEN, patch, BROKEN.replace("3", "4"))
    if tree is not None:
        assert tree.root_node.end_byte == len(BROKEN)  # the caller's tree is not edited


@pytest.mark.parametrize("with_tree", [False, True])
def test_new_syntax_error_is_counted_and_located(with_tree: bool) -> None:
    tree = parser(python()).parse(BROKEN.encode()) if with_tree else None
    reply = fenced("@@ -5 +5 @@\n-x = [1, 2]\n+x = [1, 2\n")
    with pytest.raises(SyntaxBroken, match=r"has 1 new syntax error, at line 5;"):
        validate(BROKEN, reply, WHOLE, path="x.py", original_tree=tree)


def test_no_grammar_no_syntax_check() -> None:
    reply = fenced("@@ -1 +1 @@\n-a = (1)\n+a = (1\n")
    assert validate("a = (1)\n", reply, WHOLE, path="notes.txt").new_text == "a = (1\n"


def python() -> LanguageSpec:
    spec = resolve("python")
    assert spec is not None
    return spec


ROUND_TRIPS = [
    pytest.param("a = 1\nb = 2\n", "a = 1\nb = 3\n", id="simple"),
    pytest.param("a = 1\r\nb = 2\r\n", "a = 1\r\nb = 3\r\nc = 4\r\n", id="crlf"),
    pytest.param("a = 1\r\nb = 2\r\nc = 3\n", "a = 1\nb = 2\r\nc = 3\r\n", id="mixed-endings"),
    pytest.param("a = 1\nb = 2", "a = 1\nb = 3", id="no-final-newline"),
    pytest.param("a = 1\nb = 2", "a = 1\nb = 2\n", id="adds-final-newline"),
    pytest.param("a = 1\nb = 2\n", "a = 1\nb = 2", id="drops-final-newline"),
    pytest.param("", "a = 1\n", id="from-empty"),
    pytest.param("", "a = 1", id="from-empty-no-newline"),
    pytest.param("a = 1\n", "", id="to-empty"),
    pytest.param("x = 1", "y = 2", id="single-line"),
    pytest.param("s = 'é'\nt = '😀中'\n", "s = 'è'\nt = '😀中文'\n", id="non-ascii"),
    pytest.param("a = 1\n" * 10, "a = 1\n" * 4 + "b = 2\n" + "a = 1\n" * 6, id="repeated-lines"),
    pytest.param(
        "x = '''\n--- a\n+++ b\n@@\n```\n'''\n",
        "x = '''\n-- a\n++ b\n@@ @@\n```\n'''\n",
        id="diff-like-lines",
    ),
    pytest.param("a = 1\n\n\nb = 2\n", "a = 1\n\n\nb = 2\n\n", id="blank-lines"),
]


@pytest.mark.parametrize(("original", "new"), ROUND_TRIPS)
def test_unified_diff_round_trips(original: str, new: str) -> None:
    diff = unified_diff(original, new, "x.py")
    assert diff.startswith("--- a/x.py\n+++ b/x.py\n@@ -")
    whole = LineRange(0, original.count("\n"))
    check(original, validate(original, diff, whole, path="x.py"), new)


def test_unified_diff_format_is_difflibs() -> None:
    a, b = "x = 1\ny = 2\n", "x = 1\ny = 3\nz = 4\n"
    lines = difflib.unified_diff(a.splitlines(True), b.splitlines(True), "a/x.py", "b/x.py")
    assert unified_diff(a, b, "x.py") == "".join(lines)
    assert unified_diff("", "x\n", "x.py") == "--- a/x.py\n+++ b/x.py\n@@ -0,0 +1 @@\n+x\n"
    assert unified_diff("x\n", "x\n", "x.py") == ""
    assert unified_diff("x", "y", "x.py").endswith(f"-x\n{MARKER}+y\n{MARKER}")


PIECES = ["a", "b", "", " ", "\t", "é", "😀", "x\ry", "--- a", "+++ b", "@@", "\\ No", "```", "-"]


def random_text(rng: random.Random) -> str:
    lines = [rng.choice(PIECES) + rng.choice(["", "1"]) for _ in range(rng.randrange(0, 12))]
    text = "".join(line + rng.choice(["\n", "\n", "\r\n"]) for line in lines)
    return text[: -rng.choice([1, 2])] if text and rng.random() < 0.3 else text


def mutate(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randrange(1, 3)):
        i = rng.randrange(len(lines) + 1)
        if rng.random() < 0.4:
            lines.insert(i, rng.choice(PIECES))
        elif i < len(lines):
            lines[i] = lines[i] + rng.choice(PIECES) if rng.random() < 0.5 else ""
    return "\n".join(lines)


def test_round_trip_on_random_texts() -> None:
    rng = random.Random(20240501)
    for _ in range(500):
        original = random_text(rng)
        new = random_text(rng) if rng.random() < 0.3 else mutate(rng, original)
        diff = unified_diff(original, new, "x.txt")
        if original == new:
            assert diff == ""
            continue
        patch = validate(original, diff, LineRange(0, original.count("\n")), path="x.txt")
        assert patch.new_text == new, (original, new, diff)
        assert apply_lsp(original, patch.edits) == new
        assert patch.diff == diff


EMOJI = "".join(f"s{i} = '😀é中{i}'\nt{i} = (s{i}, 1)\n" for i in range(30))


def shape(node: Node) -> list[tuple[object, ...]]:
    out = [(node.type, node.byte_range, tuple(node.start_point), tuple(node.end_point))]
    for child in node.children:
        out += shape(child)
    return out


class CheckedParser:
    """A parser whose incremental parses must equal fresh ones: proves the tree edits exact."""

    def __init__(self, real: Parser) -> None:
        self.real, self.language, self.incremental = real, real.language, 0

    def parse(self, data: bytes, old_tree: Tree | None = None) -> Tree:
        tree = self.real.parse(data, old_tree)
        if old_tree is not None:
            assert shape(tree.root_node) == shape(self.real.parse(data).root_node)
            self.incremental += 1
        return tree


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        pytest.param([("t20 = (s20, 1)", "t20 = [s20, 2]")], False, id="clean"),
        pytest.param([("t20 = (s20, 1)", "t20 = (s20, 1")], True, id="broken"),
        pytest.param([("s20 = '😀é中20'", "s20 = '😀é中20' + 'ü'")], False, id="non-ascii-change"),
        pytest.param([("(s20, 1)", "(s20 + 'é😀', 1)")], False, id="mid-line"),
        pytest.param(
            [("s3 = '😀é中3'\nt3", "t3"), ("t9 = (s9, 1)", "t9 = (s9,\n  '😀')")],
            False,
            id="two-edits-lines-removed-and-added",
        ),
    ],
)
def test_incremental_parse_is_exact(
    changes: list[tuple[str, str]], refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = CheckedParser(parser(python()))
    monkeypatch.setattr(languages, "parser", lambda spec: checked)
    tree = checked.real.parse(EMOJI.encode())
    expected = EMOJI
    for old, new in changes:
        expected = expected.replace(old, new)
    reply = unified_diff(EMOJI, expected, "x.py")
    if refused:
        with pytest.raises(SyntaxBroken, match="at line 42;"):
            validate(EMOJI, reply, LineRange(0, 59), path="x.py", original_tree=tree)
    else:
        patch = validate(EMOJI, reply, LineRange(0, 59), path="x.py", original_tree=tree)
        check(EMOJI, patch, expected)
    assert checked.incremental == 1
