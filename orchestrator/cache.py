"""A response cache keyed by (model, prompt): an identical request costs nothing twice.

In memory, bounded, with a TTL. Keys are hashes of the model id and the exact request that
would be sent (messages, output limit, temperature); no prompt text is kept, only replies.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable

from ace_lsp.orchestrator.types import LLMRequest, ProviderReply


def cache_key(model_id: str, request: LLMRequest) -> str:
    """The SHA-256 of `model_id` and of the parts of `request` sent to the model."""
    payload = json.dumps(
        [
            model_id,
            [(m.role, m.content) for m in request.messages],
            request.max_output_tokens,
            request.temperature,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Replies by key, each kept `ttl_s` seconds; past `max_entries` the least recently used go."""

    def __init__(
        self,
        ttl_s: float = 3600.0,
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, ProviderReply]] = OrderedDict()

    def get(self, key: str) -> ProviderReply | None:
        """The reply stored under `key`, or None when there is none or it has expired."""
        hit = self._entries.get(key)
        if hit is None:
            return None
        stored, reply = hit
        if self._clock() - stored > self.ttl_s:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return reply

    def put(self, key: str, reply: ProviderReply) -> None:
        """Keep `reply` under `key` (unless `ttl_s` is 0), evicting the least recently used."""
        if self.ttl_s <= 0:
            return
        self._entries[key] = (self._clock(), reply)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
