"""What a stage is to the runtime: a synchronous handler of one event type.

The runtime (``gristmill.runtime.worker``) consumes ``consumes`` events for the stage's group,
derives the idempotency key, skips work already done (re-announcing its recorded outputs),
runs ``handle`` in a worker thread, publishes the returned announcements as events caused by
the input, records the execution, and only then acks. A ``DataError`` or ``ConfigError`` is
permanent: it is recorded and announced as ``stage.failed`` instead of being retried. Any
other exception is retried with back-off and dead-lettered after the bus's budget.

A stage that most events of its type do not concern may also be ``Selective``: the runtime
asks ``wants(event)`` first and acknowledges an event it does not want at once, recording
no execution and doing no work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from gristmill.core.events import STAGE_FAILED, Event

__all__ = ["STAGE_FAILED", "Announcement", "Selective", "Stage", "StageOutcome"]


@dataclass(frozen=True)
class Announcement:
    """An event a handler wants published: its type, key and payload (JSON values only)."""

    type: str
    payload: dict[str, Any]
    key: str | None = None


@dataclass(frozen=True)
class StageOutcome:
    """What a handler did: its announcements and a short human summary line."""

    announcements: list[Announcement] = field(default_factory=list)
    summary: str = ""


class Stage(Protocol):
    """A stage: ``name`` (its consumer group), the event type it ``consumes``, its handler."""

    name: str
    consumes: str

    def idempotency_key(self, event: Event) -> str:
        """Same key ⇒ same work; derived from the event's inputs and the stage's config."""
        ...

    def handle(self, event: Event) -> StageOutcome:
        """Do the work for ``event``; must be safe to call again with the same event."""
        ...


@runtime_checkable
class Selective(Protocol):
    """The capability of a stage to pass over, unrecorded, events that do not concern it."""

    def wants(self, event: Event) -> bool:
        """Whether ``event`` may need work: ``False`` acknowledges it with no execution
        recorded (no claim, no lease, nothing to replay). Must be cheap (metadata reads at
        most) and must not write. A backend outage it meets leaves the event on the bus
        (redelivered after its lease); any other error it raises counts as ``True``, so the
        handler meets the error and it is recorded and announced as usual."""
        ...
