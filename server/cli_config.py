"""`ace config check`: what each setting resolved to and from which layer; and the one way every
command loads the config, printing its notices (unknown keys, a workspace's refused keys) once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ace_lsp.orchestrator.config import AceConfig, load_config


def load_and_tell(start: Path | None) -> AceConfig:
    """The config for a workspace folder (or none), its notices printed to stderr."""
    config = load_config(start)
    for notice in config.notices:
        print(f"ace: {notice}", file=sys.stderr)
    return config


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def report(config: AceConfig) -> dict[str, Any]:
    """The resolved settings, where each came from, and what a workspace was refused."""
    return {
        "workspace_file": None if config.workspace_file is None else str(config.workspace_file),
        "workspace_trusted": config.workspace_trusted,
        "sources": [str(p) for p in config.sources],
        "settings": {
            key: {"value": value, "from": where}
            for key, (value, where) in sorted(config.origins.items())
        },
        "refused": [
            {"file": str(path), "key": r.key, "reason": r.reason} for path, r in config.refused
        ],
        "notices": list(config.notices),
    }


async def run(args: argparse.Namespace) -> int:
    start = args.path.resolve() if args.path is not None else Path.cwd()
    config = load_config(start if start.is_dir() else start.parent)
    data = report(config)
    if args.json:
        print(json.dumps(data, indent=2, default=list))
        return 1 if config.notices else 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="ACE configuration")
    for column in ("key", "value", "from"):
        table.add_column(column)
    for key, row in data["settings"].items():
        table.add_row(key, _show(row["value"]), row["from"])
    console.print(table)
    ws = config.workspace_file
    if ws is None:
        console.print("Workspace file: none found (looked from here up to the repository root).")
    else:
        state = (
            "trusted (`ace trust`): it may set anything"
            if config.workspace_trusted
            else ("not trusted: it may only tighten")
        )
        console.print(f"Workspace file: {ws}, {state}.")
    for path, refusal in config.refused:
        console.print(f"Ignored `{refusal.key}` in {path}: it {refusal.reason}.", markup=False)
    for notice in config.notices:
        console.print(notice, markup=False)
    return 1 if config.notices else 0
