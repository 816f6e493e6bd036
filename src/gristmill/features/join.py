"""Combining several inputs into one frame, point-in-time correctly (DuckDB ASOF JOIN).

The first input is the *spine*: one output row per spine row, in its order. Every other
input contributes, per its ``JoinPlan``, the row whose keys equal the spine row's (keys of
the same or of different names, one or several) and that is the newest at or before the
spine row's timestamp, so a row never sees a value stamped after it; with a ``tolerance``,
a newest row older than that joins as missing. Without a timestamp (``how: exact``), the
join is an exact left join. The columns taken from an input are its ``columns`` (all but
its keys and timestamp by default), named ``prefix`` + column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import pyarrow as pa

from gristmill.config.features import JoinPlan
from gristmill.errors import ConfigError, DataError


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_columns(name: str, table: pa.Table, needed: Sequence[str], what: str, path: str) -> None:
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise DataError(
            f"{path}: input {name!r} has no column {missing[0]!r} {what}; its columns: "
            f"{', '.join(table.column_names)}",
            column=missing[0],
        )


def plan_for(
    source: str,
    *,
    on: str | Sequence[str],
    timestamp: str | None,
    how: str = "asof",
) -> JoinPlan:
    """The plan of the simple form: the same key(s) and timestamp in every input."""
    keys = (on,) if isinstance(on, str) else tuple(on)
    return JoinPlan(source, keys, keys, how, timestamp, timestamp, None, "", None)


def join_inputs(
    inputs: Mapping[str, pa.Table],
    *,
    on: str | Sequence[str] | None = None,
    timestamp: str | None = None,
    how: str = "asof",
    plans: Sequence[JoinPlan] | None = None,
    where: str = "features.<set>.join",
) -> pa.Table:
    """Join ``inputs`` (name → table, the first is the spine); see ``join_described``."""
    return join_described(inputs, on=on, timestamp=timestamp, how=how, plans=plans, where=where)[0]


def join_described(
    inputs: Mapping[str, pa.Table],
    *,
    on: str | Sequence[str] | None = None,
    timestamp: str | None = None,
    how: str = "asof",
    plans: Sequence[JoinPlan] | None = None,
    where: str = "features.<set>.join",
) -> tuple[pa.Table, list[dict[str, str]]]:
    """Join ``inputs`` (name → table, the first is the spine), and describe the joined
    schema: each column's name, type and the input it came from (``from``, with
    ``column``, its name there, when it was renamed).

    ``plans`` say how each later input joins (``JoinSpec.plan``); without them every input
    joins on key(s) ``on`` and ``timestamp`` (``how="asof"`` needs it). Columns that clash
    with earlier ones are renamed ``<input>__<column>`` unless a ``prefix`` was asked for
    (a clash is then an error). Errors name ``where``, the spec path of the join.
    """
    if not inputs:
        raise ConfigError("a join needs at least one input")
    names = list(inputs)
    if plans is None:
        if on is None:
            raise ConfigError(f"{where}: a join needs a key ('on')")
        plans = [plan_for(name, on=on, timestamp=timestamp, how=how) for name in names[1:]]
    for plan in plans:
        if plan.how == "asof" and (plan.left_timestamp is None or plan.right_timestamp is None):
            raise ConfigError(
                f"{where}: an as-of join needs 'timestamp' (the event-time column of each "
                "input; `timestamp` under `inputs.<source>` when a joined input's differs)"
            )
    if len(names) == 1:
        only = inputs[names[0]]
        return only, [_column(f, names[0], f.name) for f in only.schema]
    by_source = {plan.source: plan for plan in plans}
    spine = inputs[names[0]]
    for name in names[1:]:
        _check_plan(names[0], spine, name, inputs[name], by_source[name], where)
    return _run(inputs, names, [by_source[n] for n in names[1:]], where)


def _column(field: pa.Field, source: str, column: str) -> dict[str, str]:
    described = {"name": field.name, "type": str(field.type), "from": source}
    return described if column == field.name else {**described, "column": column}


def _check_plan(
    spine_name: str, spine: pa.Table, name: str, table: pa.Table, plan: JoinPlan, where: str
) -> None:
    asof = plan.how == "asof"
    left_ts = [plan.left_timestamp or ""] if asof else []
    right_ts = [plan.right_timestamp or ""] if asof else []
    _check_columns(spine_name, spine, [*plan.left_on, *left_ts], "to join on", where)
    _check_columns(name, table, [*plan.right_on, *right_ts], "to join on", where)
    if plan.columns is not None:
        _check_columns(name, table, plan.columns, "to take (columns)", where)


def _taken(table: pa.Table, plan: JoinPlan) -> list[str]:
    """The columns an input contributes: its ``columns``, else all but keys and time."""
    if plan.columns is not None:
        return list(plan.columns)
    skip = {*plan.right_on, *([plan.right_timestamp] if plan.how == "asof" else [])}
    return [c for c in table.column_names if c not in skip]


def _condition(index: int, plan: JoinPlan) -> str:
    pairs = [
        f"t0.{_quote(left)} = t{index}.{_quote(right)}"
        for left, right in zip(plan.left_on, plan.right_on, strict=True)
    ]
    if plan.how == "asof":
        left, right = _quote(plan.left_timestamp or ""), _quote(plan.right_timestamp or "")
        pairs.append(f"t0.{left} >= t{index}.{right}")
    return " AND ".join(pairs)


def _run(
    inputs: Mapping[str, pa.Table], names: list[str], plans: list[JoinPlan], where: str
) -> tuple[pa.Table, list[dict[str, str]]]:
    connection = duckdb.connect()
    origins = {c: (names[0], c) for c in inputs[names[0]].column_names}
    try:
        for index, name in enumerate(names):
            connection.register(f"input{index}", inputs[name])
        seen = set(inputs[names[0]].column_names)
        select = ["t0.* EXCLUDE (__gm_row)"]
        joins = []
        for index, (name, plan) in enumerate(zip(names[1:], plans, strict=True), start=1):
            fresh = None
            if plan.tolerance is not None:  # the newest row at or before, if not too old
                left, right = _quote(plan.left_timestamp or ""), _quote(plan.right_timestamp or "")
                micros = round(plan.tolerance * 1_000_000)
                fresh = f"t{index}.{right} >= t0.{left} - to_microseconds({micros})"
            for column in _taken(inputs[name], plan):
                alias = plan.prefix + column
                if alias in seen:
                    if plan.prefix:
                        raise ConfigError(
                            f"{where}: column {alias!r} of input {name!r} (prefix "
                            f"{plan.prefix!r}) is already a column of the join; choose "
                            "another prefix or leave it out of `columns`"
                        )
                    alias = f"{name}__{column}"
                seen.add(alias)
                origins[alias] = (name, column)
                value = f"t{index}.{_quote(column)}"
                if fresh is not None:
                    value = f"CASE WHEN {fresh} THEN {value} END"
                select.append(f"{value} AS {_quote(alias)}")
            kind = "ASOF LEFT JOIN" if plan.how == "asof" else "LEFT JOIN"
            joins.append(f"{kind} input{index} t{index} ON {_condition(index, plan)}")
        spine = "(SELECT *, row_number() OVER () AS __gm_row FROM input0) t0"
        query = f"SELECT {', '.join(select)} FROM {spine} {' '.join(joins)} ORDER BY t0.__gm_row"
        try:
            joined = connection.sql(query).to_arrow_table()
        except duckdb.Error as exc:
            raise DataError(f"{where}: joining {', '.join(names)} failed: {exc}") from exc
    finally:
        connection.close()
    return joined, [_column(f, *origins[f.name]) for f in joined.schema]
