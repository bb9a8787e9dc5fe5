"""Run the OpenAI fake of tests/fakes in its own process, so its CPU never counts as the client's.

`python -m bench.fake_server PORT` serves /v1/chat/completions on 127.0.0.1:PORT. A request for
model "dead-model" gets the vendor's 500 body; every other model answers at once.
"""

from __future__ import annotations

import sys

import uvicorn

from tests.fakes.harness import FakeVendor, Fault
from tests.fakes.openai import openai_app


class _DeadModel(FakeVendor):
    def next_fault(self, model: str) -> Fault:
        if model == "dead-model":
            return Fault(status=500)
        return Fault(text="```diff\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n```")

    def record(self, rec: object) -> None:  # keep memory flat over 100k requests
        pass


def main() -> None:
    port = int(sys.argv[1])
    uvicorn.run(
        openai_app(_DeadModel()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
