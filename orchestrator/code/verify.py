"""Verify after the gate: re-check a patched file with a checker that can judge it, on a copy.

For Python the checker is the bundled ruff, run on the text through stdin as if it were the file at
`path` (so the user's pyproject/ruff.toml rule selection applies; nothing is written), plus
Python's own `compile()` for syntax. The patched text is compared with the same checker on the
original:

- a target is *gone* when the patched file has no diagnostic with its code (and its message, when
  it is ruff's) on its line, mapped through the patch's edits; it *remains* otherwise. A target
  ruff did not report on the original (another tool's code, a rule the config leaves out) is
  *unjudged*;
- a *new* diagnostic is an error-level one (a syntax error, `E9…`, `PLE…`, pyflakes `F…` but for
  leftovers such as an unused import) that the patched file has more times than the original
  (compared by code and message, so moved code is not new).

The verdict: `failed` when something new appeared or no judged target is gone; `unverified` when
there is no checker for the language, the checker could not run or timed out, or some target could
not be judged; `verified` otherwise (a partial fix of several targets is verified, its message
naming what remains: `ace fix` hands every diagnostic of a file to one fix).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from ace_lsp.orchestrator import caps, ruff
from ace_lsp.orchestrator.code import languages
from ace_lsp.orchestrator.code.patches import Patch
from ace_lsp.orchestrator.errors import ProviderError, Timeout
from ace_lsp.orchestrator.types import CodeIssue, TextEdit

__all__ = ["Finding", "Status", "Verdict", "line_span", "verify"]

# Error-level ruff rules: pyflakes (undefined names, bad comparisons...), E9 (syntax, I/O) and
# pylint's errors. Style rules the config selects may be new without failing a fix, and so may
# pyflakes' leftovers: an import or variable a fix leaves unused (ruff's own UP006 fix turns
# `List` into `list` and leaves `typing.List` unused) is untidy, not broken.
_ERROR_CODE = re.compile(r"^(?:F\d|E9|PLE)")
_LEFTOVER = frozenset({"F401", "F403", "F405", "F541", "F811", "F841", "F842"})
_SYNTAX = "syntax"  # the code of a syntax error (ruff's have none; compile()'s are ours)


class Status(str, Enum):
    """How a patch fared when re-checked."""

    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    FAILED = "failed"


@dataclass(frozen=True)
class Finding:
    """One checker diagnostic as compared: its code ("syntax" for a syntax error), its 0-based
    line and the checker's message."""

    code: str
    line: int
    message: str


@dataclass(frozen=True)
class Verdict:
    """A patch's verdict: `message` is the line shown to the user ("verified by ruff: F821 gone,
    0 new"); `checker` is None when none ran. `gone`, `remaining` and `unjudged` are the targets'
    codes; `new` the error-level diagnostics the patch introduced."""

    status: Status
    checker: str | None
    message: str
    gone: tuple[str, ...] = ()
    remaining: tuple[str, ...] = ()
    unjudged: tuple[str, ...] = ()
    new: tuple[Finding, ...] = ()


def line_span(line: int, edits: Sequence[TextEdit]) -> tuple[int, int]:
    """The patched lines (first, last) that original line `line` became, given the patch's edits
    (original positions, in document order): shifted when after an edit, the edit's new lines when
    inside one."""
    shift = 0
    for edit in edits:
        start, end = edit.range.start, edit.range.end
        added = edit.new_text.count("\n")
        if line < start.line:
            break
        if line > end.line or (line == end.line and end.character == 0 and end != start):
            shift += added - (end.line - start.line)
            continue
        if line == start.line == end.line and start.character == end.character == 0:
            shift += added  # an insertion at the start of this line pushes all of it down
            continue
        return start.line + shift, start.line + shift + added
    return line + shift, line + shift


def _findings(diagnostics: Sequence[dict[str, Any]]) -> list[Finding]:
    return [
        Finding(
            str(d.get("code") or _SYNTAX),
            int(d.get("location", {}).get("row", 1)) - 1,
            str(d.get("message", "")),
        )
        for d in diagnostics
    ]


