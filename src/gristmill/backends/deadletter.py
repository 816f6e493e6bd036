"""The dead-letter rule every bus backend applies: build the ``event.dead_lettered`` event."""

from __future__ import annotations

from gristmill.bus.port import DEAD_LETTERED
from gristmill.core.events import Event


def dead_letter(original: Event, *, group: str, attempts: int, error: str) -> Event:
    """The event announcing that ``group`` gave up on ``original`` after ``attempts`` tries.

    Its key is the original's type, so operators can consume dead letters by source type; the
    original envelope rides along as JSON so it can be inspected or re-published unchanged.
    """
    return original.caused(
        DEAD_LETTERED,
        {
            "group": group,
            "attempts": attempts,
            "error": error,
            "event": original.model_dump(mode="json"),
        },
        key=original.type,
    )


def lease_expired(ack_wait: float) -> str:
    """The ``error`` of a dead letter whose last delivery was never acked nor nacked."""
    return f"not acked within ack_wait={ack_wait:g}s"
