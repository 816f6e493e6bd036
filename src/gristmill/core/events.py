"""The event envelope every stage publishes and consumes, and its byte codec.

The envelope is versioned (``schema_version``); a consumer that meets a newer major version
than it knows refuses the event instead of guessing: validation raises
``EnvelopeVersionError`` (see docs/adr/0002-event-envelope-and-delivery.md). The event
types (``RAW_INGESTED``…) are defined in ``core.event_types`` and exported here too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gristmill.core.event_types import (
    DATA_ANOMALOUS,
    FEATURES_GENERATED,
    FEEDBACK_RECEIVED,
    MODEL_DEPLOYED,
    MODEL_EVALUATED,
    MODEL_ROLLED_BACK,
    MODEL_TRAINED,
    MONITOR_ALERT,
    PREDICTIONS_LOGGED,
    RAW_INGESTED,
    RECORDS_APPENDED,
    SCORES_READY,
    SCORES_REQUESTED,
    SOURCE_AVAILABLE,
    STAGE_FAILED,
)
from gristmill.core.ids import new_id
from gristmill.errors import EnvelopeVersionError

ENVELOPE_VERSION = 1

__all__ = [
    "DATA_ANOMALOUS",
    "ENVELOPE_VERSION",
    "FEATURES_GENERATED",
    "FEEDBACK_RECEIVED",
    "MODEL_DEPLOYED",
    "MODEL_EVALUATED",
    "MODEL_ROLLED_BACK",
    "MODEL_TRAINED",
    "MONITOR_ALERT",
    "PREDICTIONS_LOGGED",
    "RAW_INGESTED",
    "RECORDS_APPENDED",
    "SCORES_READY",
    "SCORES_REQUESTED",
    "SOURCE_AVAILABLE",
    "STAGE_FAILED",
    "Event",
]


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
