"""The feedback stage: ``feedback.received`` → outcomes recorded, joined, windows measured.

A ``feedback.received`` event carries the feedback JSON (``core.feedback``): what ``POST
/v1/feedback`` accepted, what ``gristmill feedback FILE`` sent, or what any other producer
published. Its outcomes are recorded under the event's id and their place in it, joined to
the logged predictions they name (``stores.feedback``), and the windows they joined are
measured again (``stages.quality_windows``). An outcome is received when the event
occurred (``occurred_at``): that time decides which of two outcomes for one prediction
wins (the later) and whether a label is late.

Exactly once: recording is keyed by event id and place, so a redelivered event records
and joins nothing again (and the worker replays a succeeded execution without calling the
handler); the join and the window revisions are one transaction, and measuring is
idempotent (figures are stored as of a revision). A payload that is not feedback fails the
event at once (``DataError``, announced as ``stage.failed``), naming the field.
"""

from __future__ import annotations

from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.core.feedback import parse_feedback
from gristmill.core.ids import digest_json
from gristmill.stages.base import StageOutcome
from gristmill.stages.quality_windows import Setups, measure_windows, quality_demotions
from gristmill.stores.feedback import Outcome
from gristmill.stores.metadata import MetadataStore


def outcomes_of(event: Event) -> list[Outcome]:
    """The outcomes a ``feedback.received`` event carries; ``DataError`` naming the field."""
    body = parse_feedback(event.payload, what=f"the payload of {event.type} event {event.id}")
    received = event.occurred_at
    return [
        Outcome(
            feedback_id=event.id,
            position=position,
            actual=item.actual,
            received_at=received,
            request_id=item.request_id,
            row=item.row or 0,
            model=body.model,
            entity=None if item.entity is None else str(item.entity),
            entity_at=(item.at or received) if item.entity is not None else None,
        )
        for position, item in enumerate(body.outcomes)
    ]


class FeedbackStage:
    name = "feedback"
    consumes = FEEDBACK_RECEIVED

    def __init__(self, metadata: MetadataStore, setups: Setups) -> None:
        self.metadata = metadata
        self.setups = setups

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        joined = self.metadata.feedback.add_outcomes(outcomes_of(event))
        measured = measure_windows(self.metadata.feedback, self.setups, joined.windows)
        summary = (
            f"{joined.recorded} outcome(s) recorded, {joined.joined} prediction(s) joined, "
            f"{joined.waiting} waiting for their prediction; {len(measured)} window(s) measured"
        )
        return StageOutcome(quality_demotions(self.metadata, measured), summary=summary)
