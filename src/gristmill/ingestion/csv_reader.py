"""CSV files → Arrow: parsed in parallel by pyarrow, bad rows located by line number."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pyarrow as pa
from pyarrow import csv

from gristmill.config.sources import SourceSpec
from gristmill.errors import DataError, EmptyInputError
from gristmill.ingestion.bad_rows import EXCERPT_CHARS, BadRow, excerpt
from gristmill.ingestion.column_types import arrow_types, cast_declared, check_declared_present
from gristmill.ingestion.extract import STREAM_ABOVE_BYTES, Extract, repartition, whole_table
from gristmill.ingestion.files import InputFile, translate_errors
from gristmill.ingestion.quotes import holds_quote, refuse_stray_quote, spans_lines
from gristmill.ingestion.text_encoding import refuse_not_utf8, undecodable_rows

_BLOCK_BYTES = 16 << 20
_COLUMN_NUMBER = re.compile(r"column #(\d+)")
_UTF8 = "invalid UTF8"  # what pyarrow says of text that is not UTF-8
T = TypeVar("T")


def read_csv(
    file: InputFile,
    spec: SourceSpec,
    *,
    content_digest: str,
    stream_above: int = STREAM_ABOVE_BYTES,
) -> Extract:
    """Read a CSV file with a header line; see ``BadRow`` for how rows are numbered.

    Files above ``stream_above`` bytes are streamed block by block when bad rows fail the
    ingestion (quarantine needs every bad row before the batch is written, so it reads whole).
    """
    if file.size == 0:
        raise EmptyInputError(f"{file.url} is empty; give it a header line and rows", file=file.url)
    if spec.names:
        refuse_a_header(file, spec.names, _delimiter(spec))
    try:
        if file.size > stream_above and spec.on_bad_rows == "fail":
            return _streamed(file, spec, content_digest)
        table, bad_rows = _read_whole(file, spec)
    except UnicodeDecodeError as exc:  # a header pyarrow read but cannot decode
        refuse_not_utf8(file)
        raise DataError(f"{file.url} is not UTF-8 text ({exc}); save it as UTF-8") from exc
    if table.num_rows == 0 and not bad_rows:
        what = "no rows" if spec.names else "a header but no data rows"
        raise EmptyInputError(f"{file.url} has {what}", file=file.url)
    return whole_table(
        table,
        origin=file.url,
        content_digest=content_digest,
        partition_rows=spec.partition_rows,
        bad_rows=bad_rows,
        size_bytes=file.size,
    )


def _read_whole(file: InputFile, spec: SourceSpec) -> tuple[pa.Table, list[BadRow]]:
    declared = arrow_types(spec.columns)
    as_text = False
    multiline = _multiline(file)
    try:
        table, invalid = _parse_checked(file, spec, declared, multiline)
    except pa.ArrowInvalid as exc:
        if _UTF8 in str(exc):
            refuse_not_utf8(file)
        if not declared or "conversion error" not in str(exc):
            raise _parse_error(exc, file, spec) from exc
        # A declared type does not fit some value: read those columns as text, then find
        # exactly which rows fail the cast.
        as_text = True
        declared = {name: pa.string() for name in declared}
        table, invalid = _parse_checked(file, spec, declared, multiline)
    bad_rows: list[BadRow] = []
    if invalid:
        _, numbered = _parse(file, spec, declared, threads=False, multiline=multiline)
        bad_rows = [_malformed(row) for row in numbered]
    check_header(table.schema, file)
    check_declared_present(table.column_names, spec.columns or {}, file=file.url)
    skipped = sorted(bad.row for bad in bad_rows if bad.row is not None)
    if as_text and spec.columns:
        table, wrong = cast_declared(
            table,
            spec.columns,
            file=file.url,
            row_number=lambda index: _line_number(index, skipped, _header_lines(spec)),
            text_nulls=True,
        )
        bad_rows.extend(wrong)
    return table, bad_rows


def _convert_options(types: dict[str, pa.DataType]) -> csv.ConvertOptions:
    # An empty field is a missing value, for text columns too (as pandas and most tools
    # read CSV), so "" never becomes a category of its own.
    return csv.ConvertOptions(column_types=types, strings_can_be_null=True)


def check_header(schema: pa.Schema, file: InputFile) -> None:
    """Column names must be unique and non-empty, and text must be UTF-8 (a column pyarrow
    read as binary has text that is not: the file is scanned for the row)."""
    url = file.url
    seen: set[str] = set()
    for position, field in enumerate(schema, start=1):
        if not field.name.strip():
            raise DataError(
                f"{url}: row 1 (the header), column {position} has no name; name every column",
                file=url,
                row=1,
            )
        if field.name in seen:
            raise DataError(
                f"{url}: row 1 (the header) names column {field.name!r} twice; give each "
                "column its own name",
                file=url,
                row=1,
                column=field.name,
            )
        seen.add(field.name)
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            refuse_not_utf8(file, field.name)
            raise DataError(
                f"{url}: column {field.name!r} holds text that is not valid UTF-8 (perhaps "
                "Latin-1 or Windows-1252); re-save the file as UTF-8",
                file=url,
                column=field.name,
            )


def _parse_checked(
    file: InputFile, spec: SourceSpec, types: dict[str, pa.DataType], multiline: bool
) -> tuple[pa.Table, list[Any]]:
    """Parse, refusing a stray quote: when any value (or rejected row) spans lines, the
    file is scanned for one; a file where nothing spans lines pays nothing more."""
    table, invalid = _parse(file, spec, types, multiline=multiline)
    if spans_lines(table, (row.text for row in invalid)):
        _refuse_stray_quote(file, spec, table.num_columns)
    return table, invalid


def _multiline(file: InputFile) -> bool:
    """Whether pyarrow must cut the file into blocks at row ends, not at line ends.

    Cut at a line end inside a quoted value, a block would end in an open quote and pyarrow
    drops the rest of that block without a word (a stray quote loses rows, a value that
    spans lines breaks the parse). Cutting at row ends tracks quotes, which is slower, so it
    is done only for files of several blocks that hold a quote at all.
    """
    return file.size > _BLOCK_BYTES and holds_quote(file)


def _parse(
    file: InputFile,
    spec: SourceSpec,
    types: dict[str, pa.DataType],
    *,
    threads: bool = True,
    multiline: bool,
) -> tuple[pa.Table, list[Any]]:
    invalid: list[Any] = []

    def skip(row: Any) -> str:
        invalid.append(row)
        return "skip"

    table = _read(
        file,
        lambda: csv.read_csv(
            file.source(),
            read_options=csv.ReadOptions(
                use_threads=threads, block_size=_BLOCK_BYTES, column_names=spec.names
            ),
            parse_options=csv.ParseOptions(
                delimiter=_delimiter(spec), invalid_row_handler=skip, newlines_in_values=multiline
            ),
            convert_options=_convert_options(types),
        ),
    )
    return table, invalid


def _header_lines(spec: SourceSpec) -> int:
    return 0 if spec.names else 1


def _refuse_stray_quote(file: InputFile, spec: SourceSpec, columns: int | None) -> None:
    refuse_stray_quote(file, _delimiter(spec), columns, header=spec.names is None)


def _delimiter(spec: SourceSpec) -> str:
    """The source's delimiter (``readers.read_file`` sets it from the file's extension)."""
    return spec.delimiter or ","


def refuse_a_header(file: InputFile, names: list[str], delimiter: str) -> None:
    """``DataError`` when a file read with ``names`` (no header row) has one after all:
    its first line is exactly those names, which would become a row of data."""

    def first_line() -> bytes:
        with file.fs.open(file.path, "rb") as stream:
            return bytes(stream.readline(1 << 16))

    line = translate_errors(file.url, first_line).removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    fields = [
        field.strip().strip('"') for field in line.decode("utf-8", "replace").split(delimiter)
    ]
    if fields == names:
        raise DataError(
            f"{file.url}: row 1 is a header ({line.decode('utf-8', 'replace')!r}), but the "
            "columns were named as for a file without one (--columns, `names:`), so it would "
            "be read as data; drop them to use the header",
            file=file.url,
            row=1,
        )


def _read(file: InputFile, action: Callable[[], T]) -> T:
    """``action`` (pyarrow reading ``file``) with its errors translated. A rejected row
    whose text is not UTF-8 cannot be handed to the row handler (pyarrow reports that as
    unraisable: a traceback on stderr); it refuses the file naming its row and byte."""
    with undecodable_rows() as seen:
        try:
            return translate_errors(file.url, action)
        except pa.ArrowInvalid:
            if seen:
                refuse_not_utf8(file)
            raise


def _malformed(row: Any) -> BadRow:
    reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
    return BadRow(row=row.number, column=None, reason=reason, text=row.text)


def _line_number(index: int, skipped: list[int], header_lines: int) -> int:
    """The line of the ``index``-th parsed row, counting the header and skipped lines."""
    line = index + header_lines + 1
    while True:
        shifted = index + header_lines + 1 + bisect_right(skipped, line)
        if shifted == line:
            return line
        line = shifted


def _streamed(file: InputFile, spec: SourceSpec, content_digest: str) -> Extract:
    invalid: list[Any] = []

    def fail(row: Any) -> str:
        invalid.append(row)
        return "error"

    try:
        reader = _read(
            file,
            lambda: csv.open_csv(
                file.source(),
                read_options=csv.ReadOptions(block_size=_BLOCK_BYTES, column_names=spec.names),
                parse_options=csv.ParseOptions(
                    delimiter=_delimiter(spec),
                    invalid_row_handler=fail,
                    newlines_in_values=_multiline(file),
                ),
                convert_options=_convert_options(arrow_types(spec.columns)),
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _stream_error(exc, file, spec, invalid, None) from exc
    check_header(reader.schema, file)
    check_declared_present(reader.schema.names, spec.columns or {}, file=file.url)
    return Extract(
        origin=file.url,
        content_digest=content_digest,
        schema=reader.schema,
        parts=_stream_parts(reader, file, spec, invalid),
        size_bytes=file.size,
    )


def _stream_parts(
    reader: Any, file: InputFile, spec: SourceSpec, invalid: list[Any]
) -> Iterator[pa.Table]:
    try:
        yield from repartition(_checked(reader, file, spec), spec.partition_rows)
    except pa.ArrowInvalid as exc:
        raise _stream_error(exc, file, spec, invalid, reader.schema) from exc


def _checked(batches: Any, file: InputFile, spec: SourceSpec) -> Iterator[pa.RecordBatch]:
    """The streamed batches; the first value that spans lines has the file checked for a
    stray quote (once: the check reads the whole file)."""
    scanned = False
    iterator = iter(batches)
    while (batch := _read(file, lambda: next(iterator, None))) is not None:
        if not scanned and spans_lines(batch):
            _refuse_stray_quote(file, spec, batch.num_columns)
            scanned = True
        yield batch


def _stream_error(
    exc: pa.ArrowInvalid,
    file: InputFile,
    spec: SourceSpec,
    invalid: list[Any],
    schema: pa.Schema | None,
) -> DataError:
    if not invalid:
        return _parse_error(exc, file, spec, schema)
    bad = _malformed(invalid[0])
    if bad.text is not None and ("\n" in bad.text or "\r" in bad.text):
        _refuse_stray_quote(file, spec, invalid[0].expected_columns)
    return DataError(
        f"bad row in {bad.where(file.url)}: {bad.reason}; the row reads "
        f"{excerpt(bad.text or '')!r}; fix the input, or set `on_bad_rows: quarantine` (a "
        "large file is then read whole)",
        file=file.url,
        row=bad.row,
    )


def _parse_error(
    exc: pa.ArrowInvalid, file: InputFile, spec: SourceSpec, schema: pa.Schema | None = None
) -> DataError:
    # A stray quote can leave pyarrow with no rows or out of step; name it precisely.
    message = str(exc)
    if _UTF8 in message:
        refuse_not_utf8(file)
    _refuse_stray_quote(file, spec, len(schema) if schema is not None else None)
    if "Empty CSV file" in message:
        return EmptyInputError(f"{file.url} has no header line; give it one", file=file.url)
    column = None
    found = _COLUMN_NUMBER.search(message)
    if found and schema is not None and int(found.group(1)) < len(schema):
        column = schema.names[int(found.group(1))]
    hint = (
        f"; declare column {column!r} under `columns` with a type that fits all its values"
        if column
        else "; check the `delimiter` and the quoting of the file"
    )
    return DataError(
        f"cannot parse {file.url} as CSV: {excerpt(message, 2 * EXCERPT_CHARS)}{hint}",
        file=file.url,
        column=column,
    )
