"""The event envelope every stage publishes and consumes, and its byte codec.

The envelope is versioned (``schema_version``); a consumer that meets a newer major version
than it knows refuses the event instead of guessing: validation raises
``EnvelopeVersionError`` (see docs/adr/0002-event-envelope-and-delivery.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gristmill.core.ids import new_id
from gristmill.errors import EnvelopeVersionError

ENVELOPE_VERSION = 1

# Event types are past-tense facts. These are the ones the stages built so far announce or
# consume; stages may define more.
SOURCE_AVAILABLE = "source.available"
RAW_INGESTED = "raw.ingested"
RECORDS_APPENDED = "records.appended"
FEATURES_GENERATED = "features.generated"
DATA_ANOMALOUS = "data.anomalous"
MODEL_TRAINED = "model.trained"
MODEL_EVALUATED = "model.evaluated"
MODEL_DEPLOYED = "model.deployed"  # an alias or the traffic policy of a model changed (key: it)
MODEL_ROLLED_BACK = "model.rolled_back"  # a model's traffic went back to @previous (key: it)
SCORES_REQUESTED = "scores.requested"  # a batch score job was asked for (key: the model)
SCORES_READY = "scores.ready"  # a batch score job's scores are committed (key: the model)
PREDICTIONS_LOGGED = "predictions.logged"  # a batch of the prediction log was written
FEEDBACK_RECEIVED = "feedback.received"  # actual outcomes of served predictions (core.feedback)
MONITOR_ALERT = "monitor.alert"  # monitoring found a crossing (drift: a column in a window)
STAGE_FAILED = "stage.failed"  # a stage gave up on an event (its error in the payload)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One fact, in the envelope every bus backend carries unchanged.

    ``id`` is a ULID (sortable by creation time). ``key`` groups events about one thing (a
    source name, a model name). ``correlation_id`` ties together all events of one pipeline
    run; ``causation_id`` is the id of the event that caused this one (``None`` for a root).
    ``payload`` holds JSON values only, so the envelope round-trips exactly through bytes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    type: str
    key: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime = Field(default_factory=_utcnow)
    correlation_id: str = Field(default_factory=new_id)
    causation_id: str | None = None
    schema_version: int = ENVELOPE_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        # Checked on the field alone, so a newer envelope is refused even if its other fields
        # changed shape too; ``from_bytes`` then reports the version, not the shapes.
        if version > ENVELOPE_VERSION:
            raise EnvelopeVersionError(version, ENVELOPE_VERSION)
        return version

    def caused(self, type: str, payload: dict[str, Any], *, key: str | None = None) -> Event:
        """A new event caused by this one: same correlation, causation set to this id."""
        return Event(
            type=type,
            key=self.key if key is None else key,
            payload=payload,
            correlation_id=self.correlation_id,
            causation_id=self.id,
        )

    def to_bytes(self) -> bytes:
        """Encode as UTF-8 JSON; ``Event.from_bytes`` inverts it exactly."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Event:
        """Decode bytes written by ``to_bytes``.

        Raises ``EnvelopeVersionError`` for an envelope newer than ``ENVELOPE_VERSION``, and
        ``pydantic.ValidationError`` for anything else that is not an envelope (both are
        ``ValueError`` subclasses).
        """
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            for error in exc.errors():
                refused = error.get("ctx", {}).get("error")
                if isinstance(refused, EnvelopeVersionError):
                    raise EnvelopeVersionError(refused.seen, refused.known) from exc
            raise
