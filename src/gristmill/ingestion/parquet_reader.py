"""Parquet files → Arrow: streamed by record batch, declared column types checked."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow, bad_rows_error
from gristmill.ingestion.column_types import cast_declared
from gristmill.ingestion.extract import STREAM_ABOVE_BYTES, Extract, repartition, whole_table
from gristmill.ingestion.files import InputFile, translate_errors

_BATCH_ROWS = 64 * 1024


def read_parquet(
    file: InputFile,
    spec: SourceSpec,
    *,
    content_digest: str,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> Extract:
    """Read a Parquet file; a bad row's number is its 1-based position in the file.

    Without declared ``columns`` (or when bad rows fail the ingestion) large files stream by
    record batch; with quarantine the file is read whole to find every bad row first.
    """
    parquet = translate_errors(file.url, lambda: _open(file))
    if parquet.metadata.num_rows == 0:
        raise EmptyInputError(f"{file.url} has no rows", file=file.url)
    streamed = file.size > stream_above and (not spec.columns or spec.on_bad_rows == "fail")
    if streamed:
        parts = _stream(parquet, file, spec)
        first = next(parts)
        return Extract(
            origin=file.url,
            content_digest=content_digest,
            schema=first.schema,
            parts=_chain(first, parts),
            size_bytes=file.size,
        )
    table = translate_errors(file.url, parquet.read)
    bad_rows: list[BadRow] = []
    if spec.columns:
        table, bad_rows = cast_declared(
            table, spec.columns, file=file.url, row_number=lambda index: index + 1
        )
    return whole_table(
        table,
        origin=file.url,
        content_digest=content_digest,
        partition_rows=spec.partition_rows,
        bad_rows=bad_rows,
        size_bytes=file.size,
    )


def _open(file: InputFile) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(file.source())
    except pa.ArrowInvalid as exc:
        raise DataError(
            f"cannot read {file.url} as Parquet: {exc}; check the file is Parquet (or set the "
            "source's `format`)",
            file=file.url,
        ) from exc


def _stream(parquet: pq.ParquetFile, file: InputFile, spec: SourceSpec) -> Iterator[pa.Table]:
    """Parts of ``partition_rows`` rows; a declared type that does not fit raises ``DataError``."""
    batches = parquet.iter_batches(batch_size=min(_BATCH_ROWS, spec.partition_rows))
    offset = 0
    for part in repartition(batches, spec.partition_rows):
        checked = part
        if spec.columns:
            checked, bad_rows = cast_declared(
                part, spec.columns, file=file.url, row_number=partial(operator.add, offset + 1)
            )
            if bad_rows:
                raise bad_rows_error(bad_rows, file.url)
        offset += part.num_rows
        yield checked


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest
