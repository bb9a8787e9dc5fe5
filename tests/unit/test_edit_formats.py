"""Edit formats besides unified diffs (issue 14 §3): search/replace blocks and a rewritten span.

Each reply becomes a diff against the original and passes the same gate as a diff would, so the
rows check the resulting text, and that every refusal is one of the gate's own.
"""

from __future__ import annotations

import pytest

from ace_lsp.orchestrator.code import edit_formats
from ace_lsp.orchestrator.code.patches import (
    ContextMismatch,
    MalformedDiff,
    MultipleFiles,
    NoChange,
    NoDiff,
    OutOfRange,
    PatchError,
    SyntaxBroken,
    TooLarge,
    WrongFile,
    unified_diff,
    validate,
)
from ace_lsp.orchestrator.types import LineRange
from tests.unit.test_patches import PY, WHOLE, apply_lsp, sentence

AREA = LineRange(3, 5)  # def area ... return total
FIX5 = PY.replace("total = w * h\n", "total = abs(w * h)\n")
FIX10 = PY.replace("total = w * h * d\n", "total = abs(w * h * d)\n")
BOTH = FIX5.replace("total = w * h * d\n", "total = abs(w * h * d)\n")
SR5 = "<<<<<<< SEARCH\n    total = w * h\n=======\n    total = abs(w * h)\n>>>>>>> REPLACE\n"
SR10 = (
    "<<<<<<< SEARCH\n    total = w * h * d\n=======\n    total = abs(w * h * d)\n>>>>>>> REPLACE\n"
)
AREA_FIXED = "def area(w, h):\n    total = abs(w * h)\n    return total\n"
CRLF = PY.replace("\n", "\r\n")


