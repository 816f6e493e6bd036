"""The ingestion stage: on ``source.available``, ingest the source and announce each batch."""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from gristmill.config.sources import SourceSpec
from gristmill.core.events import RAW_INGESTED, SOURCE_AVAILABLE, Event
from gristmill.core.ids import digest_json
from gristmill.errors import ConfigError
from gristmill.ingestion import ingest
from gristmill.ingestion.announce import ingested_payload
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.raw import RawStore, WrittenBatch

logger = logging.getLogger(__name__)

SourceProgress = Callable[[str, int, int | None], None]
"""``progress(source, rows_done, input_bytes)``, called from the handler's thread."""


class IngestionStage:
    """Reads the source named in a ``source.available`` event into the raw store.

    Payload: ``{"source": SourceSpec as JSON, "file": optional path of one file}``. A file
    or SQL source gives one ``raw.ingested`` announcement (``created: false`` when the
    content was a batch already); a folder source one per new file, none when nothing is new.
    """

    name = "ingestion"
    consumes = SOURCE_AVAILABLE

    def __init__(
        self, raw: RawStore, metadata: MetadataStore, *, progress: SourceProgress | None = None
    ) -> None:
        self.raw = raw
        self.metadata = metadata
        self.progress = progress

    def __repr__(self) -> str:
        return f"IngestionStage(raw={self.raw!r}, metadata={self.metadata!r})"

    def idempotency_key(self, event: Event) -> str:
        """The event itself (its id) and the source spec it carries.

        A redelivered event does no work twice. A *new* event for unchanged files is
        handled again, cheaply: the content digest finds the existing batch, and the
        announcement says ``created: false``.
        """
        return digest_json({"event": event.id, "source": event.payload.get("source")})

    def handle(self, event: Event) -> StageOutcome:
        source, file = _payload(event)
        report = self.progress
        # A batch points at its run only when the event belongs to a recorded run (a
        # queued or streamed event's correlation id names no run).
        run = self.metadata.runs.find_run(event.correlation_id)
        written = ingest(
            source,
            self.raw,
            self.metadata,
            run_id=run.run_id if run is not None else None,
            file=file,
            progress=(lambda rows, size: report(source.name, rows, size)) if report else None,
        )
        announcements = [_announcement(item) for item in written]
        return StageOutcome(announcements=announcements, summary=_summary(source, written))


def _payload(event: Event) -> tuple[SourceSpec, str | None]:
    try:
        source = SourceSpec.model_validate(event.payload.get("source"))
    except ValidationError as exc:
        raise ConfigError(
            f"event {event.id} ({event.type}) carries no valid source spec under 'source': "
            f"{exc.errors()[0]['msg']}; publish the source's spec as JSON"
        ) from exc
    file = event.payload.get("file")
    if file is not None and not isinstance(file, str):
        raise ConfigError(f"event {event.id}: 'file' must be a path, not {file!r}")
    return source, file


def _announcement(written: WrittenBatch) -> Announcement:
    return Announcement(
        type=RAW_INGESTED, key=written.batch.source, payload=ingested_payload(written)
    )


def _summary(source: SourceSpec, written: list[WrittenBatch]) -> str:
    if not written:
        return f"{source.name}: nothing new"
    new = [item.batch for item in written if item.created]
    rows = sum(batch.row_count for batch in new)
    bad = sum(batch.bad_rows for batch in new)
    known = len(written) - len(new)
    parts = [f"{source.name}: {len(new)} new batch(es), {rows} rows"]
    if bad:
        parts.append(f"{bad} bad rows quarantined")
    if known:
        parts.append(f"{known} already ingested")
    return ", ".join(parts)
