"""The syntax check of the patch gate: a patch may not add tree-sitter ERROR or MISSING nodes.

The original's tree is reused when the caller has one; the patched text is parsed incrementally
from an edited copy of it, so the check stays fast on large files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tree_sitter import Tree

from ace_lsp.orchestrator.code import languages
from ace_lsp.orchestrator.errors import SyntaxBroken


@dataclass(frozen=True)
class Replacement:
    """One minimal replacement of the original's characters [start, end) by `text`."""

    start: int
    end: int
    text: str
    line: int  # line of `start`, and where that line starts
    line_start: int
    end_line: int
    end_line_start: int


def _blen(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))


_TreeEdit = tuple[int, int, int, tuple[int, int], tuple[int, int], tuple[int, int]]


def _tree_edits(text: str, spans: list[Replacement]) -> list[_TreeEdit]:
    """The spans as tree-sitter edits: UTF-8 byte offsets and (row, byte column) points."""
    out: list[_TreeEdit] = []
    at = byte = 0
    for sp in spans:
        byte += _blen(text[at : sp.start])
        start_byte = byte
        byte += _blen(text[sp.start : sp.end])
        at = sp.end
        col = _blen(text[sp.line_start : sp.start])
        end_col = _blen(text[sp.end_line_start : sp.end])
        rows = sp.text.count("\n")
        new_col = _blen(sp.text[sp.text.rfind("\n") + 1 :]) if rows else col + _blen(sp.text)
        new_end = (start_byte + _blen(sp.text), (sp.line + rows, new_col))
        out.append(
            (start_byte, byte, new_end[0], (sp.line, col), (sp.end_line, end_col), new_end[1])
        )
    return out


def _error_rows(tree: Tree) -> list[int]:
    """Start rows of ERROR and MISSING nodes, in document order, skipping error-free subtrees."""
    rows: list[int] = []
    if not tree.root_node.has_error:
        return rows
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None
        if node.is_error or node.is_missing:
            rows.append(node.start_point.row)
        if node.has_error and cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return rows


def _first_new(before: list[int], after: list[int], edits: list[_TreeEdit]) -> int:
    """The first error row of `after` that is not one of `before` moved along by the edits."""
    moved: Counter[int] = Counter()
    for row in before:
        shift = 0
        for _, _, _, (start, _), (old_end, _), (new_end, _) in edits:
            if row < start:
                break
            if row <= old_end:  # inside an edit: that error is gone
                shift = -1 - row
                break
            shift += new_end - old_end
        moved[row + shift] += 1
    for row in after:
        if not moved[row]:
            return row
        moved[row] -= 1
    return after[0]


def check_syntax(
    spec: languages.LanguageSpec,
    original: str,
    new_text: str,
    tree: Tree | None,
    spans: list[Replacement],
) -> None:
    """Raise SyntaxBroken when `new_text` has more ERROR/MISSING nodes than `original`.

    `tree`, when given, is the parse of `original`: it is copied, edited and reparsed
    incrementally, never modified.
    """
    try:
        parser = languages.parser(spec)
    except ImportError:
        return  # the grammar wheel is missing: nothing to check against
    if tree is None or tree.language != parser.language:
        tree = parser.parse(original.encode("utf-8", "surrogatepass"))
    before = _error_rows(tree)
    edits = _tree_edits(original, spans)
    edited = tree.copy()
    for edit in reversed(edits):  # from the end, so each edit's offsets are still original ones
        edited.edit(*edit)
    after = _error_rows(parser.parse(new_text.encode("utf-8", "surrogatepass"), edited))
    extra = len(after) - len(before)
    if extra > 0:
        line = _first_new(before, after, edits) + 1
        what = (
            "1 new syntax error, at" if extra == 1 else f"{extra} new syntax errors, the first at"
        )
        raise SyntaxBroken(
            f"The patched file has {what} line {line}; fix the syntax of the change."
        )
