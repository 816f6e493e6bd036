"""CSV reading: whole and streamed, partitioning, and every kind of bad input named precisely."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.csv_reader import read_csv
from gristmill.ingestion.files import digest_file, stat_file
from gristmill.testing.data import numbers_table, wine_table, write_csv, write_lines


def spec(path: Path, **options: Any) -> SourceSpec:
    return SourceSpec(name="s", format="csv", path=str(path), **options)


def read(path: Path, **options: Any) -> tuple[pa.Table, list[BadRow]]:
    stream_above = options.pop("stream_above", 1 << 40)
    extract = read_csv(
        stat_file(str(path)), spec(path, **options), content_digest="d", stream_above=stream_above
    )
    return pa.concat_tables(list(extract.parts)), extract.bad_rows


def test_wine_reads_with_inferred_types_and_its_digest_is_of_the_bytes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wine.csv", wine_table())
    file = stat_file(str(path))
    table, bad = read(path)
    assert (table.num_rows, table.num_columns, bad) == (178, 14, [])
    assert table.schema.field("target").type == pa.int64()
    assert table.column("alcohol").to_pylist() == wine_table().column("alcohol").to_pylist()
    assert digest_file(file) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_parts_have_at_most_partition_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "wine.csv", wine_table())
    extract = read_csv(stat_file(str(path)), spec(path, partition_rows=50), content_digest="d")
    assert [part.num_rows for part in extract.parts] == [50, 50, 50, 28]


def test_a_streamed_read_gives_the_same_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "n.csv", numbers_table(3000))
    whole, _ = read(path)
    extract = read_csv(
        stat_file(str(path)), spec(path, partition_rows=1000), content_digest="d", stream_above=0
    )
    parts = list(extract.parts)
    assert [part.num_rows for part in parts] == [1000, 1000, 1000]
    assert pa.concat_tables(parts).equals(whole)


def test_delimiter_and_declared_types(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["id;when;n", "1;2024-01-02;7", "2;2024-03-04;NA"])
    table, bad = read(path, delimiter=";", columns={"when": "date", "n": "float64"})
    assert bad == []
    assert table.schema.field("when").type == pa.date32()
    assert table.column("n").to_pylist() == [7.0, None]


def test_a_row_with_too_many_or_too_few_fields_is_named_by_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["a,b,c", "1,2,3", "4,5", "6,7,8", "9,10,11,12"])
    table, bad = read(path, on_bad_rows="quarantine")
    assert table.column("a").to_pylist() == [1, 6]
    assert bad == [
        BadRow(3, None, "expected 3 fields, found 2", "4,5"),
        BadRow(5, None, "expected 3 fields, found 4", "9,10,11,12"),
    ]


def test_values_that_do_not_fit_the_declared_type_are_named_by_line_and_column(
    tmp_path: Path,
) -> None:
    lines = ["id,age,name", "1,30,ann", "2,thirty,bob", "3", "4,41,cy", "5,4x,dee", "6,,eve"]
    path = write_lines(tmp_path / "x.csv", lines)
    table, bad = read(path, columns={"id": "int64", "age": "int64"}, on_bad_rows="quarantine")
    assert table.column("id").to_pylist() == [1, 4, 6]
    assert table.column("age").to_pylist() == [30, 41, None]
    assert table.schema.field("age").type == pa.int64()
    assert [(b.row, b.column, b.reason) for b in bad] == [
        (4, None, "expected 3 fields, found 1"),
        (3, "age", "'thirty' is not a valid int64"),
        (6, "age", "'4x' is not a valid int64"),
    ]


def test_a_declared_column_missing_from_the_file_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["a,b", "1,x"])
    with pytest.raises(DataError, match="no column 'c'") as caught:
        read(path, columns={"c": "int64"})
    assert caught.value.column == "c"


@pytest.mark.parametrize(
    ("lines", "message"), [([], "is empty"), (["a,b,c"], "header but no data rows")]
)
def test_empty_inputs(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_lines(tmp_path / "x.csv", lines) if lines else tmp_path / "x.csv"
    path.touch()
    with pytest.raises(EmptyInputError, match=message) as caught:
        read(path)
    assert caught.value.file == str(path)


def test_a_missing_file_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such file.*check the source's `path`") as caught:
        stat_file(str(tmp_path / "nope.csv"))
    assert caught.value.file == str(tmp_path / "nope.csv")


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="format: folder"):
        stat_file(str(tmp_path))


def test_streamed_value_that_breaks_the_inferred_type_names_the_column(tmp_path: Path) -> None:
    rows = 2_000_000  # more than one 16 MiB block: the type is inferred from the first
    table = pa.table({"a": pa.array(range(rows)), "b": pa.array(range(rows))})
    path = write_csv(tmp_path / "x.csv", table)
    with path.open("a") as stream:
        stream.write("1,oops\n")
    extract = read_csv(stat_file(str(path)), spec(path), content_digest="d", stream_above=0)
    with pytest.raises(DataError, match="declare column 'b'") as caught:
        list(extract.parts)
    assert caught.value.column == "b"


def test_streamed_malformed_row_fails_with_its_text(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["a,b", "1,2", "3"])
    with pytest.raises(DataError, match="expected 2 fields, found 1; the row reads '3'"):
        extract = read_csv(stat_file(str(path)), spec(path), content_digest="d", stream_above=0)
        list(extract.parts)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"a,a\n1,2\n", "names column 'a' twice"),
        (b"a,\n1,2\n", "column 2 has no name"),
        (
            b"name,city\nann,Paris\nbob,caf\xe9\n",
            r"odd\.csv, row 3, column 'city' is not UTF-8 text: byte 0xe9 at offset 27 \(perhaps "
            r"Latin-1 or Windows-1252\); save the file as UTF-8",
        ),
        (b"n\xe4me,city\nbob,Paris\n", r"odd\.csv, row 1 is not UTF-8 text: byte 0xe4 at offset 1"),
        (
            "name,city\nbob,Zürich\n".encode("utf-16"),
            r"odd\.csv, row 1 is not UTF-8 text: byte 0xff at offset 0 \(perhaps UTF-16\)",
        ),
    ],
)
def test_a_header_or_encoding_that_cannot_make_a_batch_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read(path)


@pytest.mark.parametrize("columns", [None, {"name": "string", "city": "string"}])
@pytest.mark.parametrize("stream_above", [0, 1 << 40])
def test_text_that_is_not_utf8_is_named_by_row_read_whole_or_streamed(
    tmp_path: Path, columns: dict[str, str] | None, stream_above: int
) -> None:
    path = tmp_path / "cities.csv"
    path.write_bytes(b"name,city\n" + b"ann,Paris\n" * 1000 + b"bob,Z\xfcrich\n")
    with pytest.raises(DataError, match=r"cities\.csv, row 1002.* is not UTF-8 text: byte 0xfc"):
        read(path, columns=columns, stream_above=stream_above)


def test_a_file_without_a_header_is_read_with_its_names(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["1,ann", "2,bob,extra", "3,cid"])
    table, bad = read(path, names=["id", "name"], on_bad_rows="quarantine")
    assert table.column_names == ["id", "name"] and table.column("id").to_pylist() == [1, 3]
    assert [(b.row, b.reason) for b in bad] == [(2, "expected 2 fields, found 3")]


def test_a_declared_type_that_does_not_fit_names_the_line_without_a_header(
    tmp_path: Path,
) -> None:
    path = write_lines(tmp_path / "x.csv", ["1,ann", "two,bob"])
    _, bad = read(path, names=["id", "name"], columns={"id": "int64"}, on_bad_rows="quarantine")
    assert [(b.row, b.column) for b in bad] == [(2, "id")]


def test_a_stray_quote_counts_data_rows_from_the_first_line_without_a_header(
    tmp_path: Path,
) -> None:
    path = write_lines(tmp_path / "x.csv", ["1,a,b", '2,"c,d', "3,e,f"])
    with pytest.raises(DataError, match=r"line 2 \(data row 2\)"):
        read(path, names=["id", "x", "y"])


def test_names_given_for_a_file_with_a_header_are_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["id,name", "1,ann"])
    with pytest.raises(DataError, match=r"row 1 is a header \('id,name'\)"):
        read(path, names=["id", "name"])


@pytest.mark.parametrize("stream_above", [0, 1 << 40])
def test_a_malformed_row_not_in_utf8_is_named_without_a_traceback(
    tmp_path: Path, stream_above: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n\xa9,3,4\n5,6\n")
    with pytest.raises(DataError, match=r"x\.csv, row 3 is not UTF-8 text: byte 0xa9 at offset 8"):
        read(path, stream_above=stream_above)
    assert "Traceback" not in capsys.readouterr().err  # pyarrow's unraisable error is kept