def sr(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


ACCEPTED = [
    pytest.param(PY, SR5, WHOLE, FIX5, id="sr-bare"),
    pytest.param(PY, f"x.py\n{SR5}", WHOLE, FIX5, id="sr-filename-line"),
    pytest.param(PY, f"src/x.py\n```python\n{SR5}```\n", WHOLE, FIX5, id="sr-filename-fenced"),
    pytest.param(PY, f"Here is the fix:\n\n```\n{SR5}```\nDone.\n", WHOLE, FIX5, id="sr-prose"),
    pytest.param(PY, f"**x.py**\n{SR5}", WHOLE, FIX5, id="sr-bold-filename"),
    pytest.param(PY, f"x.py\n{SR5}\nx.py\n{SR10}", WHOLE, BOTH, id="sr-two-blocks"),
    pytest.param(
        PY,
        sr("total = w * h\nreturn total\n", "total = abs(w * h)\nreturn total\n"),
        WHOLE,
        FIX5,
        id="sr-indentation-dropped",
    ),
    pytest.param(
        PY,
        sr("        total = w * h\n", "        total = abs(w * h)\n        total += 0\n"),
        WHOLE,
        FIX5.replace("abs(w * h)\n", "abs(w * h)\n    total += 0\n"),
        id="sr-indentation-deeper",
    ),
    pytest.param(
        PY,
        sr("def area(w, h):\n    total = w * h\n", "def area(w, h):\n    total = abs(w * h)\n"),
        AREA,
        FIX5,
        id="sr-two-lines",
    ),
    pytest.param(CRLF, SR5, WHOLE, FIX5.replace("\n", "\r\n"), id="sr-crlf-original"),
    pytest.param(CRLF, SR5.replace("\n", "\r\n"), WHOLE, FIX5.replace("\n", "\r\n"), id="sr-crlf"),
    pytest.param(PY, f"```python\n{AREA_FIXED}```\n", AREA, FIX5, id="span-python-fence"),
    pytest.param(PY, f"Fixed:\n~~~\n{AREA_FIXED}~~~\n", AREA, FIX5, id="span-plain-tilde-fence"),
    pytest.param(PY, f"```py\n{AREA_FIXED}```", AREA, FIX5, id="span-py-label-unclosed-line"),
    pytest.param(PY, f"```python3\n{AREA_FIXED}```\n", AREA, FIX5, id="span-python3-label"),
    pytest.param(PY, f"```x.py\n{AREA_FIXED}```\n", AREA, FIX5, id="span-filename-label"),
    pytest.param(PY, f"```python\n{FIX5}```\n", WHOLE, FIX5, id="span-whole-file"),
    pytest.param(
        PY,
        "```diff\n-    total = w * h\n+    total = abs(w * h)\n```\n",
        AREA,
        FIX5,
        id="diff-fence-without-headers-stays-a-diff",
    ),
    pytest.param(
        CRLF, f"```python\n{AREA_FIXED}```\n", AREA, FIX5.replace("\n", "\r\n"), id="span-crlf"
    ),
    pytest.param(
        PY,
        "```python\n    total = abs(w * h)\n    return total\n```\n",
        [LineRange(4, 4), LineRange(5, 5)],
        FIX5,
        id="span-two-ranges-envelope",
    ),
    pytest.param(
        "a = 1\nb = 2", "```python\nb = 3\n```\n", LineRange(1, 1), "a = 1\nb = 3", id="span-no-eol"
    ),
]


@pytest.mark.parametrize(("original", "reply", "allowed", "expected"), ACCEPTED)
def test_other_edit_formats_become_the_same_checked_patch(
    original: str, reply: str, allowed: LineRange | list[LineRange], expected: str
) -> None:
    patch = validate(original, reply, allowed, path="src/x.py", language="python")
    assert patch.new_text == expected
    assert apply_lsp(original, patch.edits) == expected
    assert patch.diff == unified_diff(original, expected, "x.py")


REFUSED = [
    pytest.param(
        sr("    total = 0\n", "    total = 1\n"), WHOLE, ContextMismatch, "nowhere", id="sr-missing"
    ),
    pytest.param(
        sr("    return total\n", "    return -total\n"),
        WHOLE,
        ContextMismatch,
        "at lines 6 and 11",
        id="sr-ambiguous",
    ),
    pytest.param(
        sr("return total\n", "return -total\n"),
        WHOLE,
        ContextMismatch,
        "ignoring indentation, at lines 6 and 11",
        id="sr-ambiguous-loosely",
    ),
    pytest.param(
        sr("def area(w, h):\ntotal = w * h\n", "def area(w, h):\ntotal = 1\n"),
        WHOLE,
        ContextMismatch,
        "not by the same amount",
        id="sr-uneven-indentation",
    ),
    pytest.param(
        sr("", "import sys\n"), WHOLE, MalformedDiff, "empty SEARCH", id="sr-empty-search"
    ),
    pytest.param(
        "<<<<<<< SEARCH\n    total = w * h\n>>>>>>> REPLACE\n",
        WHOLE,
        MalformedDiff,
        "no ======= line",
        id="sr-no-divider",
    ),
    pytest.param(
        "<<<<<<< SEARCH\n    total = w * h\n=======\n    total = 1\n",
        WHOLE,
        MalformedDiff,
        "does not end with >>>>>>> REPLACE",
        id="sr-unclosed",
    ),
    pytest.param(f"y.py\n{SR5}", WHOLE, WrongFile, "edit y.py, not x.py", id="sr-wrong-file"),
    pytest.param(f"x.py\n{SR5}y.py\n{SR10}", WHOLE, MultipleFiles, "2 files", id="sr-two-files"),
    pytest.param(SR5, LineRange(9, 10), OutOfRange, "changes line 5", id="sr-out-of-range"),
    pytest.param(
        sr("    total = w * h\n", "    total = w * h\n"), WHOLE, NoChange, "leave", id="sr-same"
    ),
    pytest.param(
        sr("    total = w * h\n", "    total = (w * h\n"),
        WHOLE,
        SyntaxBroken,
        "",
        id="sr-syntax-error",
    ),
    pytest.param(
        f"```python\n{PY.splitlines(keepends=True)[3]}{PY.splitlines(keepends=True)[4]}"
        f"{PY.splitlines(keepends=True)[5]}```\n",
        AREA,
        NoChange,
        "rewritten lines leave the file unchanged",
        id="span-identical",
    ),
    pytest.param(
        f"```python\n{AREA_FIXED}```\n",
        [LineRange(3, 3), LineRange(5, 5)],
        OutOfRange,
        "changes line 5",
        id="span-envelope-still-range-checked",
    ),
    pytest.param(
        "```python\ndef area(w, h:\n    return w * h\n```\n",
        AREA,
        SyntaxBroken,
        "",
        id="span-syntax-error",
    ),
    pytest.param(
        f"```javascript\n{AREA_FIXED}```\n",
        AREA,
        NoDiff,
        "marked javascript",
        id="span-other-language",
    ),
    pytest.param(
        "```bash\npip install x\n```\n", AREA, NoDiff, "marked bash", id="span-shell-block"
    ),
    pytest.param(
        f"```python\n{AREA_FIXED}```\nor\n```python\n{AREA_FIXED}```\n",
        AREA,
        NoDiff,
        "2 code blocks",
        id="span-two-blocks",
    ),
    pytest.param(f"```python\n{AREA_FIXED}", AREA, MalformedDiff, "not closed", id="span-unclosed"),
    pytest.param(
        "```diff\n--- a/x.py\n+++ b/x.py\n```\n",
        AREA,
        NoDiff,
        "no unified diff",
        id="diff-no-hunks",
    ),
    pytest.param(
        f"```python\n{AREA_FIXED}    key = '«masked:aws_key»'\n```\n",
        AREA,
        PatchError,
        "masked",
        id="span-writes-placeholder",
    ),
]


@pytest.mark.parametrize(("reply", "allowed", "error", "fragment"), REFUSED)
def test_other_edit_formats_are_refused_as_diffs_are(
    reply: str, allowed: LineRange, error: type[PatchError], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        validate(PY, reply, allowed, path="src/x.py", language="python")
    assert fragment in caught.value.reason
    assert sentence(str(caught.value)), str(caught.value)


def test_a_unified_diff_wins_over_other_formats() -> None:
    reply = (
        f"{SR10}\n```diff\n--- a/x.py\n+++ b/x.py\n@@ -5 +5 @@\n"
        "-    total = w * h\n+    total = abs(w * h)\n```\n"
    )
    assert validate(PY, reply, WHOLE, path="x.py").new_text == FIX5


def test_blocks_apply_in_turn() -> None:
    # the second block finds the text the first one wrote
    reply = sr("    total = w * h\n", "    total = abs(w * h)\n") + sr(
        "    total = abs(w * h)\n", "    total = abs(w) * abs(h)\n"
    )
    expected = PY.replace("total = w * h\n", "total = abs(w) * abs(h)\n")
    assert validate(PY, reply, WHOLE, path="x.py").new_text == expected


def test_too_many_blocks_or_lines_are_refused() -> None:
    many = SR5 * (edit_formats.MAX_EDIT_BLOCKS + 1)
    with pytest.raises(TooLarge, match="search/replace blocks"):
        validate(PY, many, WHOLE, path="x.py")
    long = "```python\n" + "x = 1\n" * (edit_formats.MAX_ADDED_LINES + 1) + "```\n"
    with pytest.raises(TooLarge, match="too large"):
        validate(PY, long, WHOLE, path="x.py")


def test_read_returns_none_without_an_edit() -> None:
    assert edit_formats.read("Looks fine to me.", PY, [WHOLE], target="x.py") is None
