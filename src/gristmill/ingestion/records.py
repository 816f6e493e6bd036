"""Python records (dicts, as JSON gives them) → an Arrow table with every key as a column."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pyarrow as pa

from gristmill.config.sources import ColumnType
from gristmill.ingestion.bad_rows import BadRow
from gristmill.ingestion.column_types import cast_declared


def records_table(records: Sequence[dict[str, Any]], *, as_text: Collection[str] = ()) -> pa.Table:
    """A table of ``records``: columns in order of first appearance, missing values null.

    Unlike ``pa.Table.from_pylist`` no key is dropped because the first record lacks it.
    Columns in ``as_text`` hold each value as text (JSON for non-strings), for a cast that
    then names each value that does not fit. Raises ``pa.ArrowInvalid``/``ArrowTypeError``
    when a column's values cannot share one type.
    """
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {
        name: [_text(r.get(name)) if name in as_text else r.get(name) for r in records]
        for name in names
    }
    return pa.table(columns)


def declared_misfits(
    records: Sequence[dict[str, Any]], columns: Mapping[str, ColumnType], *, origin: str
) -> list[BadRow]:
    """The records that do not fit the declared ``columns``, one ``BadRow`` each (its first
    misfit; ``row`` is the record's 1-based index): a declared field the record lacks (a
    record says ``null`` for no value), or a value that does not convert to its declared
    type, judged as the values of a JSON Lines file with those ``columns`` are. Fields that
    are not declared are let be, as a file's undeclared columns are."""
    bad: dict[int, BadRow] = {}
    for index, record in enumerate(records, start=1):
        missing = next((name for name in columns if name not in record), None)
        if missing is not None:
            bad[index] = BadRow(index, missing, f"the record has no field {missing!r}")
    whole = [{**dict.fromkeys(columns), **record} for record in records]
    _, wrong = cast_declared(
        records_table(whole, as_text=columns),
        columns,
        file=origin,
        row_number=lambda position: position + 1,
    )
    for misfit in wrong:
        if misfit.row is not None:
            bad.setdefault(misfit.row, misfit)
    return [bad[index] for index in sorted(bad)]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
