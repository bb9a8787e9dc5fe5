"""Rows that wait briefly on the event loop to be written together: the design both ledgers share.

Waking a writer and committing once per row costs far more (~0.4 ms of CPU per model call, for
SQLite's writer thread) than letting rows linger for `LINGER_S` and handing them on as one batch.
`Linger` holds the rows and the timer; what "handing on" means (a writer thread's queue, a
PostgreSQL insert) is its owner's callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

LINGER_S = 0.05  # how long a row waits in memory for others to share a commit


class Linger(Generic[T]):
    """Items waiting on the running event loop, handed on together to `hand_on` within `linger_s`.

    The callback is also called with nothing waiting, since its owner may hold more of its own
    (the SQLite ledger's in-flight markers) that the same timer hands on.
    """

    def __init__(self, hand_on: Callable[[list[T]], None], linger_s: float = LINGER_S) -> None:
        self._hand_on = hand_on
        self._linger_s = linger_s
        self._items: list[T] = []
        self._due = False  # a hand-on is scheduled within linger_s

    def wake(self) -> bool:
        """Make sure a hand-on is due; False when there is no running loop to wait on."""
        if self._due:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        loop.call_later(self._linger_s, self.hand_on)
        self._due = True
        return True

    def add(self, item: T) -> bool:
        """Let `item` wait; False (and not kept) when no loop is running: hand it on yourself."""
        if not self.wake():
            return False
        self._items.append(item)
        return True

    def hand_on(self, *more: T) -> None:
        """Hand on what waits, and `more` after it, now: rows keep the order they came in."""
        self._due = False
        items, self._items = self._items, []
        items.extend(more)
        self._hand_on(items)
