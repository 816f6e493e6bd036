"""The EventBus port: at-least-once delivery of events to consumer groups.

Semantics every backend guarantees (proved by ``gristmill.testing.bus_contract``):

* ``publish`` returns only when the events are durable (they survive the publisher's and the
  bus client's death). Events are published in the order given.
* A *consumer group* is named by the caller; each group sees every event of the type it
  consumes, starting from the oldest retained event, whenever the group is first used.
  Creating a group is implicit and idempotent.
* Consumers of one group share its events: an event is handed to one consumer of the group
  at a time.
* A delivery is leased for ``ack_wait`` seconds. Not acked in time (the consumer died, hung,
  or was killed), it is delivered again with ``attempt`` one higher. ``nack`` makes it
  available again at once (or after ``delay`` seconds), also with ``attempt`` one higher.
* ``extend`` renews the lease for another full ``ack_wait`` without counting a delivery, so
  work of any length keeps its event by extending every ``ack_wait / 3`` or so; a holder that
  dies stops extending and its event moves on after the lease.
* After ``max_attempts`` deliveries, the event is *dead-lettered* instead of being delivered
  again: the bus publishes an ``event.dead_lettered`` event (key = the original type) whose
  payload holds ``group``, ``attempts``, ``error`` and the original ``event`` envelope (as
  JSON), and never hands the original to that group again.
* A body that is no event this gristmill can decode (not JSON, not an envelope, or an
  envelope ``schema_version`` newer than it knows) is never returned by ``consume``: on the
  delivery that meets it, it is dead-lettered at once for that group (key ``undecodable``,
  payload ``group``, ``attempts``, ``error``, ``body`` and ``body_encoding``) and not
  delivered to that group again. The other events fetched with it are delivered as usual.
* The envelope round-trips exactly: what ``consume`` returns equals what was published.
* ``groups`` lists the groups that consumed an event type; ``delete_group`` forgets one
  (its place and its leased or nacked events), so a group used for a while by one process
  (a prediction server's) leaves nothing behind. Used again, it starts afresh, from the
  oldest retained event. Deleting a group that does not exist does nothing.

Ordering across consumers is not guaranteed; within a single consumer events of one type
arrive in publish order except for redeliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gristmill.core.events import Event

DEAD_LETTERED = "event.dead_lettered"


@dataclass(frozen=True)
class Delivery:
    """One delivery of an event to a consumer of a group.

    ``attempt`` is 1 on the first delivery. ``receipt`` is the backend's opaque handle used
    by ``ack``/``nack``; callers never look inside it.
    """

    event: Event
    group: str
    attempt: int
    receipt: Any = None


@dataclass(frozen=True)
class BusCapabilities:
    """What a backend offers beyond the contract."""

    cross_process: bool
    """Several processes (or machines) can share the bus."""
    native_batching: bool = False
    """``publish`` of many events costs about one round trip."""


@runtime_checkable
class EventBus(Protocol):
    """Publish events; consume, ack and nack them by consumer group.

    ``open`` must be awaited before use and ``close`` after; both are idempotent.
    Errors: ``BackendUnavailableError`` when the service cannot be reached,
    ``BackendError`` for other driver failures (the cause chained).
    """

    capabilities: BusCapabilities
    max_attempts: int
    ack_wait: float

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None:
        """Append ``events`` durably, in order; returns when all are stored."""
        ...

    async def consume(
        self,
        group: str,
        event_type: str,
        consumer: str,
        *,
        max_events: int = 1,
        wait: float = 1.0,
    ) -> list[Delivery]:
        """Up to ``max_events`` deliveries of ``event_type`` for ``group``.

        Waits at most ``wait`` seconds for the first one; returns ``[]`` if none came.
        Redeliveries (expired leases, nacks) are included. Dead-letters what is over budget.
        """
        ...

    async def ack(self, delivery: Delivery) -> None:
        """The group is done with this event; it is never delivered to the group again."""
        ...

    async def nack(self, delivery: Delivery, *, error: str = "", delay: float = 0.0) -> None:
        """Handling failed: deliver again after ``delay`` s, or dead-letter if over budget."""
        ...

    async def groups(self, event_type: str) -> list[str]:
        """The consumer groups of ``event_type`` (those that consumed it and were not
        deleted), sorted."""
        ...

    async def delete_group(self, group: str, event_type: str) -> None:
        """Forget ``group``'s place in ``event_type`` and its leased or nacked events of it;
        nothing happens when there is no such group."""
        ...

    async def extend(self, delivery: Delivery) -> None:
        """Still working: the lease of ``delivery`` runs for ``ack_wait`` seconds from now.

        While the caller keeps extending, the event is handed to no other consumer, and
        ``attempt`` does not grow. A lease already lost (expired and taken by another
        consumer, acked or nacked) is left as it is: extending it is not an error, and does
        not take the event back. Cheap enough to call every ``ack_wait / 3``.
        """
        ...
