"""Input files that are not UTF-8: the file, row and byte where they stop being it.

pyarrow only says that some text is not UTF-8 (a column read as binary, a name it cannot
decode, a conversion error); the file is scanned here, once, only when it has said so,
so a file in UTF-8 pays nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gristmill.core.encoding import find_not_utf8
from gristmill.errors import DataError
from gristmill.ingestion.files import InputFile, translate_errors

_CHUNK = 1 << 20


def refuse_not_utf8(file: InputFile, column: str | None = None) -> None:
    """``DataError`` naming the file, the row (its line: the header is row 1), the column
    when known and the first byte that is not UTF-8; returns if every byte is."""
    problem = translate_errors(file.url, lambda: find_not_utf8(_chunks(file)))
    if problem is None:
        return
    where = f"{file.url}, row {problem.line}" + (f", column {column!r}" if column else "")
    raise DataError(
        f"{where} is not UTF-8 text: byte 0x{problem.byte:02x} at offset {problem.offset} "
        f"(perhaps {problem.guess}); save the file as UTF-8",
        file=file.url,
        row=problem.line,
        column=column,
    )


@contextmanager
def undecodable_rows() -> Iterator[list[UnicodeDecodeError]]:
    """The rows pyarrow could not decode to hand to an ``invalid_row_handler``, while the
    block runs: it reports each as an unraisable exception (Python prints its traceback on
    stderr); they are collected here instead, any other unraisable one is reported as
    before."""
    seen: list[UnicodeDecodeError] = []
    previous = sys.unraisablehook

    def collect(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, UnicodeDecodeError):
            seen.append(unraisable.exc_value)
        else:
            previous(unraisable)

    sys.unraisablehook = collect
    try:
        yield seen
    finally:
        sys.unraisablehook = previous


def _chunks(file: InputFile) -> Iterator[bytes]:
    with file.fs.open(file.path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            yield chunk
