"""Counting prediction log rows into drift windows, in bulk, as counts that add up.

A log file (``server.log_tables``: ``at``, a struct ``inputs``, ``prediction`` …) is cut by
its rows' ``at`` into windows of ``window_seconds`` (``stores.drift.window_of``); in each,
every column of the version's reference is counted on the reference's bins (a numeric
column: its decile bins and its KS bins, by binary search of each value among the edges) or
categories (by Arrow's ``index_in``; a value the reference never had counts as ``new``).
Nothing loops over rows in Python; a column is converted once per file.

A window's counts are JSON that adds up over files (``added``): ``{"reference": digest,
"rows": n, "columns": {name: tally}}``, a numeric tally ``{"rows", "missing", "bins",
"ks"}``, a categorical one ``{"rows", "missing", "new", "counts"}``. A column the file does
not hold (an entity request logs its key, not the raw inputs) is not counted at all: its
tally grows only by the rows that had it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import DataError
from gristmill.monitoring.profile import ColumnReference, DriftReference, as_text

Tally = dict[str, Any]
Counts = dict[str, Any]
_MICROS = 1_000_000


def count_log(
    table: pa.Table, reference: DriftReference, window_seconds: int, *, digest: str = ""
) -> dict[datetime, Counts]:
    """The counts of each window the rows of ``table`` fall in (see the module docstring);
    ``digest`` names the reference the counts were made on. ``DataError`` for a table
    without the log's ``at`` column."""
    if "at" not in table.column_names:
        raise DataError("the file has no 'at' column: it is not a prediction log file")
    if table.num_rows == 0:
        return {}
    micros = pc.cast(table.column("at"), pa.timestamp("us")).cast(pa.int64()).to_numpy()
    windows = micros // (window_seconds * _MICROS)
    first, last = int(windows.min()), int(windows.max())
    parts: list[tuple[int, npt.NDArray[np.int64] | None]] = (
        [(first, None)]
        if first == last
        else [(int(w), np.flatnonzero(windows == w)) for w in np.unique(windows)]
    )
    columns = {c.name: _reader(table, c) for c in reference.columns}
    counted = {}
    for window, positions in parts:
        rows = table.num_rows if positions is None else len(positions)
        tallies = {name: read(positions) for name, read in columns.items() if read is not None}
        start = datetime.fromtimestamp(window * window_seconds, UTC)
        counted[start] = {"reference": digest, "rows": rows, "columns": tallies}
    return counted


def added(before: Counts | None, more: Counts) -> Counts:
    """``before`` and ``more`` summed (``before`` may be empty: a new window).
    ``DataError`` when they were counted on different references or bins."""
    if not before:
        return more
    if before.get("reference") != more.get("reference"):
        raise DataError(
            f"window counts made on reference {before.get('reference')} cannot take counts "
            f"made on reference {more.get('reference')}"
        )
    columns = dict(before["columns"])
    for name, tally in more["columns"].items():
        columns[name] = _sum(columns[name], tally) if name in columns else tally
    return {**before, "rows": before["rows"] + more["rows"], "columns": columns}


def _sum(left: Tally, right: Tally) -> Tally:
    total: Tally = {}
    for key, value in right.items():
        mine = left.get(key)
        if isinstance(value, list):
            if not isinstance(mine, list) or len(mine) != len(value):
                raise DataError(f"counts of {key!r} are on other bins than the window's")
            total[key] = [a + b for a, b in zip(mine, value, strict=True)]
        else:
            total[key] = (mine or 0) + value
    return total


Reader = Any  # Callable[[positions | None], Tally]


def _reader(table: pa.Table, column: ColumnReference) -> Reader | None:
    """A function counting ``column`` at given rows of ``table`` (all when ``None``), or
    ``None`` when the table does not hold it."""
    values = _values(table, column)
    if values is None:
        return None
    if column.kind == "numeric":
        return _numeric_reader(values, column)
    return _categorical_reader(values, column)


def _values(table: pa.Table, column: ColumnReference) -> pa.ChunkedArray | None:
    if column.source == "prediction":
        return table.column("prediction") if "prediction" in table.column_names else None
    if "inputs" not in table.column_names:
        return None
    inputs = table.column("inputs")
    if not pa.types.is_struct(inputs.type) or inputs.type.get_field_index(column.field) < 0:
        return None
    return pc.struct_field(inputs, column.field)


def _numeric_reader(values: pa.ChunkedArray, column: ColumnReference) -> Reader:
    try:
        numbers = pc.cast(values, pa.float64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = np.full(len(values), np.nan)  # not numbers: counted as missing
    edges = np.asarray(column.edges, dtype=np.float64)
    ks_edges = np.asarray(column.ks_edges, dtype=np.float64)

    def read(positions: npt.NDArray[np.int64] | None) -> Tally:
        chosen = numbers if positions is None else numbers[positions]
        missing = np.isnan(chosen)
        present = chosen[~missing] if missing.any() else chosen
        return {
            "rows": len(chosen),
            "missing": int(missing.sum()),
            "bins": _binned(present, edges),
            "ks": _binned(present, ks_edges),
        }

    return read


def _binned(values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]) -> list[int]:
    """Values per bin ``(-inf, e0], (e0, e1], …, (e_last, inf)`` (as ``bin_counts``)."""
    index = np.searchsorted(edges, values, side="left")
    counts: list[int] = np.bincount(index, minlength=edges.size + 1).tolist()
    return counts


def _categorical_reader(values: pa.ChunkedArray, column: ColumnReference) -> Reader:
    try:
        text = as_text(values)
    except DataError:
        text = pa.nulls(len(values), pa.string())  # not categories: counted as missing
    known = pa.array(list(column.categories), pa.string())
    index = pc.fill_null(pc.index_in(text, value_set=known), -1).to_numpy()
    missing = text.is_null().to_numpy(zero_copy_only=False)
    size = len(column.categories)

    def read(positions: npt.NDArray[np.int64] | None) -> Tally:
        chosen = index if positions is None else index[positions]
        absent = missing if positions is None else missing[positions]
        found = chosen[chosen >= 0]
        gaps = int(absent.sum())
        counts: list[int] = np.bincount(found, minlength=size).tolist()
        return {
            "rows": len(chosen),
            "missing": gaps,
            "new": len(chosen) - len(found) - gaps,
            "counts": counts,
        }

    return read
