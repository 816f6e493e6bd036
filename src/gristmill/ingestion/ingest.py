"""``ingest``: read a source and write one raw batch per new input, with lineage.

The CLI, notebooks and ``IngestionStage`` call it. It is idempotent by content: an input whose
bytes (files) or result (SQL) are already a batch of the source is not written again — unless
it is parsed otherwise (another delimiter, ``names`` or declared ``columns``): how a file is
read is part of its batch's identity (``readers.batch_digest``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pyarrow as pa

from gristmill.config.sources import SourceSpec
from gristmill.core.schema import check_schema, schema_fields
from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.ingestion.bad_rows import bad_rows_error, quarantine_table
from gristmill.ingestion.extract import STREAM_ABOVE_BYTES, Extract
from gristmill.ingestion.files import digest_file
from gristmill.ingestion.readers import batch_digest, input_files, read_file
from gristmill.ingestion.sql_reader import read_sql
from gristmill.stores.lineage import FILE_KIND, file_node
from gristmill.stores.metadata import LineageEdge, MetadataStore
from gristmill.stores.raw import RawStore, WrittenBatch

Progress = Callable[[int, int | None], None]
"""``progress(rows_done, total_bytes)``: rows handed to the writer so far for the current
input, and that input's size in bytes when known (``None`` for SQL)."""

RAW_BATCH_KIND = "raw_batch"

logger = logging.getLogger(__name__)


def ingest(
    source: SourceSpec,
    raw: RawStore,
    metadata: MetadataStore,
    *,
    run_id: str | None = None,
    progress: Progress | None = None,
    file: str | None = None,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> list[WrittenBatch]:
    """Ingest ``source`` (or only ``file`` of it) and return the batches, oldest input first.

    A file or SQL source gives one batch; an input already ingested comes back with
    ``created=False``. A folder source gives one batch per *new* file (by content digest)
    and leaves known files out. Raises ``DataError`` (file, row, column named) for bad input
    unless ``on_bad_rows: quarantine``, ``EmptyInputError`` for no rows, and
    ``SchemaChangedError`` when the schema differs from the source's previous batch unless
    ``on_schema_change: allow``. Nothing is visible after a failure. Inputs larger than
    ``stream_above`` bytes are streamed where the format and policy allow.
    """
    if not source.name:
        raise ConfigError("the source has no name; give it one (its key under `sources:`)")
    if source.format == "sql":
        extract = read_sql(source)
        known = metadata.batches.find_batch_by_digest(source.name, extract.content_digest)
        if known is not None:
            return [WrittenBatch(known, created=False)]
        return [_write(source, extract, raw, metadata, run_id=run_id, progress=progress)]
    written = []
    for item in input_files(source, file):
        digest = batch_digest(source, item, digest_file(item))
        known = metadata.batches.find_batch_by_digest(source.name, digest)
        if known is not None:
            if source.format != "folder" or file is not None:
                written.append(WrittenBatch(known, created=False))
            continue
        try:
            extract = read_file(item, source, content_digest=digest, stream_above=stream_above)
            written.append(_write(source, extract, raw, metadata, run_id=run_id, progress=progress))
        except EmptyInputError:
            if source.format != "folder":
                raise
            # An empty file in a landing folder holds nothing to keep; it must not block
            # the files that come after it.
            logger.warning("skipping %s: it holds no rows", item.url)
    return written


def _write(
    source: SourceSpec,
    extract: Extract,
    raw: RawStore,
    metadata: MetadataStore,
    *,
    run_id: str | None,
    progress: Progress | None,
) -> WrittenBatch:
    if extract.bad_rows and source.on_bad_rows == "fail":
        raise bad_rows_error(extract.bad_rows, extract.origin)
    if source.on_schema_change == "fail":
        previous = metadata.batches.latest_batch(source.name)
        if previous is not None:
            check_schema(
                source.name,
                previous.schema,
                schema_fields(extract.schema),
                file=extract.origin,
                previous_batch=previous.batch_id,
            )
    try:
        written = raw.write_batch(
            source.name,
            _reported(extract, progress),
            content_digest=extract.content_digest,
            origin=extract.origin,
            run_id=run_id,
            quarantine=quarantine_table(extract.bad_rows),
        )
    except EmptyInputError as exc:
        if not extract.bad_rows:
            raise
        raise DataError(
            f"every row of {extract.origin} is bad ({len(extract.bad_rows)} rows); "
            f"the first: {bad_rows_error(extract.bad_rows, extract.origin)}",
            file=extract.origin,
            row=extract.bad_rows[0].row,
            column=extract.bad_rows[0].column,
        ) from exc
    source_node = f"source:{source.name}"
    file = file_node(extract.origin)  # one node per file, however its path was written
    edges = [
        LineageEdge(
            parent_id=source_node if source.format == "sql" else file,
            parent_kind="source" if source.format == "sql" else FILE_KIND,
            child_id=written.batch.batch_id,
            child_kind=RAW_BATCH_KIND,
            relation="ingested_from",
        )
    ]
    if source.format != "sql":  # source -> file -> batch, so `lineage <source>` works too
        edges.append(
            LineageEdge(
                parent_id=source_node,
                parent_kind="source",
                child_id=file,
                child_kind=FILE_KIND,
                relation="provided",
            )
        )
    metadata.lineage.add_edges(edges)
    return written


def _reported(extract: Extract, progress: Progress | None) -> Iterator[pa.Table]:
    rows = 0
    for part in extract.parts:
        yield part
        rows += part.num_rows
        if progress is not None:
            progress(rows, extract.size_bytes)
