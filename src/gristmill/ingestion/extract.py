"""What a reader produced: the rows cut into parts, the bad rows, and the input's identity."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from gristmill.ingestion.bad_rows import BadRow

# Inputs larger than this are streamed (memory bounded) instead of read whole (fastest).
STREAM_ABOVE_BYTES = 1 << 30


@dataclass(frozen=True)
class Extract:
    """One input read for one batch.

    ``parts`` yields tables of ``schema`` with at most ``partition_rows`` rows each; it may be
    lazy (a streamed input), so it is consumed once, and a bad row found while streaming
    raises from the iteration. ``bad_rows`` are the rows already rejected (whole reads, in
    quarantine mode). ``origin`` is the input's URL (passwords masked).
    """

    origin: str
    content_digest: str
    schema: pa.Schema
    parts: Iterable[pa.Table]
    bad_rows: list[BadRow] = field(default_factory=list)
    size_bytes: int | None = None


def whole_table(
    table: pa.Table,
    *,
    origin: str,
    content_digest: str,
    partition_rows: int,
    bad_rows: list[BadRow],
    size_bytes: int | None = None,
) -> Extract:
    """The extract of an input read whole: ``table`` cut into zero-copy parts."""
    return Extract(
        origin=origin,
        content_digest=content_digest,
        schema=table.schema,
        parts=split_table(table, partition_rows),
        bad_rows=bad_rows,
        size_bytes=size_bytes,
    )


def split_table(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    """``table`` as zero-copy slices of at most ``rows`` rows."""
    for start in range(0, table.num_rows, rows):
        yield table.slice(start, rows)


def repartition(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Regroup a stream of record batches into tables of ``rows`` rows (the last may be short)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        rest = batch
        while rest.num_rows:
            take = min(rows - count, rest.num_rows)
            pending.append(rest.slice(0, take))
            count += take
            rest = rest.slice(take)
            if count == rows:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)
