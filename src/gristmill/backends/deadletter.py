"""The dead-letter rules every bus backend applies: build the ``event.dead_lettered`` events."""

from __future__ import annotations

import base64
import logging

from pydantic import ValidationError

from gristmill.bus.port import DEAD_LETTERED
from gristmill.core.events import Event

_log = logging.getLogger(__name__)

UNDECODABLE = "undecodable"
"""The key of the dead letter for a body no event could be decoded from."""


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


def undecodable(
    body: bytes | str, error: ValueError, *, event_type: str, group: str, attempts: int
) -> Event:
    """The event announcing that ``group`` met a body of ``event_type`` it cannot decode.

    ``error`` is what ``Event.from_bytes`` raised (not JSON, not an envelope, a newer
    ``schema_version``). No retry can fix such a body, so backends dead-letter it on the
    delivery that meets it. Its key is ``"undecodable"``; the raw body rides along as text
    (``body_encoding`` ``"utf-8"``) or, if it is not UTF-8, as ``"base64"``. Logs a warning.
    """
    raw = body.encode() if isinstance(body, str) else body
    try:
        text, encoding = raw.decode(), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    reason = f"cannot decode the body of a {event_type!r} event: {_why(error)}"
    _log.warning(
        "dead-lettering for group %r: %s",
        group,
        reason,
        extra={"event_type": event_type, "group": group},
    )
    return Event(
        type=DEAD_LETTERED,
        key=UNDECODABLE,
        payload={
            "group": group,
            "attempts": attempts,
            "error": reason,
            "body": text,
            "body_encoding": encoding,
        },
    )


def _why(error: ValueError) -> str:
    """``error`` on one line; pydantic's own text spans lines and repeats the body."""
    if not isinstance(error, ValidationError):
        return str(error)
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
        for e in error.errors(include_url=False)
    )


def over_budget(
    body: bytes | str, *, event_type: str, group: str, attempts: int, error: str
) -> Event:
    """The dead letter for a raw ``body`` whose deliveries ran out: ``dead_letter`` of its
    event, or ``undecodable`` if it has none (a body met before this rule existed)."""
    try:
        original = Event.from_bytes(body)
    except ValueError as exc:
        return undecodable(body, exc, event_type=event_type, group=group, attempts=attempts)
    return dead_letter(original, group=group, attempts=attempts, error=error)


def lease_expired(ack_wait: float) -> str:
    """The ``error`` of a dead letter whose last delivery was never acked nor nacked."""
    return f"not acked within ack_wait={ack_wait:g}s"
