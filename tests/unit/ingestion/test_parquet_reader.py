"""Parquet reading: whole or streamed by record batch, declared types checked row by row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.files import stat_file
from gristmill.ingestion.parquet_reader import read_parquet
from gristmill.testing.data import numbers_table, write_lines, write_parquet


def extract_of(path: Path, **options: Any) -> Any:
    stream_above = options.pop("stream_above", 1 << 40)
    source = SourceSpec(name="s", format="parquet", path=str(path), **options)
    return read_parquet(stat_file(str(path)), source, content_digest="d", stream_above=stream_above)


def test_whole_and_streamed_reads_agree(tmp_path: Path) -> None:
    table = numbers_table(10_000)
    path = write_parquet(tmp_path / "n.parquet", table, row_group_rows=3000)
    whole = extract_of(path, partition_rows=4000)
    assert [p.num_rows for p in whole.parts] == [4000, 4000, 2000]
    streamed = extract_of(path, partition_rows=4000, stream_above=0)
    parts = list(streamed.parts)
    assert [p.num_rows for p in parts] == [4000, 4000, 2000]
    assert pa.concat_tables(parts).equals(table)


def test_declared_types_cast_and_bad_values_are_named_by_row(tmp_path: Path) -> None:
    table = pa.table({"code": ["1", "2", "two", "4"], "x": [1.0, 2.0, 3.0, 4.5]})
    path = write_parquet(tmp_path / "c.parquet", table)
    extract = extract_of(path, columns={"code": "int32", "x": "int64"}, on_bad_rows="quarantine")
    got = pa.concat_tables(list(extract.parts))
    assert got.to_pylist() == [{"code": 1, "x": 1}, {"code": 2, "x": 2}]
    assert extract.bad_rows == [
        BadRow(3, "code", "'two' is not a valid int32"),
        BadRow(4, "x", "4.5 is not a valid int64"),
    ]


def test_a_streamed_bad_value_fails_with_its_row(tmp_path: Path) -> None:
    table = pa.table({"code": [str(i) for i in range(100)] + ["bad"]})
    path = write_parquet(tmp_path / "c.parquet", table, row_group_rows=30)
    extract = extract_of(path, columns={"code": "int64"}, stream_above=0, partition_rows=40)
    with pytest.raises(DataError, match="row 101, column 'code'") as caught:
        list(extract.parts)
    assert (caught.value.row, caught.value.column) == (101, "code")


def test_an_uncastable_type_names_the_column(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "l.parquet", pa.table({"l": [[1], [2]]}))
    with pytest.raises(DataError, match="column 'l'"):
        extract_of(path, columns={"l": "int64"})


def test_not_parquet_and_no_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="as Parquet"):
        extract_of(write_lines(tmp_path / "x.parquet", ["a,b", "1,2"]))
    empty = write_parquet(tmp_path / "e.parquet", numbers_table(0))
    with pytest.raises(EmptyInputError, match="no rows"):
        extract_of(empty)
