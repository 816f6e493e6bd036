"""Dead letters, for operators: collect them off the bus into the metadata store, replay one.

The bus announces every give-up as an ``event.dead_lettered`` event. ``collect`` consumes
those with its own consumer group (``dead-letters``, which sees every one since the bus
began, once) and keeps each in the dead-letter store, so they can be listed and shown any
number of times. ``replay`` publishes a dead letter's original event again under a fresh id:
to the bus it is a new event, so every group's attempt count starts over, while its
``correlation_id`` keeps it in its run (and so with its spec) and its ``causation_id``
names the original. Groups that had handled the original see the copy too; the stages are
idempotent by content, so they find their earlier results instead of redoing them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from gristmill.bus.port import DEAD_LETTERED, EventBus
from gristmill.core.events import Event
from gristmill.errors import ConfigError
from gristmill.stores.dead_letters import DeadLetter, DeadLetterStore

GROUP = "dead-letters"


async def collect(bus: EventBus, store: DeadLetterStore, *, wait: float = 0.2) -> int:
    """Move the dead letters waiting on the bus into ``store``; how many were new on the bus."""
    moved = 0
    consumer = f"cli-{os.getpid()}"
    while deliveries := await bus.consume(
        GROUP, DEAD_LETTERED, consumer, max_events=100, wait=wait
    ):
        for delivery in deliveries:
            store.add_letter(letter_of(delivery.event))
            await bus.ack(delivery)  # only once it is kept
            moved += 1
    return moved


def letter_of(event: Event) -> DeadLetter:
    """The dead letter an ``event.dead_lettered`` event announces."""
    payload = event.payload
    original = payload.get("event")
    return DeadLetter(
        letter_id=event.id,
        group=str(payload.get("group", "")),
        event_type=str(original.get("type")) if isinstance(original, dict) else event.key,
        attempts=int(payload.get("attempts", 0)),
        error=str(payload.get("error", "")),
        event=original if isinstance(original, dict) else None,
        dead_lettered_at=event.occurred_at,
    )


async def replay(
    bus: EventBus, store: DeadLetterStore, letter_id: str, *, again: bool = False
) -> Event:
    """Publish the original of dead letter ``letter_id`` under a fresh id; the copy."""
    letter = store.get_letter(letter_id)
    if letter.event is None:
        raise ConfigError(
            f"dead letter {letter_id} holds a body no event could be decoded from "
            "(see `gristmill dead-letters show`); there is no event to replay"
        )
    if letter.replayed_as and not again:
        raise ConfigError(
            f"dead letter {letter_id} was replayed already as event {letter.replayed_as}; "
            "pass --again to replay it once more"
        )
    original = Event.model_validate(letter.event)
    copy = Event(
        type=original.type,
        key=original.key,
        payload=original.payload,
        correlation_id=original.correlation_id,
        causation_id=original.id,
    )
    await bus.publish([copy])
    store.mark_replayed(letter_id, copy.id, datetime.now(UTC))
    return copy
