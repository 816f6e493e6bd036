"""Rejected input rows: where each one is, why it was rejected, and the quarantine table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from gristmill.errors import DataError

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("row", pa.int64()),
        pa.field("column", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("text", pa.string()),
    ]
)

EXCERPT_CHARS = 80

_FIX = (
    "fix the input, or set `on_bad_rows: quarantine` on the source to ingest the good rows "
    "and keep the bad ones beside the batch"
)


@dataclass(frozen=True)
class BadRow:
    """One rejected row.

    ``row`` is the 1-based line number in a text file (the header is line 1), the 1-based
    row number in a Parquet file or a SQL result, or ``None`` when it cannot be known.
    ``column`` names the offending column (``None`` for a row that does not parse at all);
    ``text`` is the row's raw text when the format has one.
    """

    row: int | None
    column: str | None
    reason: str
    text: str | None = None

    def where(self, file: str) -> str:
        """``file, row 7, column 'age'`` — the parts that are known."""
        parts = [file]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)


def quarantine_table(bad_rows: Sequence[BadRow]) -> pa.Table | None:
    """The rows to keep beside the batch (``row, column, reason, text``), or ``None``."""
    if not bad_rows:
        return None
    ordered = sorted(bad_rows, key=lambda bad: (bad.row is None, bad.row or 0))
    return pa.table(
        {
            "row": [bad.row for bad in ordered],
            "column": [bad.column for bad in ordered],
            "reason": [bad.reason for bad in ordered],
            "text": [bad.text for bad in ordered],
        },
        schema=QUARANTINE_SCHEMA,
    )


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut), for error messages.

    An error names the row; the whole row (possibly megabytes) stays in the input.
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bad_rows_error(bad_rows: Sequence[BadRow], file: str) -> DataError:
    """The error for ``on_bad_rows: fail``: the first bad row in full, and how many in all."""
    first = min(bad_rows, key=lambda bad: (bad.row is None, bad.row or 0))
    more = f" ({len(bad_rows)} bad rows in all)" if len(bad_rows) > 1 else ""
    text = f"; the row reads {excerpt(first.text)!r}" if first.text is not None else ""
    return DataError(
        f"bad row in {first.where(file)}: {first.reason}{text}{more}; {_FIX}",
        file=file,
        row=first.row,
        column=first.column,
    )
