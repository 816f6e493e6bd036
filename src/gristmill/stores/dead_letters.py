"""The dead-letter store port: the events a consumer group gave up on, kept to inspect and replay.

The bus announces a give-up as an ``event.dead_lettered`` event carrying the original
envelope; ``gristmill dead-letters`` collects those into this store, lists and shows them,
and replays one by publishing its original again under a fresh id (a new event, so every
attempt counter starts over), recording which event replayed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class DeadLetter:
    """One give-up: ``letter_id`` is the ``event.dead_lettered`` event's id; ``event`` the
    original envelope as JSON (``None`` for a body no event could be decoded from)."""

    letter_id: str
    group: str
    event_type: str
    attempts: int
    error: str
    event: dict[str, Any] | None
    dead_lettered_at: datetime
    replayed_as: str | None = None
    replayed_at: datetime | None = None


class DeadLetterStore(Protocol):
    def add_letter(self, letter: DeadLetter) -> None:
        """Record it; a letter recorded already is left as it is (idempotent)."""
        ...

    def get_letter(self, letter_id: str) -> DeadLetter:
        """``NotFoundError`` naming the id (and how to list them) if it is not recorded."""
        ...

    def list_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """Newest first."""
        ...

    def mark_replayed(self, letter_id: str, event_id: str, at: datetime) -> DeadLetter:
        """Record that event ``event_id`` replayed it; ``NotFoundError`` if unknown."""
        ...
