"""Stray quotes refuse a CSV file, naming the row; quoted values that span lines still read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError
from gristmill.ingestion import csv_reader
from gristmill.ingestion.bad_rows import BadRow, bad_rows_error
from gristmill.ingestion.csv_reader import read_csv
from gristmill.ingestion.files import stat_file
from gristmill.testing.data import housing_table, write_csv, write_lines

MODES = ["fail", "quarantine"]


def read(path: Path, **options: Any) -> tuple[pa.Table, list[BadRow]]:
    stream_above = options.pop("stream_above", 1 << 40)
    spec = SourceSpec(name="s", format="csv", path=str(path), **options)
    extract = read_csv(stat_file(str(path)), spec, content_digest="d", stream_above=stream_above)
    return pa.concat_tables(list(extract.parts)), extract.bad_rows


def housing_with_quote(tmp_path: Path, line: int, column: int) -> Path:
    """The 20,640-row housing file with a quote opening ``column`` (0-based) of ``line``."""
    path = write_csv(tmp_path / "housing.csv", housing_table())
    lines = path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[column] = '"' + fields[column]
    lines[line - 1] = ",".join(fields)
    return write_lines(path, lines)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("column", [2, 8], ids=["mid-row", "last-column"])
def test_an_unterminated_quote_refuses_the_file_naming_its_row(
    tmp_path: Path, mode: str, column: int
) -> None:
    # Before: quarantine ingested 29 rows and one "bad row" holding the other 20,611 (or,
    # with the quote in the last column, 30 rows whose last value was the rest of the file).
    path = housing_with_quote(tmp_path, line=31, column=column)
    with pytest.raises(DataError) as caught:
        read(path, on_bad_rows=mode)
    message = str(caught.value)
    assert (caught.value.file, caught.value.row) == (str(path), 31)
    assert f"{path}, line 31 (data row 30): a quote opens here and never closes" in message
    assert "20,611 lines" in message
    row = path.read_text().splitlines()[30]
    assert len(row) < 80 and repr(row) in message
    assert len(message) < 600


@pytest.mark.parametrize("stream_above", [1 << 40, 0], ids=["whole", "streamed"])
def test_a_quote_that_closes_rows_later_is_stray_too(tmp_path: Path, stream_above: int) -> None:
    lines = ["id,name,score", *[f"{i},n{i},{i}" for i in range(1, 60)]]
    lines[9] = '9,"n9,9'  # opens on line 10 ...
    lines[49] = '49,n49",49'  # ... and a second stray quote closes it on line 50
    path = write_lines(tmp_path / "x.csv", lines)
    with pytest.raises(
        DataError, match=r"x\.csv, line 10 \(data row 9\): a quoted value opens here"
    ) as caught:
        read(path, stream_above=stream_above)
    assert "runs over 40 lines that read as rows" in str(caught.value)


def test_a_stray_quote_in_the_header_is_named(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ['id,"name,score', "1,a,2", "3,b,4"])
    with pytest.raises(
        DataError, match=r"x\.csv, line 1 \(the header\): a quote opens here and never closes"
    ):
        read(path)


@pytest.mark.parametrize("mode", MODES)
def test_a_streamed_file_with_an_unterminated_quote_is_refused(tmp_path: Path, mode: str) -> None:
    path = housing_with_quote(tmp_path, line=31, column=8)
    with pytest.raises(
        DataError, match=r"line 31 \(data row 30\): a quote opens here and never closes"
    ):
        read(path, on_bad_rows=mode, stream_above=0)


def test_quoted_values_may_span_lines(tmp_path: Path) -> None:
    lines = ["id,note,score", '1,"first line', 'second, line",10', '2,"one ""quoted"" word",20']
    table, bad = read(write_lines(tmp_path / "x.csv", lines))
    assert bad == []
    assert table.column("note").to_pylist() == ["first line\nsecond, line", 'one "quoted" word']


@pytest.mark.parametrize("stream_above", [1 << 40, 0], ids=["whole", "streamed"])
def test_values_spanning_lines_across_parse_blocks_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stream_above: int
) -> None:
    # Blocks of 4 KiB stand for the 16 MiB blocks of a large file. Before, the parse failed
    # ("CSV parser got out of sync with chunker").
    monkeypatch.setattr(csv_reader, "_BLOCK_BYTES", 4096)
    lines = ["id,note,score"] + [f'{i},"line one\nline two, {i}",{i}' for i in range(2000)]
    table, bad = read(write_lines(tmp_path / "x.csv", lines), stream_above=stream_above)
    assert (table.num_rows, bad) == (2000, [])
    assert table.column("note")[1999].as_py() == "line one\nline two, 1999"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream_above", [1 << 40, 0], ids=["whole", "streamed"])
def test_a_stray_quote_in_a_file_of_several_blocks_loses_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, stream_above: int
) -> None:
    # Cut at line ends, the block holding the open quote was dropped without a word:
    # 20,607 rows, no bad row, no error.
    monkeypatch.setattr(csv_reader, "_BLOCK_BYTES", 4096)
    path = housing_with_quote(tmp_path, line=31, column=2)
    with pytest.raises(
        DataError, match=r"line 31 \(data row 30\): a quote opens here and never closes"
    ):
        read(path, on_bad_rows=mode, stream_above=stream_above)


def test_a_long_bad_row_is_quoted_short(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.csv", ["a,b", "1,2", "3," + "x" * 50_000 + ",4"])
    _, bad = read(path, on_bad_rows="quarantine")
    assert len(bad[0].text or "") == 50_004  # the quarantine keeps the whole row
    whole = bad_rows_error(bad, str(path))
    with pytest.raises(DataError) as streamed:
        read(path, stream_above=0)
    assert "row 3" in str(whole)
    for error in (whole, streamed.value):
        assert "reads '3,xxxx" in str(error)
        assert len(str(error)) < 400


def rows_then_stray_quote(ending: str, *, bom: bool = False) -> bytes:
    """A header, a quoted value spanning two lines, empty lines, then a quote that never
    closes on file line 310: data row 305 (the value spans one line break, three lines are
    empty, and the header is not a data row)."""
    lines = ["id,note,score", f'1,"first{ending}second",10', "", ""]
    lines += [f"{i},n{i},{i}" for i in range(2, 150)] + [""]
    lines += [f"{i},n{i},{i}" for i in range(150, 305)]
    lines += ['305,"n305,305', *[f"{i},n{i},{i}" for i in range(306, 320)]]
    text = "".join(line + ending for line in lines)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("stream_above", "block_bytes"),
    [(1 << 40, 16 << 20), (0, 16 << 20), (1 << 40, 1024), (0, 1024)],
    ids=["whole", "streamed", "whole-blocks-by-row", "streamed-blocks-by-row"],
)
@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_a_stray_quote_is_named_by_file_line_and_data_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    stream_above: int,
    block_bytes: int,
    ending: str,
) -> None:
    # Before: "row 310" for LF and CRLF (the file line, read as a row: the table row is
    # 305), and "row 1" for a file whose lines end in CR alone.
    monkeypatch.setattr(csv_reader, "_BLOCK_BYTES", block_bytes)
    path = tmp_path / "x.csv"
    path.write_bytes(rows_then_stray_quote(ending))
    with pytest.raises(DataError) as caught:
        read(path, on_bad_rows=mode, stream_above=stream_above)
    message = str(caught.value)
    assert "x.csv, line 310 (data row 305): a quote opens here and never closes" in message
    assert "the line reads '305,\"n305,305'" in message
    assert (caught.value.file, caught.value.row) == (str(path), 310)


def test_the_data_row_named_is_the_row_the_table_would_hold(tmp_path: Path) -> None:
    # The same file with its stray quote closed reads; its data row 305 is the one named.
    path = tmp_path / "x.csv"
    path.write_bytes(rows_then_stray_quote("\n", bom=True).replace(b'"n305', b"n305"))
    table, bad = read(path)
    assert bad == [] and table.column("id")[305 - 1].as_py() == 305
    path.write_bytes(rows_then_stray_quote("\n", bom=True))
    with pytest.raises(DataError, match=r"line 310 \(data row 305\).*reads '305,"):
        read(path)
