"""One ACE process of the 20x20 test: `python -m tests.team.reserve_worker URL SPOOL N SEED`.

Runs N calls at once against the team ledger, each as `Orchestrator` does it: reserve the
estimate in the database, "call" (a short random wait), write the attempt's row carrying the
reservation, with a real cost at or below the estimate. Prints one JSON line of what it did.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from pathlib import Path

from ace_lsp.orchestrator.errors import OverBudget
from ace_lsp.orchestrator.team.shared import TeamLedger, TeamSettings
from tests.team.test_pg_ledger import row


async def main(url: str, spool: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    led = await TeamLedger.open(TeamSettings(url=url, share_health=False), spool)
    granted = refused = 0
    spent = 0.0
    latencies: list[float] = []

    async def one() -> None:
        nonlocal granted, refused, spent
        estimate = round(rng.uniform(0.01, 0.03), 4)
        rid = uuid.uuid4().hex
        t0 = time.perf_counter()
        try:
            await led.reserve(rid, led.user, estimate, daily=None, monthly=None)
        except OverBudget:
            refused += 1
            return
        finally:
            latencies.append((time.perf_counter() - t0) * 1000)
        granted += 1
        await asyncio.sleep(rng.uniform(0.005, 0.05))
        cost = round(estimate * rng.uniform(0.3, 1.0), 6)
        spent += cost
        led.record_nowait(row(cost, reservation=rid))

    await asyncio.gather(*(one() for _ in range(n)))
    await led.flush()
    state = led.state
    await led.close()
    print(
        json.dumps(
            {
                "user": led.user,
                "granted": granted,
                "refused": refused,
                "spent": spent,
                "state": state,
                "reserve_ms": latencies,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
