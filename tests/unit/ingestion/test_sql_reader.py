"""SQL sources: a query's result read into Arrow in chunks, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion import sql_reader
from gristmill.ingestion.sql_reader import read_sql
from gristmill.testing.data import wine_table


def fill(url: str, table: pa.Table, name: str, schema: str | None = None) -> None:
    frame = table.to_pandas()
    engine = sa.create_engine(url)
    try:
        frame.to_sql(name, engine, schema=schema, index=False)
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    fill(url, wine_table(), "wine")
    return url


def source(url: str, query: str, **options: object) -> SourceSpec:
    return SourceSpec.model_validate(
        {"name": "wine", "format": "sql", "url": url, "query": query, **options}
    )


def test_a_query_reads_into_arrow_in_chunks(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_reader, "_FETCH_ROWS", 50)
    extract = read_sql(source(sqlite_url, "SELECT * FROM wine", partition_rows=100))
    parts = list(extract.parts)
    assert [part.num_rows for part in parts] == [100, 78]
    table = pa.concat_tables(parts)
    assert table.column("proline").to_pylist() == wine_table().column("proline").to_pylist()
    assert extract.origin.startswith("sql:sqlite:///")
    again = read_sql(source(sqlite_url, "SELECT * FROM wine"))
    assert again.content_digest == extract.content_digest
    other = read_sql(source(sqlite_url, "SELECT * FROM wine WHERE target = 1"))
    assert other.content_digest != extract.content_digest


def test_declared_types_and_bad_values(sqlite_url: str) -> None:
    query = (
        "SELECT CAST(target AS TEXT) || CASE WHEN target = 2 THEN 'x' ELSE '' END AS t FROM wine"
    )
    extract = read_sql(source(sqlite_url, query, columns={"t": "int64"}))
    assert len(extract.bad_rows) == 48
    assert extract.bad_rows[0].column == "t"
    assert extract.bad_rows[0].reason == "'2x' is not a valid int64"


def test_no_rows_and_a_bad_query(sqlite_url: str) -> None:
    with pytest.raises(EmptyInputError, match="returned no rows"):
        read_sql(source(sqlite_url, "SELECT * FROM wine WHERE 1 = 0"))
    with pytest.raises(DataError, match="no such table: nope; check the source's `url`"):
        read_sql(source(sqlite_url, "SELECT * FROM nope"))


@pytest.fixture
def postgres_schema(postgres_url: str, namespace: str) -> Iterator[str]:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.schema.CreateSchema(namespace))
    try:
        yield namespace
    finally:
        with engine.begin() as connection:
            connection.execute(sa.schema.DropSchema(namespace, cascade=True))
        engine.dispose()


@pytest.mark.postgres
def test_postgres_query_with_a_server_side_cursor(
    postgres_url: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_reader, "_FETCH_ROWS", 64)
    fill(postgres_url, wine_table(), "wine", schema=postgres_schema)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE TABLE "{postgres_schema}".days (d date, note text)')
        connection.exec_driver_sql(
            f"INSERT INTO \"{postgres_schema}\".days VALUES ('2024-01-02', NULL), (NULL, 'x')"
        )
    engine.dispose()
    extract = read_sql(source(postgres_url, f'SELECT * FROM "{postgres_schema}".wine'))
    table = pa.concat_tables(list(extract.parts))
    assert table.num_rows == 178
    assert table.column("alcohol").to_pylist() == wine_table().column("alcohol").to_pylist()
    days = read_sql(source(postgres_url, f'SELECT * FROM "{postgres_schema}".days ORDER BY d'))
    got = pa.concat_tables(list(days.parts))
    assert got.schema.field("d").type == pa.date32()
    assert got.column("d").to_pylist() == [date(2024, 1, 2), None]
