"""`ace models`: the models panel — every model, its price, whether it can be called now,
its circuit and how it has done (p50 latency, success rate) according to the ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ace_lsp.orchestrator.call import Orchestrator
from ace_lsp.server.reports import model_rows


def _money(v: float) -> str:
    return "free" if v == 0 else f"${v:g}"


def render(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="ACE models (prices per 1M tokens, in / out)")
    for col in ("model", "provider", "price", "context", "key", "circuit", "p50", "success"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"],
            r["provider"],
            f"{_money(r['input_per_1m'])} / {_money(r['output_per_1m'])}",
            f"{r['context_window']:,}",
            "yes" if r["available"] else "needs setup",
            r["circuit"],
            "-" if r["p50_ms"] is None else f"{r['p50_ms']:.0f} ms",
            "-" if r["success_rate"] is None else f"{r['success_rate']:.0%} of {r['calls']}",
        )
    console.print(table)
    missing = sorted({r["unavailable_reason"] for r in rows if r["unavailable_reason"]})
    for reason in missing:
        console.print(f"  {reason}")


async def run(args: argparse.Namespace) -> int:
    orchestrator = await Orchestrator.open()
    try:
        rows = model_rows(orchestrator)
    finally:
        await orchestrator.aclose()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        render(rows, Console())
    return 0
