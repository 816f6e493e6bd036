"""Fencing: writes made on behalf of a piece of work only while it still holds its lease (ADR 14).

A worker runs a stage's handler under a ``Fence`` naming the execution that holds the work.
A metadata store that keeps that execution (same database: ``scope``) checks, in each write
transaction made under the fence and atomically with it, that the execution is still
``running``; once it was taken over (its lease lapsed and another consumer claimed the work)
the transaction is rolled back and ``LeaseLostError`` raised, so a stale holder's results never
become visible. The fence travels in a context variable: ``asyncio.to_thread`` carries it into
the handler's thread; threads and processes the handler starts itself do not inherit it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Fence:
    """Writes are for ``execution_id``; ``scope`` names the store that keeps it."""

    execution_id: str
    scope: str


_current: ContextVar[Fence | None] = ContextVar("gristmill_fence", default=None)


def current_fence() -> Fence | None:
    """The fence the calling code runs under, if any."""
    return _current.get()


@contextmanager
def fenced(fence: Fence) -> Iterator[None]:
    """Run the block's writes under ``fence``."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)
