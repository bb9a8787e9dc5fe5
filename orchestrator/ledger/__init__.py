"""The usage ledger (docs/architecture.md): one row per attempt, in SQLite by default.

There is no column for prompt text, replies or keys, so none can be stored. The file is created
with mode 0600 (its folder 0700 when the ledger creates it) and runs in WAL mode with
`synchronous=NORMAL`: a committed transaction survives the process being killed (the OS holds the
WAL pages), and the file always passes `PRAGMA integrity_check`; only a power cut can lose the
last few commits.

One module per reason to change:

- `records`: the rows, reports and `UsageLedger` interface every ledger shares;
- `schema`: the SQLite file, its migrations and rows as SQL parameters;
- `recovery`: markers of attempts whose process died become "interrupted" rows;
- `batching`: rows lingering on the event loop to share a commit (the team ledger's too);
- `writer`: the writer thread and the kinds of item its queue takes;
- `queries`: the reports read from SQLite;
- `sqlite`: `Ledger`, which ties those together.
"""

from __future__ import annotations

from ace_lsp.orchestrator.errors import LedgerError
from ace_lsp.orchestrator.ledger.queries import period_filter
from ace_lsp.orchestrator.ledger.records import (
    INTERRUPTED,
    InFlight,
    LedgerRow,
    UsageLedger,
    UsageLine,
    stats_by_model,
)
from ace_lsp.orchestrator.ledger.schema import SCHEMA_VERSION
from ace_lsp.orchestrator.ledger.sqlite import Ledger

__all__ = [
    "INTERRUPTED",
    "SCHEMA_VERSION",
    "InFlight",
    "Ledger",
    "LedgerError",
    "LedgerRow",
    "UsageLedger",
    "UsageLine",
    "period_filter",
    "stats_by_model",
]
