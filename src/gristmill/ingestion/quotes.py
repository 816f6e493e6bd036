"""Stray quotes in CSV files: a quote that never closes, or one that swallows whole rows.

pyarrow reads a quote that opens a field as the start of a quoted value, which may hold line
breaks; a stray quote therefore turns the rest of the file (or everything up to the next
stray quote) into one value. The CSV reader first checks, for almost nothing, whether any
parsed value spans lines at all; only then is the file scanned here, quote by quote.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyarrow as pa

from gristmill.errors import DataError
from gristmill.ingestion.bad_rows import EXCERPT_CHARS, excerpt
from gristmill.ingestion.files import InputFile, translate_errors

# A quoted value: the opening quote, then text in which a quote is written twice, then the
# closing quote — or the end of the file when it never comes.
_QUOTED = re.compile(rb'"([^"]*(?:""[^"]*)*)("?)')
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# A line break that another follows at once: the end of an empty line, which pyarrow skips.
_EMPTY_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?=[\r\n])")
_COUNT_CHUNK = 16 << 20
_HEADER_RECORDS = 1
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class StrayQuote:
    """Where a stray quote opens, and why it is stray.

    ``line`` is the 1-based line of the file (the header is line 1); ``data_row`` the
    1-based row of data it belongs to — the row of the table it would be read into, the
    header not counted, empty lines skipped (as pyarrow skips them), a quoted value that
    spans lines counted once — or ``None`` when the quote opens in the header.
    """

    line: int
    data_row: int | None
    excerpt: str
    lines: int
    closes: bool

    @property
    def where(self) -> str:
        """``line 32 (data row 31)``, or ``line 1 (the header)``."""
        row = "the header" if self.data_row is None else f"data row {self.data_row:,}"
        return f"line {self.line:,} ({row})"


def spans_lines(values: pa.Table | pa.RecordBatch, texts: Iterable[str] = ()) -> bool:
    """Whether a header name, a text value or a rejected row's text holds a line break.

    It reads the raw bytes of each text column in one pass each, so a file with no such
    value (nearly every file) pays close to nothing for the check.
    """
    if any(_has_break(name.encode()) for name in values.schema.names):
        return True
    if any(_has_break(text.encode()) for text in texts):
        return True
    for column in values.columns:
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            continue
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        if any(_has_break(_value_bytes(chunk)) for chunk in chunks):
            return True
    return False


def refuse_stray_quote(
    file: InputFile, delimiter: str, columns: int | None, *, header: bool = True
) -> None:
    """``DataError`` naming the row where a stray quote opens, if the file has one.

    A quoted value is taken for a stray quote when its closing quote never comes, or when
    it holds a whole line that reads as a row of the file (as many delimiters as the
    header, for files of three columns or more). Any other quoted value may span lines.
    ``header``: whether the file's first row is its header (not a row of data).
    """
    stray = find_stray_quote(file, delimiter, columns, header=header)
    if stray is None:
        return
    if stray.closes:
        what = (
            f"a quoted value opens here and runs over {stray.lines:,} lines that read as rows "
            "of their own before a quote closes it"
        )
    else:
        what = (
            f"a quote opens here and never closes, so the rest of the file ({stray.lines:,} "
            "lines) would be read as one value"
        )
    raise DataError(
        f"{file.url}, {stray.where}: {what}; the line reads {stray.excerpt!r}; remove the "
        "stray quote, or, if it belongs to the value, quote the whole value and write the "
        'quote twice (""); the file was not ingested',
        file=file.url,
        row=stray.line,
    )


def find_stray_quote(
    file: InputFile, delimiter: str, columns: int | None, *, header: bool = True
) -> StrayQuote | None:
    """The first stray quote of ``file`` (see ``refuse_stray_quote``), or ``None``."""
    field_starts = {ord(delimiter), ord("\n"), ord("\r")}
    with _contents(file) as data:
        first = len(_BOM) if data[: len(_BOM)] == _BOM else 0
        position = first
        spanning: list[tuple[int, int]] = []  # quoted values that span lines, kept to count rows
        while (found := _QUOTED.search(data, position)) is not None:
            start = found.start()
            if start > first and data[start - 1] not in field_starts:
                position = start + 1  # a quote inside an unquoted value is only a character
                continue
            value, closing = found.group(1), found.group(2)
            if _LINE_BREAK.search(value):
                if not closing or _holds_a_row(value, delimiter.encode(), columns):
                    return _stray(
                        data, first, start, value, spanning, closes=bool(closing), header=header
                    )
                spanning.append((start, found.end()))
            position = found.end()
    return None


def holds_quote(file: InputFile) -> bool:
    """Whether ``file`` holds a quote character at all (a remote file is assumed to)."""
    if not file.local:
        return True
    with _contents(file) as data:
        return data.find(b'"') >= 0


def _holds_a_row(value: bytes, delimiter: bytes, columns: int | None) -> bool:
    if columns is None or columns < 3:
        return False
    # Line by line, stopping at the first row-like one: a swallowed value can be huge.
    line_start = None
    for line_break in _LINE_BREAK.finditer(value):
        whole_line = line_start is not None
        if whole_line and value.count(delimiter, line_start, line_break.start()) == columns - 1:
            return True
        line_start = line_break.end()
    return False


def _stray(
    data: bytes | mmap.mmap,
    first: int,
    start: int,
    value: bytes,
    spanning: list[tuple[int, int]],
    *,
    closes: bool,
    header: bool,
) -> StrayQuote:
    line_start = (
        max(data.rfind(b"\n", first, start), data.rfind(b"\r", first, start), first - 1) + 1
    )
    end = _LINE_BREAK.search(data, start)
    line_end = end.start() if end else len(data)
    # Show the row from its start, unless the quote sits far into a long line.
    shown_from = line_start if start - line_start < EXCERPT_CHARS - 20 else start - 20
    text = bytes(data[shown_from : min(line_end, shown_from + 4 * EXCERPT_CHARS)])
    shown = excerpt(text.decode("utf-8", errors="replace"))
    line, record = _line_and_record(data, first, start, spanning)
    headers = _HEADER_RECORDS if header else 0
    return StrayQuote(
        line=line,
        data_row=record - headers if record > headers else None,
        excerpt=shown if shown_from == line_start else "…" + shown,
        lines=value.count(b"\n") or value.count(b"\r"),
        closes=closes,
    )


def _line_and_record(
    data: bytes | mmap.mmap, first: int, start: int, spanning: list[tuple[int, int]]
) -> tuple[int, int]:
    """The 1-based line of byte ``start``, and the 1-based record (row of the file, the
    header included) it belongs to: line breaks inside quoted values and empty lines do
    not end a record."""
    breaks = _count_breaks(data, first, start)
    record_breaks = breaks - sum(_count_breaks(data, *span) for span in spanning)
    gaps = zip(
        [first] + [end for _, end in spanning],
        [begin for begin, _ in spanning] + [start],
        strict=True,
    )
    empty = sum(len(_EMPTY_LINE.findall(data, begin, end)) for begin, end in gaps)
    if data[first : first + 1] in (b"\r", b"\n"):
        empty += 1  # the file opens with an empty line
    return breaks + 1, record_breaks - empty + 1


def _count_breaks(data: bytes | mmap.mmap, begin: int, end: int) -> int:
    """Line breaks (``\\r\\n``, ``\\r`` or ``\\n``) in ``data[begin:end]``, read a chunk at a
    time so a large mapped file is never copied whole."""
    count = 0
    for at in range(begin, end, _COUNT_CHUNK):
        chunk = data[at : min(end, at + _COUNT_CHUNK)]
        count += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
        after = at + len(chunk)
        if chunk.endswith(b"\r") and after < end and data[after : after + 1] == b"\n":
            count -= 1  # a "\r\n" cut by the chunk's end
    return count


@contextmanager
def _contents(file: InputFile) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes: mapped when local (a large file is not copied), else read whole."""
    if not file.local:
        yield translate_errors(file.url, lambda: file.fs.cat_file(file.path))
        return
    with translate_errors(file.url, lambda: open(file.path, "rb")) as handle:
        if file.size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def _value_bytes(chunk: pa.Array) -> bytes:
    """The bytes of all the values of a string array (its slice of the data buffer)."""
    if len(chunk) == 0:
        return b""
    _, offsets, data = chunk.buffers()
    if data is None:
        return b""
    view = memoryview(offsets).cast("q" if pa.types.is_large_string(chunk.type) else "i")
    values: bytes = data[view[chunk.offset] : view[chunk.offset + len(chunk)]].to_pybytes()
    return values


def _has_break(text: bytes) -> bool:
    return b"\n" in text or b"\r" in text
