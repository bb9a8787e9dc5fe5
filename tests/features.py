"""Reaching one feature of an in-process server, for tests."""

from __future__ import annotations

from typing import TypeVar

from ace_lsp.server.base import AceServer, Feature

F = TypeVar("F", bound=Feature)


def find(server: AceServer, kind: type[F]) -> F:
    """The running feature of type `kind`; LookupError if none."""
    for feature in server.features:
        if isinstance(feature, kind):
            return feature
    raise LookupError(f"no {kind.__name__} feature is running")
