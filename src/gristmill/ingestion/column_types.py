"""Declared column types: their Arrow types, and casting that finds each value that fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.sources import ColumnType
from gristmill.errors import DataError
from gristmill.ingestion.bad_rows import BadRow

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}

# Text that means "no value" in a typed column, as pyarrow's CSV reader has it by default.
NULL_TEXT = pa.array(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)  # fmt: skip

RowNumber = Callable[[int], int | None]
"""Maps a 0-based row index in a table to the row number a user sees (see ``BadRow.row``)."""


def arrow_types(columns: Mapping[str, ColumnType] | None) -> dict[str, pa.DataType]:
    """The Arrow type of each declared column."""
    return {name: ARROW_TYPES[kind] for name, kind in (columns or {}).items()}


def check_declared_present(
    names: list[str], columns: Mapping[str, ColumnType], *, file: str
) -> None:
    """``DataError`` naming the first declared column that the input does not have."""
    missing = [name for name in columns if name not in names]
    if missing:
        raise DataError(
            f"{file} has no column {missing[0]!r}, which the source declares under `columns`; "
            f"its columns are {names}; fix the file or the declaration",
            file=file,
            column=missing[0],
        )


def cast_declared(
    table: pa.Table,
    columns: Mapping[str, ColumnType],
    *,
    file: str,
    row_number: RowNumber,
    text_nulls: bool = False,
) -> tuple[pa.Table, list[BadRow]]:
    """Cast the declared ``columns`` of ``table``; rows with a value that does not cast are
    removed and returned as bad rows (one per row: its first failing column).

    ``text_nulls`` treats the usual null markers (``""``, ``NA``, ``null`` …) in string
    columns as missing values, as the CSV reader does for typed columns.
    """
    check_declared_present(table.column_names, columns, file=file)
    bad: dict[int, BadRow] = {}
    targets = arrow_types(columns)
    for name, target in targets.items():
        values = table.column(name)
        if text_nulls and pa.types.is_string(values.type):
            values = pc.if_else(
                pc.is_in(values, value_set=NULL_TEXT), pa.scalar(None, values.type), values
            )
            table = table.set_column(table.column_names.index(name), name, values)
        for index in _failing_rows(values, target, file=file, column=name):
            if index not in bad:
                reason = f"{values[index].as_py()!r} is not a valid {columns[name]}"
                bad[index] = BadRow(row_number(index), name, reason)
    if bad:
        keep = pa.array([index not in bad for index in range(table.num_rows)])
        table = table.filter(keep)
    for name, target in targets.items():
        position = table.column_names.index(name)
        table = table.set_column(position, name, pc.cast(table.column(name), target))
    return table, [bad[index] for index in sorted(bad)]


def _failing_rows(
    values: pa.ChunkedArray, target: pa.DataType, *, file: str, column: str
) -> list[int]:
    failing: list[int] = []
    offset = 0
    for chunk in values.chunks:
        failing.extend(_bisect(chunk, target, offset, file=file, column=column))
        offset += len(chunk)
    return failing


def _bisect(
    chunk: pa.Array, target: pa.DataType, offset: int, *, file: str, column: str
) -> list[int]:
    """Indices of values that do not cast: try the whole chunk, split the failing halves."""
    try:
        pc.cast(chunk, target)
        return []
    except pa.ArrowNotImplementedError as exc:
        raise DataError(
            f"column {column!r} of {file} holds {chunk.type} values, which cannot become "
            f"{target}; declare the column as {chunk.type} or fix the input",
            file=file,
            column=column,
        ) from exc
    except pa.ArrowInvalid:
        if len(chunk) == 1:
            return [offset]
    middle = len(chunk) // 2
    return _bisect(chunk.slice(0, middle), target, offset, file=file, column=column) + _bisect(
        chunk.slice(middle), target, offset + middle, file=file, column=column
    )
