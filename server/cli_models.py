"""`ace models`: the seed's models panel — every model, its price, whether it can be called now,
its circuit and how it has done (p50 latency, success rate) according to the ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from ace_lsp.orchestrator.call import Orchestrator


def model_rows(orchestrator: Orchestrator) -> list[dict[str, Any]]:
    unavailable = orchestrator.unavailable()
    rows = []
    for model in orchestrator.registry:
        stats = orchestrator.health.stats(model.id)
        reason = unavailable.get(model.provider)
        rows.append(
            {
                "id": model.id,
                "provider": model.provider,
                "wire_name": model.wire_name,
                "input_per_1m": round(model.input_per_1k * 1000, 6),
                "output_per_1m": round(model.output_per_1k * 1000, 6),
                "context_window": model.context_window,
                "max_output": model.max_output,
                "tasks": list(model.tasks),
                "available": reason is None,
                "unavailable_reason": reason,
                "circuit": orchestrator.health.state(model.id),
                "calls": stats.calls,
                "p50_ms": stats.p50_ms,
                "success_rate": stats.success_rate,
            }
        )
    return rows


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
