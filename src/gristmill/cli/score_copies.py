"""``gristmill score --out FILE``: a job's scores copied to one CSV, Parquet or JSONL file.

The copy is written as the partitions are scored (``ScoresCopy.take`` is the job's sink),
to a temporary file beside ``FILE`` renamed into place once the job is committed — so the
scores are not read back from the store, and a job that fails leaves no half file. When
the copy cannot be made that way (a job finishing partitions committed earlier, a
partition of another shape, a URL), it is made from the committed job, a partition at a
time, as before. Imported when the verb runs (pyarrow).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from gristmill.backends.parquet.scores import dictionary_columns
from gristmill.stores.scores import ScoreJob, ScoreStore


class ScoresCopy:
    """The ``--out`` copy of one job's scores (see the module docstring)."""

    def __init__(self, out: str) -> None:
        self.out = out
        self._suffix = Path(out).suffix.lower()
        where = Path(out)
        self._temporary = where.with_name(f".{where.name}.tmp-{os.getpid()}")
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._next = 0
        self._streaming = "://" not in out  # a local file: renamed into place at the end

    def take(self, index: int, table: pa.Table) -> None:
        """The scores of partition ``index``; a gap or another shape ends the streamed copy
        (``finish`` then copies the committed job)."""
        if not self._streaming:
            return
        if index != self._next or (self._schema is not None and table.schema != self._schema):
            self.discard()
            return
        try:
            if self._writer is None:
                self._writer = _writer(str(self._temporary), self._suffix, table.schema)
                self._schema = table.schema
            self._writer.write_table(table)
        except (OSError, pa.ArrowException):  # copied from the store by finish, which says why
            self.discard()
            return
        self._next += 1

    def finish(self, store: ScoreStore, job: ScoreJob) -> None:
        """Put the copy in place once ``job`` is committed: the streamed file when every
        partition went through ``take``, else a copy of the committed job."""
        if self._streaming and self._writer is not None and self._next == job.partitions_total:
            self._writer.close()
            self._writer = None
            os.replace(self._temporary, self.out)
            return
        self.discard()
        copy_job(store, job.job_id, self.out)

    def discard(self) -> None:
        """Drop the streamed copy (the job failed, or it cannot be streamed)."""
        self._streaming = False
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        self._temporary.unlink(missing_ok=True)


def copy_job(store: ScoreStore, job_id: str, out: str) -> None:
    """The committed job's scores copied to ``out`` (Parquet, CSV or JSON lines by its
    suffix), a partition at a time when they share one schema (the usual case), else
    joined first."""
    tables = store.partitions(job_id)
    first = next(tables, None)
    if first is None:
        first = store.read(job_id)
    suffix = Path(out).suffix.lower()
    same_shape = True
    with _writer(out, suffix, first.schema) as writer:
        writer.write_table(first)
        for table in tables:
            same_shape = table.schema.equals(first.schema)
            if not same_shape:  # a partition of its own shape (no rows, say)
                break
            writer.write_table(table)
    if not same_shape:
        _write_whole(store.read(job_id), out, suffix)


def _writer(out: str, suffix: str, schema: pa.Schema) -> Any:
    if suffix == ".parquet":
        return pyarrow.parquet.ParquetWriter(out, schema, use_dictionary=dictionary_columns(schema))
    if suffix == ".csv":
        return pyarrow.csv.CSVWriter(out, schema)
    return _JsonLines(out)


def _write_whole(table: pa.Table, out: str, suffix: str) -> None:
    if suffix == ".parquet":
        pyarrow.parquet.write_table(table, out)
    elif suffix == ".csv":
        pyarrow.csv.write_csv(table, out)
    else:
        with _JsonLines(out) as writer:
            writer.write_table(table)


class _JsonLines:
    """Rows as JSON lines, a table at a time (the writers' interface of pyarrow's)."""

    def __init__(self, out: str) -> None:
        self._handle = open(out, "w")  # noqa: SIM115 - closed by close()

    def write_table(self, table: pa.Table) -> None:
        for row in table.to_pylist():
            self._handle.write(json.dumps(row, default=str) + "\n")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _JsonLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
