"""Column profiles: one vectorised pass per column that statistics, anomalies and drift share.

A profile keeps what every later check needs, computed once: the column's *kind*, its
missing count, and either its present values **sorted** (numeric: quantiles, ranges and
outlier counts then cost a binary search, not a pass) or its category counts (strings,
booleans). Nothing loops over rows in Python; columns are profiled on a thread pool, since
NumPy's sort and Arrow's kernels release the GIL.

Missing means null, and also NaN in floating-point columns (a NaN is no measurement).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["numeric", "categorical", "boolean", "temporal", "text", "other"]

TOP_CATEGORIES = 20
# A string column is categorical when it has at most this many distinct values, and either
# few of them or at most one distinct value per two rows; otherwise it is free text (names, ids).
MAX_CATEGORIES = 1000
FEW_CATEGORIES = 20

Numbers = npt.NDArray[np.float64] | npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class ColumnProfile:
    """One column of one table, reduced to what validation needs.

    ``values`` (numeric only) are the present values, sorted ascending: ``int64`` for integer
    columns (exact), ``float64`` otherwise. ``counts`` (categorical and boolean) maps each
    present category to its rows; ``top`` (every string or boolean column) holds the
    ``TOP_CATEGORIES`` most frequent, most frequent first, ties in first-seen order.
    """

    name: str
    type: pa.DataType
    kind: Kind
    rows: int
    missing: int
    column: pa.ChunkedArray = field(repr=False)
    distinct: int | None = None
    values: Numbers | None = field(default=None, repr=False)
    counts: dict[Any, int] | None = field(default=None, repr=False)
    top: list[tuple[Any, int]] = field(default_factory=list)
    minimum: Any = None
    maximum: Any = None

    @property
    def present(self) -> int:
        return self.rows - self.missing

    @property
    def missing_share(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


def profile_table(
    table: pa.Table, *, columns: Sequence[str] | None = None, workers: int | None = None
) -> dict[str, ColumnProfile]:
    """A profile per column of ``table`` (or of ``columns``), in table order."""
    names = [name for name in table.column_names if columns is None or name in columns]
    workers = workers or min(len(names), os.cpu_count() or 1) or 1
    if workers == 1:
        profiles = [profile_column(name, table.column(name)) for name in names]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="gristmill-profile") as pool:
            profiles = list(pool.map(lambda n: profile_column(n, table.column(n)), names))
    return {profile.name: profile for profile in profiles}


def profile_column(name: str, column: pa.ChunkedArray) -> ColumnProfile:
    """The profile of one column; the column is kept (not copied) for later set checks."""
    data_type = column.type
    base = {"name": name, "type": data_type, "rows": len(column), "column": column}
    if _is_numeric(data_type):
        values, nan = sorted_numbers(column)
        return ColumnProfile(
            kind="numeric",
            missing=column.null_count + nan,
            distinct=_sorted_distinct(values),
            values=values,
            minimum=values[0].item() if values.size else None,
            maximum=values[-1].item() if values.size else None,
            **base,
        )
    if pa.types.is_boolean(data_type):
        trues = int(pc.sum(column).as_py() or 0)
        falses = len(column) - column.null_count - trues
        counts = {value: n for value, n in ((True, trues), (False, falses)) if n}
        top = sorted(counts.items(), key=lambda item: -item[1])
        return ColumnProfile(
            kind="boolean",
            missing=column.null_count,
            distinct=len(counts),
            counts=counts,
            top=top,
            **base,
        )
    if _is_string(data_type):
        return _profile_strings(column, base)
    if _is_temporal(data_type):
        extremes = pc.min_max(column)
        return ColumnProfile(
            kind="temporal",
            missing=column.null_count,
            minimum=extremes["min"].as_py(),
            maximum=extremes["max"].as_py(),
            **base,
        )
    return ColumnProfile(kind="other", missing=column.null_count, **base)


def sorted_numbers(column: pa.ChunkedArray) -> tuple[Numbers, int]:
    """The present values of a numeric column, sorted, and how many NaNs were dropped."""
    data_type = column.type
    exact = pa.types.is_integer(data_type) and not pa.types.is_uint64(data_type)
    target = pa.int64() if exact else pa.float64()
    parts = [
        (chunk if chunk.null_count == 0 else pc.drop_null(chunk)).cast(target).to_numpy()
        for chunk in column.chunks
    ]
    # concatenate copies, so the array is ours to sort in place (Arrow's buffers are read-only).
    values: Numbers = np.concatenate(parts) if parts else np.empty(0, np.int64 if exact else float)
    values.sort()
    if exact:
        return values, 0
    # NaNs sort last, and a binary search for NaN finds where they start.
    nan = values.size - int(np.searchsorted(values, np.nan, side="left"))
    return values[: values.size - nan], nan


def sorted_quantiles(values: npt.NDArray[Any], quantiles: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Quantiles of sorted ``values`` with linear interpolation (NumPy's default), in O(1)."""
    wanted = np.asarray(quantiles, dtype=np.float64)
    if values.size == 0:
        return np.full(wanted.shape, np.nan)
    position = wanted * (values.size - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, values.size - 1)
    low, high = values[below].astype(np.float64), values[above].astype(np.float64)
    with np.errstate(invalid="ignore"):  # infinite values give NaN, written as null
        result: npt.NDArray[np.float64] = low + (position - below) * (high - low)
    return result


def count_outside(values: Numbers, low: float | None, high: float | None) -> tuple[int, int]:
    """How many sorted ``values`` lie strictly below ``low`` and strictly above ``high``."""
    below = int(np.searchsorted(values, low, side="left")) if low is not None else 0
    above = (
        values.size - int(np.searchsorted(values, high, side="right")) if high is not None else 0
    )
    return below, above


def _profile_strings(column: pa.ChunkedArray, base: dict[str, Any]) -> ColumnProfile:
    counted = pc.value_counts(column)
    present = counted.field("values").is_valid()
    values = counted.field("values").filter(present)
    counts = counted.field("counts").filter(present).to_numpy()
    distinct = len(values)
    order = np.argsort(-counts, kind="stable")
    head = order[:TOP_CATEGORIES]
    top = list(zip(values.take(pa.array(head)).to_pylist(), counts[head].tolist(), strict=True))
    is_categorical = distinct <= MAX_CATEGORIES and (
        distinct <= FEW_CATEGORIES or 2 * distinct <= int(counts.sum())
    )
    return ColumnProfile(
        kind="categorical" if is_categorical else "text",
        missing=column.null_count,
        distinct=distinct,
        counts=dict(zip(values.to_pylist(), counts.tolist(), strict=True))
        if is_categorical
        else None,
        top=top,
        **base,
    )


def _sorted_distinct(values: Numbers) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if values.size else 0


def _is_numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _is_string(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        return _is_string(data_type.value_type)
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_string_view(data_type)
    )


def _is_temporal(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_temporal(data_type))


def json_value(value: Any) -> Any:
    """``value`` as JSON holds it: NumPy scalars unwrapped, times in ISO 8601, tuples as lists,
    and non-finite floats as ``None`` (JSON has no NaN or infinity; PostgreSQL refuses them)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta | decimal.Decimal | bytes):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    return value
