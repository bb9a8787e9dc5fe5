"""The `ace` command line: fix, serve, models, usage, doctor, team, trust, config; one module each.

Exit codes: 0 success, 1 the job could not be done (the reason is printed), 2 usage or input error.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ace_lsp.orchestrator.errors import AceError, InputError, NoFix, OverBudget
from ace_lsp.orchestrator.types import RiskLevel, Tier
from ace_lsp.server import __version__

EXIT_NOT_FIXED, EXIT_USAGE = 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ace: {message}; see `{self.prog} --help`.\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ace", description="AI code fixes, offline by default.")
    parser.add_argument("--version", action="version", version=f"ace {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    fix = sub.add_parser("fix", help="fix the diagnostics of one file and print the diff")
    fix.add_argument("path", type=Path, help="the file to fix")
    fix.add_argument(
        "--diagnostics",
        type=Path,
        metavar="FILE",
        help="LSP Diagnostic[] JSON to fix (default for Python: ruff's diagnostics)",
    )
    fix.add_argument(
        "--line", type=int, metavar="N", help="only the diagnostics on line N (1-based)"
    )
    fix.add_argument("--risk", choices=[r.value for r in RiskLevel], default="balanced")
    fix.add_argument("--tier", choices=[t.value for t in Tier], default="free")
    fix.add_argument("--user", default="local", help="user id for budgets and the ledger")
    fix.add_argument("--language", help="LSP languageId (default: from the file extension)")
    fix.add_argument("--apply", action="store_true", help="write the fixed file (atomically)")
    fix.add_argument("--json", action="store_true", help="print the result as JSON")
    fix.add_argument(
        "--no-mask",
        action="store_true",
        help="send secret-shaped text (keys, passwords) to the provider unmasked",
    )

    models = sub.add_parser("models", help="list the models, prices, keys and health")
    models.add_argument("--json", action="store_true", help="print a JSON list")

    usage = sub.add_parser("usage", help="spend today and this month against the budgets")
    usage.add_argument("--json", action="store_true", help="print JSON")
    usage.add_argument("--user", default=os.environ.get("ACE_USER", "local"), help="user id")
    usage.add_argument("--tier", choices=[t.value for t in Tier], default="free")
    usage.add_argument(
        "--team", action="store_true", help="the whole team's usage (team ledger admins only)"
    )

    doctor = sub.add_parser("doctor", help="test each configured provider with one tiny call")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.add_argument("--user", default=os.environ.get("ACE_USER", "local"), help="user id")
    doctor.add_argument("--tier", choices=[t.value for t in Tier], default="pro")

    trust = sub.add_parser(
        "trust", help="let a workspace's ace.toml set providers, models and budgets"
    )
    trust.add_argument("path", nargs="?", type=Path, help="the ace.toml (default: the one here)")
    trust.add_argument("--list", action="store_true", help="list the trusted files")
    trust.add_argument("--revoke", action="store_true", help="stop trusting the file")

    config = sub.add_parser("config", help="show ACE's settings and where each comes from")
    config_sub = config.add_subparsers(
        dest="config_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    check = config_sub.add_parser("check", help="each key, its value and its layer")
    check.add_argument("path", nargs="?", type=Path, help="a file or folder in the workspace")
    check.add_argument("--json", action="store_true", help="print JSON")

    from ace_lsp.server.cli_team import add_parser as add_team

    add_team(sub)

    serve = sub.add_parser("serve", help="run the language server on stdio")
    serve.add_argument("--log-file", type=Path, help="write the server's log to this file")
    serve.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    return parser


def _fail(message: str) -> int:
    print(f"ace: {message}", file=sys.stderr)
    return EXIT_USAGE


def _expected_failures(record: logging.LogRecord) -> bool:
    """Drop pygls' tracebacks for a fix or review that failed for a reason the user was told."""
    exc = record.exc_info[1] if record.exc_info else None
    return type(exc).__name__ != "FixFailed"


def log_file_handler(path: Path) -> logging.FileHandler:
    """A handler appending to `path`, created with mode 0600: a log quotes paths, code and
    model replies. An existing file keeps its mode (never widened, nor changed under the user)."""
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    return logging.FileHandler(path, encoding="utf-8")


def _serve(args: argparse.Namespace) -> int:
    level = logging.DEBUG if args.verbose else logging.INFO
    handler: logging.Handler
    if args.log_file:
        handler = log_file_handler(args.log_file)
    else:
        handler = logging.StreamHandler(sys.stderr)  # stdout carries the protocol
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # pygls logs every message it sends at INFO: too much for a log people read
    logging.getLogger("pygls").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    logging.getLogger("pygls.protocol.json_rpc").addFilter(_expected_failures)
    from ace_lsp.server.app import create_server
    from ace_lsp.server.compat import serve_stdio

    serve_stdio(create_server())  # pygls' start_io, with a reader that survives broken framing
    return 0


def _command(name: str) -> Callable[[argparse.Namespace], Coroutine[Any, Any, int]]:
    """The command's module, imported only when it runs (keeps `ace --help` fast)."""
    module = importlib.import_module(f"ace_lsp.server.cli_{name}")
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = module.run
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    try:
        return asyncio.run(_command(args.command)(args))
    except InputError as exc:
        return _fail(exc.reason)
    except (NoFix, OverBudget) as exc:
        if not getattr(args, "json", False):  # --json already printed the reason
            print(f"ace: {exc.reason}", file=sys.stderr)
        return EXIT_NOT_FIXED
    except AceError as exc:
        print(f"ace: {exc.reason}", file=sys.stderr)
        return EXIT_NOT_FIXED
    except KeyboardInterrupt:
        print("ace: interrupted; the file was not changed.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ace config check --json | head`: the reader left, nothing lost
        # point stdout at /dev/null so Python's flush at exit does not fail a second time
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
