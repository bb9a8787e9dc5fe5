"""`ace trust [PATH]`: let one workspace `ace.toml` use the user layer's powers; see trust.py.

`--list` shows the trusted files (and whether each changed since), `--revoke` forgets one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ace_lsp.orchestrator import trust
from ace_lsp.orchestrator.errors import InputError
from ace_lsp.orchestrator.paths import ace_home


def _target(path: Path | None) -> Path:
    if path is not None:
        path = path.resolve()
        return path / trust.FILE_NAME if path.is_dir() else path
    import os

    found = trust.find(Path.cwd(), os.environ)
    if found is None:
        raise InputError(
            "No ace.toml here or above (up to the repository root); give its path: "
            "`ace trust PATH`."
        )
    return found


async def run(args: argparse.Namespace) -> int:
    home = ace_home()
    if args.list:
        table = trust.trusted(home)
        if not table:
            print("No workspace file is trusted.")
        for name, sha in sorted(table.items()):
            try:
                state = "ok" if trust.digest(Path(name).read_bytes()) == sha else "changed since"
            except OSError:
                state = "missing"
            print(f"{name}  ({state})")
        return 0
    path = _target(args.path)
    if args.revoke:
        if not trust.revoke(home, path):
            raise InputError(f"{path} was not trusted.")
        print(f"ACE no longer trusts {path}: it may only tighten ACE's settings.")
        return 0
    sha = trust.trust(home, path)
    print(
        f"ACE trusts {path} (sha256 {sha[:12]}…): it may now set providers, models and budgets. "
        "Any change to it needs `ace trust` again."
    )
    return 0
