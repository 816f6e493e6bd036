"""Python records (dicts, as JSON gives them) → an Arrow table with every key as a column."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

import pyarrow as pa


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


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)
