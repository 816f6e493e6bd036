"""Tabular request bodies to typed columns: split frames, records, column maps, rows, CSV.

Each reader takes what a client sent and gives one numpy array per input column of the
manifest, typed by the column's type (numbers as float64 with NaN for a missing value, text
as objects with ``None``), so the servable never sees pandas. A column the model takes but
the request lacks is a ``RequestError`` naming it; columns the model does not take are
ignored (a client may send a whole row of its table), and named in that error as a hint.
Values of the wrong kind (text in a number column, a number in a text column, a boolean,
an object, an infinity) get ``columns``' ``DataError``, naming the column and the row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from gristmill.servables import InputColumn, ServableManifest
from gristmill.servables.columns import numbers, text_values
from gristmill.servables.csv_columns import read_csv
from gristmill.server.protocols.errors import RequestError

Columns = dict[str, np.ndarray]


def typed(values: Any, column: InputColumn) -> np.ndarray:
    """``values`` (a list or array of one value per row) as ``column``'s array."""
    if column.type in ("float64", "int64", "bool"):
        return numbers(values, column.name, nullable=True, booleans=column.type == "bool")
    return _texts(values, column)


def _texts(values: Any, column: InputColumn) -> np.ndarray:
    """Strings as they are (a missing value ``None``); a text column refuses anything else
    but a date-time column, whose values the servable reads."""
    typed = isinstance(values, np.ndarray) and values.dtype.kind != "O"
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        array = array.reshape(-1)
    if column.type == "string" and not typed:
        text_values(array, column.name, nullable=True)
    for index, value in enumerate(array):
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, float) and math.isnan(value):
            array[index] = None
        else:
            array[index] = str(value)
    return array


def from_columns(given: Mapping[str, Any], manifest: ServableManifest) -> Columns:
    """A map of column name to its values (one per row)."""
    _present(given.keys(), manifest)
    columns: Columns = {}
    rows: tuple[str, int] | None = None
    for column in manifest.inputs:
        values = given[column.name]
        if not isinstance(values, list):
            values = [values]  # one row
        if rows is None:
            rows = (column.name, len(values))
        elif len(values) != rows[1]:
            raise RequestError(
                f"column {column.name!r} has {len(values)} value(s), column {rows[0]!r} "
                f"{rows[1]}; give every column one value per row",
                field=column.name,
            )
        columns[column.name] = typed(values, column)
    return columns


def from_records(records: Sequence[Any], manifest: ServableManifest, where: str) -> Columns:
    """A list of ``{column: value}`` rows; a column a row lacks is missing in that row."""
    seen: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(
                f"{where}[{index}] must be an object of column: value", field=f"{where}[{index}]"
            )
        seen.update(record)
    _present(seen, manifest)
    return {c.name: typed([record.get(c.name) for record in records], c) for c in manifest.inputs}


def from_rows(
    rows: Sequence[Any], names: Sequence[str], manifest: ServableManifest, where: str
) -> Columns:
    """A list of rows, each a list of values in the order of ``names``."""
    width = len(names)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else "not a list"
            raise RequestError(
                f"{where}[{index}] must be a list of {width} value(s) (one per column: "
                f"{', '.join(names)}); it has {got}",
                field=f"{where}[{index}]",
            )
    _present(names, manifest)
    position = {name: index for index, name in enumerate(names)}
    return {c.name: typed([row[position[c.name]] for row in rows], c) for c in manifest.inputs}


def from_csv(body: bytes, manifest: ServableManifest) -> Columns:
    """CSV text with a header row; an empty field is a missing value."""
    text = body.lstrip(b"\xef\xbb\xbf")
    first = text.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r")
    try:
        header = next(csv.reader(io.StringIO(first)), [])
    except csv.Error as exc:  # a lone carriage return inside the header, say
        raise RequestError(f"the CSV header row cannot be read: {exc}") from None
    if not any(header):
        raise RequestError("the CSV body is empty; send a header row, then one row per line")
    twice = next((name for number, name in enumerate(header) if name in header[:number]), None)
    if twice is not None:
        raise RequestError(
            f"the CSV header names column {twice!r} twice; name each column once",
            field=twice,
        )
    _present(header, manifest)
    table = read_csv(text, manifest.inputs, header, only=True)
    return {c.name: typed(table.column(c.name).to_numpy(), c) for c in manifest.inputs}


def _present(given: Iterable[str], manifest: ServableManifest) -> None:
    names = set(given)
    for column in manifest.inputs:
        if column.name not in names:
            takes = ", ".join(c.name for c in manifest.inputs)
            known = {c.name for c in manifest.inputs}
            extra = sorted(n for n in names if n not in known)
            hint = f" (the request has columns it does not take: {', '.join(extra)})"
            raise RequestError(
                f"column {column.name!r} is missing; model {manifest.ref} takes: {takes}"
                + (hint if extra else ""),
                field=column.name,
            )
