"""Streaming ingestion: records arriving one message at a time, written as raw micro-batches.

The contract, for the bus consumer that feeds a ``MicroBatcher``:

* ``add`` buffers records in memory only. Records are durable once the ``flush`` (or the
  ``add``/``poll`` that flushed) covering them has returned: their batch is in the raw store
  and its catalog. **Ack a message only after that**; then a crash loses nothing acked, and
  the unacked messages are redelivered and written on the next flush.
* Delivery into the raw store is at-least-once. A batch's digest is that of its records,
  so writing the very same records as one batch again is recognised (``created=False``);
  redelivered records grouped differently are written again in a new batch.
* A flush writes the buffer in batches of at most ``max_rows`` records, oldest first; a
  failed write keeps the unwritten records buffered, so ``flush`` can be retried.
* Bounds: a flush happens when ``max_rows`` records are buffered (in ``add``), or when the
  oldest buffered record has waited ``max_seconds`` (checked in ``add`` and ``poll``; call
  ``poll`` on a timer so a quiet stream is still flushed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pyarrow as pa

from gristmill.core.ids import digest_json
from gristmill.core.schema import schema_change, schema_fields
from gristmill.errors import DataError, SchemaChangedError
from gristmill.ingestion.ingest import RAW_BATCH_KIND
from gristmill.ingestion.records import records_table
from gristmill.stores.metadata import LineageEdge, MetadataStore
from gristmill.stores.raw import RawStore, WrittenBatch


class MicroBatcher:
    """Buffers the records of one stream ``source`` and writes them as raw batches.

    ``clock`` (seconds, monotonic) is injectable so tests need not sleep. Not thread-safe:
    one consumer feeds one batcher.
    """

    def __init__(
        self,
        source: str,
        raw: RawStore,
        metadata: MetadataStore,
        *,
        max_rows: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_schema_change: Literal["fail", "allow"] = "fail",
    ) -> None:
        if max_rows < 1 or max_seconds <= 0:
            raise ValueError("max_rows must be at least 1 and max_seconds more than 0")
        self.source = source
        self.raw = raw
        self.metadata = metadata
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.clock = clock
        self.on_schema_change = on_schema_change
        self._schema: pa.Schema | None = None
        self._buffer: list[dict[str, Any]] = []
        self._oldest_at: float | None = None

    @property
    def pending(self) -> int:
        """Records buffered and not yet written (not durable: do not ack them yet)."""
        return len(self._buffer)

    def due(self) -> bool:
        """Whether ``max_rows`` are buffered, or the oldest record waited ``max_seconds``."""
        if len(self._buffer) >= self.max_rows:
            return True
        return self._oldest_at is not None and self.clock() - self._oldest_at >= self.max_seconds

    def add(self, records: Sequence[dict[str, Any]]) -> list[WrittenBatch]:
        """Buffer ``records``; if a bound is reached, flush and return the batches written."""
        if records and self._oldest_at is None:
            self._oldest_at = self.clock()
        self._buffer.extend(records)
        return self.flush() if self.due() else []

    def poll(self) -> list[WrittenBatch]:
        """Flush if the time bound is reached (call it on a timer); else do nothing."""
        return self.flush() if self._buffer and self.due() else []

    def flush(self) -> list[WrittenBatch]:
        """Write every buffered record now, in batches of at most ``max_rows``."""
        written = []
        while self._buffer:
            chunk = self._buffer[: self.max_rows]
            written.append(self._write(chunk))
            del self._buffer[: len(chunk)]
        self._oldest_at = None
        return written

    def discard(self) -> int:
        """Drop every buffered record (after a failed flush whose messages go back)."""
        dropped = len(self._buffer)
        self._buffer.clear()
        self._oldest_at = None
        return dropped

    def conform(self, records: Sequence[dict[str, Any]]) -> pa.Table:
        """``records`` as a table with the stream's schema (that of its latest batch).

        Columns are put in the schema's order and cast safely (an int where a float is
        expected is fine); a missing or extra column, or a value that does not fit, raises
        ``SchemaChangedError`` unless ``on_schema_change == "allow"``.
        """
        origin = f"stream:{self.source}"
        try:
            table = records_table(records)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(
                f"records of stream {self.source!r} cannot form one table: {exc}; send each "
                "field with one JSON type",
                file=origin,
            ) from exc
        schema = self._known_schema()
        if schema is None or self.on_schema_change == "allow":
            return table
        if set(table.column_names) == set(schema.names):
            try:
                return table.select(schema.names).cast(schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                pass
        change = schema_change(schema_fields(schema), schema_fields(table.schema))
        raise SchemaChangedError(
            f"records of stream {self.source!r} do not fit its schema: "
            f"{change.describe() or 'a value does not fit its column type'}; send records "
            f"with the columns {', '.join(schema.names)}",
            file=origin,
        )

    def _known_schema(self) -> pa.Schema | None:
        if self._schema is None:
            latest = self.metadata.batches.latest_batch(self.source)
            if latest is not None:
                self._schema = self.raw.read(latest.batch_id).schema
        return self._schema

    def _write(self, records: list[dict[str, Any]]) -> WrittenBatch:
        origin = f"stream:{self.source}"
        table = self.conform(records)
        written = self.raw.write_batch(
            self.source, [table], content_digest=digest_json(records), origin=origin
        )
        self._schema = table.schema
        self.metadata.lineage.add_edges(
            [
                LineageEdge(
                    parent_id=origin,
                    parent_kind="stream",
                    child_id=written.batch.batch_id,
                    child_kind=RAW_BATCH_KIND,
                    relation="ingested_from",
                )
            ]
        )
        return written
