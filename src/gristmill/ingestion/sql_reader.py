"""A SQL query (SQLAlchemy URL) → Arrow, fetched in chunks and converted column by column."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from gristmill.config.sources import SourceSpec
from gristmill.core.urls import mask_url
from gristmill.errors import BackendUnavailableError, ConfigError, DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.column_types import cast_declared
from gristmill.ingestion.extract import Extract, whole_table

_FETCH_ROWS = 50_000


def read_sql(spec: SourceSpec) -> Extract:
    """Run the source's query and read its whole result; a bad row's number is its position.

    The driver's cursor is read ``_FETCH_ROWS`` rows at a time (a server-side cursor where the
    driver has one) and each chunk becomes Arrow column by column. The content digest is the
    SHA-256 of the result's Arrow IPC stream, so the same result is recognised next time.
    """
    url = mask_url(str(spec.url))
    origin = f"sql:{url}"
    table = _fetch(spec, url)
    if table.num_rows == 0:
        raise EmptyInputError(
            f"the query of source {spec.name!r} returned no rows ({url})", file=origin
        )
    digest = _ipc_digest(table)
    bad_rows: list[BadRow] = []
    if spec.columns:
        table, bad_rows = cast_declared(
            table, spec.columns, file=origin, row_number=lambda index: index + 1
        )
    return whole_table(
        table,
        origin=origin,
        content_digest=digest,
        partition_rows=spec.partition_rows,
        bad_rows=bad_rows,
    )


def _fetch(spec: SourceSpec, url: str) -> pa.Table:
    try:
        engine = sa.create_engine(str(spec.url))
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"source {spec.name!r}: cannot use the SQL url {url}: {exc}; check the url's "
            "dialect+driver (e.g. postgresql+psycopg://user@host/db) and that its driver "
            "package is installed"
        ) from exc
    try:
        connection = engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise BackendUnavailableError(
            f"source {spec.name!r}: cannot connect to the database at {url}: "
            f"{getattr(exc, 'orig', None) or exc}"
        ) from exc
    try:
        result = connection.execution_options(stream_results=True).exec_driver_sql(str(spec.query))
        names = list(result.keys())
        chunks = []
        while rows := result.fetchmany(_FETCH_ROWS):
            chunks.append(_to_arrow(rows, names, url))
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DataError(
            f"the query of source {spec.name!r} failed on {url}: {cause}; check the "
            "source's `url` and `query`",
            file=f"sql:{url}",
        ) from exc
    finally:
        connection.close()
        engine.dispose()
    if not chunks:
        return pa.table({name: pa.array([], pa.null()) for name in names})
    return pa.concat_tables(chunks, promote_options="permissive").combine_chunks()


def _to_arrow(rows: Any, names: list[str], url: str) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = []
    for name, values in zip(names, columns, strict=True):
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataError(
                f"column {name!r} of the query result ({url}) mixes value types: {exc}; cast "
                "it in the query",
                file=f"sql:{url}",
                column=name,
            ) from exc
    return pa.table(arrays, names=names)


class _Digest:
    """A write-only file that hashes what is written to it (no copy of the IPC stream)."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha.update(view)
        return view.nbytes

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _ipc_digest(table: pa.Table) -> str:
    digest = _Digest()
    with pa.ipc.new_stream(pa.PythonFile(digest, mode="w"), table.schema) as writer:
        writer.write_table(table)
    return "sha256:" + digest.sha.hexdigest()
