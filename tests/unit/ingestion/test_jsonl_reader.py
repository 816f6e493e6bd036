"""JSON Lines reading: good files in parallel, broken lines and type conflicts named by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.files import stat_file
from gristmill.ingestion.jsonl_reader import read_jsonl
from gristmill.testing.data import wine_table, write_jsonl, write_lines


def read(path: Path, **options: Any) -> tuple[pa.Table, list[BadRow]]:
    stream_above = options.pop("stream_above", 1 << 40)
    source = SourceSpec(name="s", format="jsonl", path=str(path), **options)
    extract = read_jsonl(
        stat_file(str(path)), source, content_digest="d", stream_above=stream_above
    )
    return pa.concat_tables(list(extract.parts)), extract.bad_rows


def test_wine_as_json_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wine.jsonl", wine_table().to_pylist())
    table, bad = read(path)
    assert (table.num_rows, table.num_columns, bad) == (178, 14, [])
    streamed, _ = read(path, stream_above=0, partition_rows=100)
    assert streamed.equals(table)


def test_keys_missing_from_the_first_line_are_kept(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", ['{"a": 1}', "", '{"a": 2, "b": "x"}', "not json"])
    table, bad = read(path, on_bad_rows="quarantine")
    assert table.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    assert bad == [BadRow(4, None, "not valid JSON: Expecting value at character 1", "not json")]


def test_broken_lines_and_type_conflicts_are_named_by_line(tmp_path: Path) -> None:
    lines = ['{"id": 1, "v": 1.5}', '{"id": 2, "v": 2', "[1, 2]", '{"id": 4, "v": "high"}']
    path = write_lines(tmp_path / "x.jsonl", lines)
    table, bad = read(path, on_bad_rows="quarantine")
    assert table.to_pylist() == [{"id": 1, "v": 1.5}]
    assert [(b.row, b.column) for b in bad] == [(2, None), (3, None), (4, "v")]
    assert bad[1].reason == "a JSON array, not an object"
    assert "a JSON string where line 1 has a number" in bad[2].reason


def test_declared_types_convert_and_name_values_that_do_not_fit(tmp_path: Path) -> None:
    lines = ['{"id": "1", "n": 5}', '{"id": "x", "n": 6}', '{"id": 3, "n": "7"}']
    path = write_lines(tmp_path / "x.jsonl", lines)
    table, bad = read(path, columns={"id": "int64", "n": "string"}, on_bad_rows="quarantine")
    assert table.to_pylist() == [{"id": 1, "n": "5"}, {"id": 3, "n": "7"}]
    assert bad == [BadRow(2, "id", "'x' is not a valid int64")]


def test_empty_files(tmp_path: Path) -> None:
    with pytest.raises(EmptyInputError, match="is empty"):
        read(write_lines(tmp_path / "x.jsonl", []))
    with pytest.raises(EmptyInputError, match="no JSON objects"):
        read(write_lines(tmp_path / "y.jsonl", ["", "  "]))


def test_a_streamed_broken_file_fails_with_the_fix(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", ['{"a": 1}', '{"a": '])
    with pytest.raises(DataError, match="on_bad_rows: quarantine"):
        read(path, stream_above=0)
