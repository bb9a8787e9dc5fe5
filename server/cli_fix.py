"""`ace fix`: fix the diagnostics of one file and print (or apply) the validated diff.

Exit codes: 0 fixed, 1 nothing fixed (the reason is printed), 2 usage or input error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from ace_lsp.orchestrator.caps import MAX_DIAGNOSTICS
from ace_lsp.orchestrator.code.diagnostics import to_issue
from ace_lsp.orchestrator.errors import InputError, NoFix, OverBudget
from ace_lsp.orchestrator.types import Attempt, CodeIssue, Position, RiskLevel, TextRange, Tier

if TYPE_CHECKING:
    from ace_lsp.orchestrator.ace import AutoFix

EXIT_FIXED = 0


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give a file.") from None
    except OSError as exc:
        raise InputError(f"cannot read {path} ({exc.strerror}).") from None
    if b"\0" in data:
        raise InputError(f"{path} looks binary; ACE fixes text files.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; ACE fixes UTF-8 files.") from None


def _position(raw: Any) -> Position:
    return Position(int(raw["line"]), int(raw["character"]))


def read_diagnostics(path: Path, target: Path | None = None) -> list[CodeIssue]:
    """LSP Diagnostic[] (or publishDiagnostics params with a `diagnostics` list) from a file, for
    the file `target` (a related location there is quoted in the prompt; elsewhere it is not)."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if isinstance(data, dict) and "diagnostics" in data:
        data = data["diagnostics"]
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a JSON array of LSP diagnostics.")
    same_file = _names(target.resolve()) if target is not None else lambda _uri: False
    issues = []
    for n, d in enumerate(data):
        try:
            rng = TextRange(_position(d["range"]["start"]), _position(d["range"]["end"]))
            issues.append(to_issue(d, rng, same_file))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(
                f"diagnostic #{n + 1} in {path} is not an LSP Diagnostic "
                "(it needs range.start/end with line and character, and a message string)."
            ) from None
    return issues


def _names(target: Path) -> Callable[[str], bool]:
    """Whether a URI names `target` (a resolved path)."""

    def same_file(uri: str) -> bool:
        from pygls import uris

        try:
            path = uris.to_fs_path(uri)
            return path is not None and Path(unquote(path)).resolve() == target
        except (ValueError, OSError):
            return False

    return same_file


async def _issues(args: argparse.Namespace, text: str, language: str | None) -> list[CodeIssue]:
    from ace_lsp.orchestrator import ruff
    from ace_lsp.orchestrator.code import languages
    from ace_lsp.orchestrator.code.source import Source

    if args.diagnostics:
        return read_diagnostics(args.diagnostics, args.path)
    spec = languages.resolve(language, str(args.path))
    if spec is None or spec.name != "python":
        raise InputError(
            f"ACE finds diagnostics itself only in Python files; for {args.path.name} "
            "pass --diagnostics FILE (an LSP Diagnostic[] JSON from any linter)."
        )
    return ruff.to_issues(Source(text), await ruff.check(text, str(args.path)))


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a crash leaves the old or the new file, never half of one."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".ace", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _attempts_json(attempts: Sequence[Attempt]) -> list[dict[str, Any]]:
    keys = ("model", "provider", "outcome", "latency_ms", "cost_usd", "reason")
    return [{k: asdict(a)[k] for k in keys} for a in attempts]


def _verdict_json(result: AutoFix) -> dict[str, Any] | None:
    """The patch's re-check for `--json`: status, checker, message and what it found."""
    v = result.verdict
    if v is None:
        return None
    return {
        "status": v.status.value,
        "checker": v.checker,
        "message": v.message,
        "gone": list(v.gone),
        "remaining": list(v.remaining),
        "unjudged": list(v.unjudged),
        "new": [{"code": f.code, "line": f.line, "message": f.message} for f in v.new],
    }


def _print_diff(diff: str) -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(diff, "diff", theme="ansi_dark", background_color="default"))
    else:
        sys.stdout.write(diff)


async def run(args: argparse.Namespace) -> int:
    from ace_lsp.orchestrator.ace import FixContext, ace_auto_fix
    from ace_lsp.orchestrator.call import Orchestrator
    from ace_lsp.server.cli_config import load_and_tell

    text = read_text(args.path)
    language = args.language
    issues = await _issues(args, text, language)
    if args.line is not None:
        issues = [i for i in issues if i.range.start.line + 1 <= args.line <= i.range.end.line + 1]
    if not issues:
        where = f" on line {args.line}" if args.line is not None else ""
        raise NoFix(f"Nothing to fix: no diagnostics{where} in {args.path}.")
    if len(issues) > MAX_DIAGNOSTICS:
        print(
            f"ace: {len(issues)} diagnostics given; fixing the first {MAX_DIAGNOSTICS} "
            "(run again for the rest).",
            file=sys.stderr,
        )
        issues = issues[:MAX_DIAGNOSTICS]
    orchestrator = await Orchestrator.open(load_and_tell(args.path.resolve().parent))
    try:
        ctx = FixContext(
            file_path=str(args.path),
            code=text,
            language=language,
            tier=Tier(args.tier),
            user=args.user,
            display_path=args.path.name,
            mask_secrets=not getattr(args, "no_mask", False),
        )
        result = await ace_auto_fix(orchestrator, ctx, issues, RiskLevel(args.risk))
    except (NoFix, OverBudget) as exc:
        attempts = exc.attempts if isinstance(exc, NoFix) else ()
        if args.json:
            print(
                json.dumps(
                    {
                        "patches": [],
                        "error": exc.reason,
                        "model": None,
                        "cost_usd": 0.0,
                        "attempts": _attempts_json(attempts),
                    },
                    indent=2,
                )
            )
        raise
    finally:
        await orchestrator.aclose()
    if args.apply:
        write_atomically(args.path, result.patch.new_text)
    if args.json:
        edits = [
            {
                "range": {
                    "start": asdict(e.range.start),
                    "end": asdict(e.range.end),
                },
                "newText": e.new_text,
            }
            for e in result.patch.edits
        ]
        out = {
            "patches": [
                {
                    "path": str(args.path),
                    "diff": result.patch.diff,
                    "edits": edits,
                    "verification": _verdict_json(result),
                }
            ],
            "model": result.model,
            "cost_usd": result.cost_usd,
            "attempts": _attempts_json(result.attempts),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        _print_diff(result.patch.diff)
    if result.verdict is not None:
        print(f"ace: {result.verdict.message}.", file=sys.stderr)
    n = len(issues)
    done = "Wrote" if args.apply else "Made"
    print(
        f"ace: {done} a validated fix for {args.path} ({n} diagnostic{'s' if n != 1 else ''} "
        f"given) with {result.model} (${result.cost_usd:.4f})"
        + ("." if args.apply else "; run with --apply to write it."),
        file=sys.stderr,
    )
    return EXIT_FIXED