def _compile_error(text: str, path: str) -> Finding | None:
    """Python's own verdict on the text's syntax, or None when it compiles."""
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError too
        return Finding(_SYNTAX, max((exc.lineno or 1) - 1, 0), f"SyntaxError: {exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return Finding(_SYNTAX, 0, f"{type(exc).__name__}: {exc}")
    return None


def _ruff_both(original: str, patched: str, path: str) -> tuple[list[Finding], list[Finding]]:
    """ruff on the original (in a thread) and on the patched text at once: one run's latency."""
    before: list[Finding] = []
    failure: list[BaseException] = []

    def run_original() -> None:
        try:
            before.extend(_findings(ruff.check_blocking(original, path, caps.VERIFY_TIMEOUT_S)))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    ruff.ruff_bin()  # once, here: finding it reads sysconfig, which two threads may not do at once
    worker = threading.Thread(target=run_original, name="ace-verify", daemon=True)
    worker.start()
    try:
        after = _findings(ruff.check_blocking(patched, path, caps.VERIFY_TIMEOUT_S))
    finally:
        worker.join()
    if failure:
        raise failure[0]
    return before, after


def _is_error(f: Finding) -> bool:
    return f.code == _SYNTAX or (bool(_ERROR_CODE.match(f.code)) and f.code not in _LEFTOVER)


def _new(before: Sequence[Finding], after: Sequence[Finding]) -> list[Finding]:
    """Error-level findings `after` has more often than `before` (by code and message)."""
    extra = Counter((f.code, f.message) for f in after if _is_error(f))
    extra.subtract((f.code, f.message) for f in before if _is_error(f))
    out = []
    for f in after:
        if extra[(f.code, f.message)] > 0:
            extra[(f.code, f.message)] -= 1
            out.append(f)
    return out


def _codes(issues: Sequence[CodeIssue]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.code or "(no code)" for i in issues))


def _describe(f: Finding) -> str:
    code = "" if f.code == _SYNTAX else f"{f.code} "
    return f"line {f.line + 1}: {code}{f.message}"


def verify(
    original: str,
    patched: Patch,
    path: str,
    language: str | None,
    targets: Sequence[CodeIssue],
) -> Verdict:
    """The verdict on `patched` (a patch of `original`, the file at `path`) for `targets`, the
    diagnostics it was to fix. Blocking (two ruff runs and a compile(), ~25 ms on 2,000 lines):
    call it from a worker thread."""
    spec = languages.resolve(language, path)
    if spec is None or spec.name != "python":
        what = spec.name if spec else (language or "this file type")
        return Verdict(Status.UNVERIFIED, None, f"unverified: no checker for {what}")
    try:
        before, after = _ruff_both(original, patched.new_text, path)
    except Timeout as exc:
        return Verdict(Status.UNVERIFIED, "ruff", f"unverified: ruff timed out ({exc.reason})")
    except ProviderError as exc:
        return Verdict(Status.UNVERIFIED, "ruff", f"unverified: ruff could not run ({exc.reason})")
    broken = _compile_error(patched.new_text, path)
    if broken is not None:
        was = _compile_error(original, path)
        after.append(broken)
        if was is not None:
            before.append(was)
    new = _new(before, after)

    gone: list[CodeIssue] = []
    remaining: list[CodeIssue] = []
    unjudged: list[CodeIssue] = []
    for target in targets:
        line = target.range.start.line
        seen = [f for f in before if f.code == target.code and f.line == line]
        if not seen:
            unjudged.append(target)
            continue
        # ruff's own message tells apart two diagnostics of one code on one line (two imports)
        message = target.message if any(f.message == target.message for f in seen) else None
        first, last = line_span(line, patched.edits)
        if any(
            f.code == target.code
            and first <= f.line <= last
            and (message is None or f.message == message)
            for f in after
        ):
            remaining.append(target)
        else:
            gone.append(target)
    parts = []
    if gone:
        parts.append(f"{', '.join(_codes(gone))} gone")
    if remaining:
        parts.append(f"{', '.join(_codes(remaining))} remaining")
    if unjudged:
        parts.append(f"{', '.join(_codes(unjudged))} not judged (ruff does not report it here)")
    summary = ", ".join([*parts, f"{len(new)} new"])
    judged = Verdict(
        Status.VERIFIED,
        "ruff",
        f"verified by ruff: {summary}",
        gone=_codes(gone),
        remaining=_codes(remaining),
        unjudged=_codes(unjudged),
        new=tuple(new),
    )
    if new:
        shown = "; ".join(_describe(f) for f in new[:3])
        more = f" (and {len(new) - 3} more)" if len(new) > 3 else ""
        message = f"failed by ruff: {summary}: {shown}{more}"
        return replace(judged, status=Status.FAILED, message=message)
    if remaining and not gone:
        shown = "; ".join(
            f"{t.code} still reported on line {line_span(t.range.start.line, patched.edits)[0] + 1}"
            for t in remaining[:3]
        )
        return replace(judged, status=Status.FAILED, message=f"failed by ruff: {summary}: {shown}")
    if unjudged or not targets:
        return replace(judged, status=Status.UNVERIFIED, message=f"unverified by ruff: {summary}")
    return judged
