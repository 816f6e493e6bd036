"""Combining several inputs into one frame, point-in-time correctly (DuckDB ASOF JOIN).

The first input is the *spine*: one output row per spine row. Every other input contributes
the row of the same key that is the newest at or before the spine row's timestamp, so a row
never sees a value stamped after it. Without a timestamp, the join is an exact left join.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa

from gristmill.errors import ConfigError, DataError


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_columns(name: str, table: pa.Table, needed: list[str]) -> None:
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise DataError(
            f"input {name!r} has no column {missing[0]!r} to join on; its columns: "
            f"{', '.join(table.column_names)} (fix features.<set>.join)",
            column=missing[0],
        )


def join_inputs(
    inputs: Mapping[str, pa.Table], *, on: str, timestamp: str | None, how: str = "asof"
) -> pa.Table:
    """Join ``inputs`` (name → table, the first is the spine) on key ``on``.

    ``how="asof"`` needs ``timestamp`` in every input. Columns of later inputs that clash
    with earlier ones are renamed ``<input>__<column>``.
    """
    if not inputs:
        raise ConfigError("a join needs at least one input")
    if how == "asof" and timestamp is None:
        raise ConfigError("an as-of join needs 'timestamp' (the event-time column of each input)")
    names = list(inputs)
    keys = [on] if how != "asof" else [on, timestamp or ""]
    for name in names:
        _check_columns(name, inputs[name], keys)
    if len(names) == 1:
        return inputs[names[0]]
    connection = duckdb.connect()
    try:
        for index, name in enumerate(names):
            connection.register(f"input{index}", inputs[name])
        seen = set(inputs[names[0]].column_names)
        select = ["t0.* EXCLUDE (__gm_row)"]
        joins = []
        for index, name in enumerate(names[1:], start=1):
            for column in inputs[name].column_names:
                if column in keys:
                    continue
                alias = column if column not in seen else f"{name}__{column}"
                seen.add(alias)
                select.append(f"t{index}.{_quote(column)} AS {_quote(alias)}")
            condition = f"t0.{_quote(on)} = t{index}.{_quote(on)}"
            if how == "asof":
                ts = _quote(timestamp or "")
                condition += f" AND t0.{ts} >= t{index}.{ts}"
                joins.append(f"ASOF LEFT JOIN input{index} t{index} ON {condition}")
            else:
                joins.append(f"LEFT JOIN input{index} t{index} ON {condition}")
        spine = "(SELECT *, row_number() OVER () AS __gm_row FROM input0) t0"
        query = f"SELECT {', '.join(select)} FROM {spine} {' '.join(joins)} ORDER BY t0.__gm_row"
        try:
            return connection.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise DataError(f"joining {', '.join(names)} on {on!r} failed: {exc}") from exc
    finally:
        connection.close()
