"""Verify after the gate: real ruff and compile() on a patched copy, compared with the original."""

from __future__ import annotations

from pathlib import Path

import pytest

from ace_lsp.orchestrator import ruff
from ace_lsp.orchestrator.code import patches
from ace_lsp.orchestrator.code.verify import Status, line_span, verify
from ace_lsp.orchestrator.errors import Timeout
from ace_lsp.orchestrator.types import CodeIssue, LineRange, Position, TextEdit, TextRange


def target(line: int, code: str, source: str | None = "ruff", message: str = "msg") -> CodeIssue:
    return CodeIssue(TextRange(Position(line, 4), Position(line, 5)), message, code, source)


def patch_of(original: str, new: str, name: str = "m.py") -> patches.Patch:
    """`new` as the patch gate would accept it from a model's diff."""
    last = max(original.count("\n") - 1, 0)
    reply = patches.unified_diff(original, new, name)
    return patches.validate(original, reply, (LineRange(0, last),), path=name)


UNDEFINED = "def f():\n    return y\n"
UNUSED = "import os\n\n\ndef f():\n    return 1\n"


# (original, patched, targets, status, gone, remaining, unjudged, new codes, message part)
CASES = [
    pytest.param(
        UNDEFINED,
        "def f(y):\n    return y\n",
        [target(1, "F821")],
        Status.VERIFIED,
        ("F821",),
        (),
        (),
        [],
        "verified by ruff: F821 gone, 0 new",
        id="target-gone",
    ),
    pytest.param(
        UNDEFINED,
        "def f():\n    return y  # still\n",
        [target(1, "F821")],
        Status.FAILED,
        (),
        ("F821",),
        (),
        [],
        "F821 still reported on line 2",
        id="target-not-gone",
    ),
    pytest.param(
        UNUSED,
        "\n\ndef f():\n    return os\n",
        [target(0, "F401")],
        Status.FAILED,
        ("F401",),
        (),
        (),
        ["F821"],
        "line 4: F821 Undefined name `os`",
        id="new-undefined-name",
    ),
    pytest.param(
        UNUSED,
        "\n\n\ndef f():\n    nonlocal q\n    return 1\n",
        [target(0, "F401")],
        Status.FAILED,
        ("F401",),
        (),
        (),
        ["PLE0117", "syntax"],
        "SyntaxError: no binding for nonlocal 'q' found",
        id="new-syntax-error",
    ),
    pytest.param(
        "import os\n\n\ndef f():\n    return z\n",
        "def f():\n    return z\n",
        [target(0, "F401")],
        Status.VERIFIED,
        ("F401",),
        (),
        (),
        [],
        "verified by ruff: F401 gone, 0 new",
        id="pre-existing-error-moved-is-not-new",
    ),
    pytest.param(
        UNDEFINED,
        "# one\n# two\ndef f():\n    return y\n",
        [target(1, "F821")],
        Status.FAILED,
        (),
        ("F821",),
        (),
        [],
        "F821 still reported on line 4",
        id="line-shift-finds-the-target-moved-down",
    ),
    pytest.param(
        "def f():\n    return y\n\n\ndef g():\n    return z\n",
        "def f():\n    return y\n\n\ndef g(z):\n    return z\n",
        [target(5, "F821")],
        Status.VERIFIED,
        ("F821",),
        (),
        (),
        [],
        "F821 gone, 0 new",
        id="same-code-elsewhere-is-not-the-target",
    ),
    pytest.param(
        "import os\nimport sys\n\nprint(sys)\n",
        "import sys\n\nprint(sys)\n",
        [target(0, "F401"), target(3, "E501")],
        Status.UNVERIFIED,
        ("F401",),
        (),
        ("E501",),
        [],
        "unverified by ruff: F401 gone, E501 not judged",
        id="a-rule-ruff-does-not-report-here",
    ),
    pytest.param(
        UNDEFINED,
        "def f(y):\n    return y\n",
        [target(1, "reportUndefinedVariable", "Pyright")],
        Status.UNVERIFIED,
        (),
        (),
        ("reportUndefinedVariable",),
        [],
        "reportUndefinedVariable not judged",
        id="another-tools-code",
    ),
    pytest.param(
        "import os\nimport sys\n\n\ndef f():\n    return y\n",
        "import sys\n\n\ndef f():\n    return y\n",
        [target(0, "F401", message="`os` imported but unused"), target(5, "F821")],
        Status.VERIFIED,
        ("F401",),
        ("F821",),
        (),
        [],
        "F401 gone, F821 remaining, 0 new",
        id="partial-fix-of-several",
    ),
    pytest.param(
        "import os\n\n\ndef f():\n    return 1\n",
        "import os\n\n\ndef f():\n    return 1 if True else 2\n",
        [target(0, "F401")],
        Status.FAILED,
        (),
        ("F401",),
        (),
        [],
        "F401 still reported on line 1",
        id="patch-elsewhere",
    ),
]


