"""A partition's rows in and out: the servable's feed read from Arrow, the scores written.

In: when every column a servable reads is a number column without gaps, the partition's
columns are copied once into one row-major float64 matrix (``NumericColumns``), which a
graph taking its inputs as one tensor runs as it is; anything else (text, gaps, a value
that is not finite) goes as one array per column, checked and named by the servable.

Out: the score store's layout (ADR 25). A row is named by ``input_id`` (the batch, feature
set or file scored) and ``row`` (its number there), and by the input's own key columns
(``_row_id``, the entity) when it has them; ``job_id``, ``model`` and ``input_id`` are the
same for every row of a job and are written dictionary-encoded (one value, an index per
row). Jobs begun before ADR 25 (layout 1) keep their layout to the end: a ``row_id`` text
``INPUT:ROW`` per row and plain text columns, so no job mixes two schemas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.features.rows import ROW_ID
from gristmill.servables.port import InputColumn, NumericColumns, Predictions

if TYPE_CHECKING:
    from gristmill.stages.score_jobs import PartitionWork

LAYOUT = 2
"""The score store layout this code writes for a new job (ADR 25); 1 before it."""

_NUMBERS = {
    pa.float64(): np.float64,
    pa.float32(): np.float32,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int16(): np.int16,
    pa.int8(): np.int8,
    pa.uint32(): np.uint32,
    pa.uint16(): np.uint16,
    pa.uint8(): np.uint8,
}
"""Arrow number types whose values are one flat buffer numpy reads without a copy."""


def numeric_block(table: pa.Table, columns: Sequence[InputColumn]) -> NumericColumns | None:
    """``columns`` of ``table`` as one ``[rows, columns]`` float64 matrix, when each is a
    number column (declared and stored) without a gap and every value is finite; else
    ``None`` (the general path types, checks and names each value)."""
    if not columns or any(c.type not in ("float64", "int64") for c in columns):
        return None
    matrix = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for place, column in enumerate(columns):
        values = table.column(column.name)
        dtype = _NUMBERS.get(values.type)
        if dtype is None or values.null_count:
            return None
        start = 0
        for chunk in values.chunks:
            size = np.dtype(dtype).itemsize
            flat = np.frombuffer(
                chunk.buffers()[1], dtype=dtype, count=len(chunk), offset=chunk.offset * size
            )
            matrix[start : start + len(chunk), place] = flat
            start += len(chunk)
    # a sum is finite exactly when every value is (barring an overflow of huge values,
    # which the general path then accepts): one pass, no mask, no BLAS threads
    if not math.isfinite(np.add.reduce(matrix, axis=None)):
        return None
    return NumericColumns.of_rows(tuple(c.name for c in columns), matrix)


def scores_table(
    work: PartitionWork, positions: np.ndarray, answers: list[Predictions]
) -> pa.Table:
    """The rows written for the partition of ``work``: ids, the input's keys, prediction,
    a probability per class, ``rejected`` when a ``filter`` step rejected rows."""
    count = len(positions)
    rows = arrow(positions + work.first_row)
    if work.layout == 1:
        out: dict[str, pa.Array | pa.ChunkedArray] = {
            "job_id": pa.repeat(pa.scalar(work.job_id, pa.string()), count),
            "model": pa.repeat(pa.scalar(work.model, pa.string()), count),
            "version": arrow(np.full(count, work.version, dtype=np.int64)),
            "row": rows,
            "row_id": _row_ids(work, positions, rows),
        }
        keys = [k for k in work.keys if k != ROW_ID]
    else:
        out = {
            "job_id": constant(work.job_id, count),
            "model": constant(work.model, count),
            "version": arrow(np.full(count, work.version, dtype=np.int64)),
            "input_id": constant(work.input_id, count),
            "row": rows,
        }
        keys = list(work.keys)
    for key in keys:
        out[key] = work.table.column(key).take(arrow(positions))
    values = np.concatenate([a.values for a in answers]) if answers else np.empty(0)
    out["prediction"] = arrow(values)
    classes = work.servable.manifest.classes or ()
    probabilities = [a.probabilities for a in answers if a.probabilities is not None]
    if classes and probabilities and len(probabilities) == len(answers):
        stacked = np.concatenate(probabilities).astype(np.float64, copy=False)
        for number, label in enumerate(classes):
            out[f"p_{label}"] = arrow(stacked[:, number])
    if any(a.rejected is not None for a in answers):
        rejected = [
            a.rejected if a.rejected is not None else np.zeros(len(a.values), bool) for a in answers
        ]
        out["rejected"] = arrow(np.concatenate(rejected))
    return pa.Table.from_arrays(list(out.values()), names=list(out))


def arrow(values: np.ndarray) -> pa.Array:
    """``values`` as an Arrow array. Numbers and booleans are wrapped from their buffers:
    ``pa.array`` asks pandas whether they are a pandas object — importing it, a third of a
    second — which a score job of an ONNX version otherwise never needs."""
    kind = values.dtype.kind
    if kind in "iuf" and values.dtype.byteorder in "=|":
        flat = np.ascontiguousarray(values)
        return pa.Array.from_buffers(
            pa.from_numpy_dtype(flat.dtype), len(flat), [None, pa.py_buffer(flat)]
        )
    if kind == "b":
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.array(_plain(values))


def constant(value: str, count: int) -> pa.DictionaryArray:
    """``count`` times ``value``, dictionary-encoded: one value and ``count`` zeros."""
    text = value.encode()
    offsets = np.array([0, len(text)], dtype=np.int32)
    dictionary = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )
    return pa.DictionaryArray.from_arrays(arrow(np.zeros(count, dtype=np.int32)), dictionary)


def _plain(values: np.ndarray) -> list[Any] | np.ndarray:
    if values.dtype != object:
        return values
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _row_ids(work: PartitionWork, positions: np.ndarray, rows: pa.Array) -> pa.Array:
    """Layout 1's ``row_id``: the input's own row ids when it has them (a feature set),
    else ``INPUT_ID:ROW`` (built by Arrow's kernels: no Python string per row)."""
    if ROW_ID in work.table.column_names:
        return pc.cast(work.table.column(ROW_ID).take(positions), pa.string()).combine_chunks()
    prefix = pa.scalar(f"{work.input_id}:", pa.string())
    return pc.binary_join_element_wise(prefix, pc.cast(rows, pa.string()), "")


def bad_row(work: PartitionWork, position: int, error: str) -> dict[str, Any]:
    """A row the version could not score, named by its number in the input and its keys."""
    keys = {k: work.table.column(k)[position].as_py() for k in work.keys}
    key = ", ".join(f"{k}={v}" for k, v in keys.items()) or None
    return {"row": work.first_row + position, "key": key, "error": error}
