"""The payload of ``raw.ingested``: what consumers learn about a batch written."""

from __future__ import annotations

from typing import Any

from gristmill.stores.raw import WrittenBatch


def ingested_payload(written: WrittenBatch) -> dict[str, Any]:
    """``batch_id``, ``source``, ``rows``, ``schema``, ``location``, ``content_digest``,
    ``created`` (false when the bytes were a batch already), ``bad_rows``, ``quarantine``,
    ``origin`` (the file, or ``stream:<name>`` for a streamed micro-batch)."""
    batch = written.batch
    return {
        "batch_id": batch.batch_id,
        "source": batch.source,
        "rows": batch.row_count,
        "schema": batch.schema,
        "location": batch.location,
        "content_digest": batch.content_digest,
        "created": written.created,
        "bad_rows": batch.bad_rows,
        "quarantine": batch.quarantine,
        "origin": batch.origin,
    }