@pytest.mark.parametrize(
    ("original", "new", "targets", "status", "gone", "remaining", "unjudged", "new_codes", "says"),
    CASES,
)
def test_verify(
    tmp_path: Path,
    original: str,
    new: str,
    targets: list[CodeIssue],
    status: Status,
    gone: tuple[str, ...],
    remaining: tuple[str, ...],
    unjudged: tuple[str, ...],
    new_codes: list[str],
    says: str,
) -> None:
    path = str(tmp_path / "m.py")
    verdict = verify(original, patch_of(original, new), path, None, targets)
    assert verdict.status is status, verdict.message
    assert verdict.checker == "ruff"
    assert (verdict.gone, verdict.remaining, verdict.unjudged) == (gone, remaining, unjudged)
    assert [f.code for f in verdict.new] == new_codes
    assert says in verdict.message
    assert not list(tmp_path.iterdir())  # a copy through stdin: nothing written


def test_the_users_rule_selection_applies(tmp_path: Path) -> None:
    """ruff runs as if on the real file, so its pyproject's selection decides what is judged."""
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    original = "import os\n\n\ndef f(x):\n    return x == None\n"
    new = "import os\n\n\ndef f(x):\n    return x is None\n"
    verdict = verify(
        original,
        patch_of(original, new),
        str(tmp_path / "m.py"),
        "python",
        [target(4, "E711"), target(0, "F401")],
    )
    assert verdict.status is Status.UNVERIFIED
    assert (verdict.gone, verdict.unjudged) == (("E711",), ("F401",))


def test_other_languages_are_unverified() -> None:
    original = "let x = 1;\n"
    verdict = verify(original, patch_of(original, "let x = 2;\n", "m.js"), "m.js", None, [])
    assert verdict.status is Status.UNVERIFIED and verdict.checker is None
    assert verdict.message == "unverified: no checker for javascript"


def test_a_ruff_timeout_is_unverified(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(text: str, path: str, timeout: float) -> list[object]:
        raise Timeout(f"ruff took longer than {timeout:g} s to check the file.")

    monkeypatch.setattr(ruff, "check_blocking", slow)
    verdict = verify(
        UNDEFINED,
        patch_of(UNDEFINED, "def f(y):\n    return y\n"),
        "m.py",
        None,
        [target(1, "F821")],
    )
    assert verdict.status is Status.UNVERIFIED and verdict.checker == "ruff"
    assert verdict.message.startswith("unverified: ruff timed out (ruff took longer than")


def edit(sl: int, sc: int, el: int, ec: int, text: str) -> TextEdit:
    return TextEdit(TextRange(Position(sl, sc), Position(el, ec)), text)


@pytest.mark.parametrize(
    ("line", "edits", "span"),
    [
        pytest.param(3, [], (3, 3), id="no-edit"),
        pytest.param(1, [edit(5, 0, 5, 0, "a\nb\n")], (1, 1), id="before-an-insertion"),
        pytest.param(5, [edit(5, 0, 5, 0, "a\nb\n")], (7, 7), id="at-an-insertion"),
        pytest.param(9, [edit(2, 0, 4, 0, "")], (7, 7), id="after-a-deletion"),
        pytest.param(3, [edit(2, 0, 4, 0, "x\n")], (2, 3), id="inside-a-replacement"),
        pytest.param(4, [edit(4, 4, 4, 9, "is")], (4, 4), id="same-line-edit"),
        pytest.param(
            8,
            [edit(0, 0, 0, 0, "#\n"), edit(3, 0, 5, 0, "")],
            (7, 7),
            id="two-edits-add-up",
        ),
    ],
)
def test_line_span(line: int, edits: list[TextEdit], span: tuple[int, int]) -> None:
    assert line_span(line, edits) == span
