"""CSV text read by a servable's input types, with a field of the wrong kind named by row.

A CSV file (``gristmill predict``) or body (MLflow's ``text/csv``) is text: each input
column is read as its manifest type says (numbers as float64, ``bool`` as true/false, text
and date-times as strings; an empty field is a missing value), never as Arrow would guess
from the first rows — a guess that makes a column with ``abc`` in it text, and the error
then names a good row. Arrow's refusal of a field names only the column and the value
(``CSV conversion error to double: invalid value 'abc'``); ``read_csv`` reads that column
again as text to name the row (and the line, when no field is quoted).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gristmill.errors import DataError
from gristmill.servables.port import ColumnType, InputColumn

ARROW: dict[ColumnType, pa.DataType] = {
    "float64": pa.float64(),
    "int64": pa.float64(),  # a gap in an integer column stays a NaN
    "bool": pa.bool_(),
    "string": pa.string(),
    "datetime": pa.string(),
}
WANTED = {"float64": "numbers", "int64": "numbers", "bool": "true or false"}

_REFUSED = re.compile(r"In CSV column #(\d+): (.*?)(?:: invalid value '(.*)')?$", re.DOTALL)


def read_csv(
    data: bytes, inputs: Sequence[InputColumn], header: Sequence[str], *, only: bool = False
) -> pa.Table:
    """The CSV ``data`` (its first row ``header``) as a table, the ``inputs`` it holds
    typed by their types, other columns as Arrow reads them (none with ``only``).
    ``DataError`` naming the column and the row of a field its type cannot read."""
    present = [c for c in inputs if c.name in header]
    options = pacsv.ConvertOptions(
        column_types={c.name: ARROW[c.type] for c in present},
        include_columns=[c.name for c in present] if only else [],
        strings_can_be_null=True,
    )
    try:
        return pacsv.read_csv(pa.BufferReader(data), convert_options=options)
    except pa.ArrowInvalid as exc:
        raise _refusal(data, str(exc), inputs, header) from None


def _refusal(
    data: bytes, message: str, inputs: Sequence[InputColumn], header: Sequence[str]
) -> DataError:
    found = _REFUSED.match(message)
    if found is None or int(found.group(1)) >= len(header):
        return DataError(f"the CSV text cannot be read: {message}")
    name = header[int(found.group(1))]
    kind = next((c.type for c in inputs if c.name == name), None)
    if kind not in WANTED:
        return DataError(f"CSV column {name!r}: {found.group(2)}", column=name)
    texts = _texts(data, name)
    row = _row(texts, ARROW[kind], found.group(3))
    if row is None:
        return DataError(f"CSV column {name!r}: {found.group(2)}", column=name)
    line = f" (line {row + 2})" if b'"' not in data else ""  # no field spans lines
    value = str(texts[row].as_py())
    value = value if len(value) <= 40 else value[:37] + "..."
    return DataError(
        f"CSV column {name!r} takes {WANTED[kind]} (an empty field for a missing value); "
        f"row {row}{line} holds {value!r}",
        column=name,
        row=row,
    )


def _row(texts: pa.ChunkedArray, kind: pa.DataType, value: str | None) -> int | None:
    """The first row of a column's ``texts`` holding ``value`` (or, when Arrow did not say
    which value, a field ``kind`` cannot read)."""
    if value is not None:
        hits = pc.index(texts, value).as_py()
        if hits >= 0:
            return int(hits)
    for row, text in enumerate(texts.to_pylist()):
        if text is None:
            continue
        try:
            pc.cast(pa.array([text]), kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return row
    return None


def _texts(data: bytes, name: str) -> pa.ChunkedArray:
    options = pacsv.ConvertOptions(
        column_types={name: pa.string()}, include_columns=[name], strings_can_be_null=True
    )
    return pacsv.read_csv(pa.BufferReader(data), convert_options=options).column(name)
