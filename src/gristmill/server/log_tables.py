"""Prediction log records to Arrow tables: one row per scored row, columns built in bulk.

Records of one model version with the same input columns become one table (a record whose
columns do not hold one value per answered row is kept without its inputs): ``request_id``,
``protocol``, ``at`` (UTC time), ``latency_ms``, ``row`` (its place in the request),
``shadow`` (a shadow version's answer, never returned), then a
struct ``inputs`` (one field per raw input column; for an entity request, the entity key),
``status`` (an entity request's per row: ``found``, ``missing``, ``expired``,
``superseded``; null for raw rows), for an entity request a struct ``features`` (the
standardized features the learner scored, null where none was found), ``prediction``
and, for a classifier, a struct ``probabilities`` (one field per class). Columns are
joined once per write (``np.concatenate``, one flattening per column), not per record; a
column whose values Arrow cannot type as one is written as text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pyarrow as pa

from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.port import EntityInputs

# request id, protocol, manifest, time, seconds, input columns (or their block), answer,
# whether a shadow version answered it
Record = tuple[
    str, str, ServableManifest, float, float, Mapping[str, Any] | np.ndarray, Predictions, bool
]
GroupKey = tuple[str, int, tuple[str, ...], bool]  # model, version, input names, blocks


def grouped(records: Sequence[Record]) -> dict[GroupKey, list[Record]]:
    """Records by model, version and input columns (those of the manifest when present);
    records whose inputs are a mapping (not a block)."""
    groups: dict[GroupKey, list[Record]] = defaultdict(list)
    inputs: dict[int, tuple[tuple[str, ...], frozenset[str]]] = {}
    for record in records:
        manifest, columns = record[2], record[5]
        assert isinstance(columns, Mapping)
        known = inputs.get(id(manifest))
        if known is None:
            listed = tuple(c.name for c in manifest.inputs)
            known = inputs[id(manifest)] = (listed, frozenset(listed))
        names, held = known
        if not names or not columns.keys() >= held:
            names = tuple(columns)
        rows = len(record[6].values)
        if _all_of_length([columns[n] for n in names], rows):
            groups[(manifest.model, manifest.version, names, False)].append(record)
        else:  # a column of another length than the answer: not a table row per row
            groups[(manifest.model, manifest.version, (), False)].append(record)
    return groups


def _all_of_length(values: list[Any], rows: int) -> bool:
    try:
        return all(map(rows.__eq__, map(len, values)))  # no Python loop per column
    except TypeError:  # a value without a length
        return False


def table(names: tuple[str, ...], records: Sequence[Record]) -> pa.Table:
    """The rows of ``records`` (see the module docstring). Numeric requests are usually
    kept as columns instead (``log_columns``), which make the same table."""
    count = len(records)
    answers = list(map(itemgetter(6), records))
    counts = np.fromiter(map(len, map(attrgetter("values"), answers)), np.int64, count=count)
    rows = int(counts.sum())

    def repeated(index: int, kind: Any) -> np.ndarray:
        # map and itemgetter: no Python frame per record (this runs in the writer thread,
        # but holds the interpreter lock the event loop waits for)
        values = np.fromiter(map(itemgetter(index), records), dtype=kind, count=count)
        return values if rows == count else np.repeat(values, counts)

    places = np.arange(rows) - np.repeat(np.cumsum(counts) - counts, counts)
    inputs = _inputs(names, records)
    columns: dict[str, Any] = {
        "request_id": pa.array(repeated(0, object), pa.string()),
        "protocol": pa.array(repeated(1, object), pa.string()),
        "at": pa.array((repeated(3, np.float64) * 1e6).astype("datetime64[us]")),
        "latency_ms": pa.array(repeated(4, np.float64) * 1000.0),
        "row": pa.array(places),
        "shadow": pa.array(repeated(7, np.bool_)),
        "inputs": pa.StructArray.from_arrays(inputs, names=list(names))
        if names
        else pa.nulls(rows),
    }
    columns.update(_entity_columns(records, rows))
    columns["prediction"] = _column(list(map(attrgetter("values"), answers)))
    probabilities = [p for p in map(attrgetter("probabilities"), answers) if p is not None]
    manifest = records[0][2]
    if manifest.classes and len(probabilities) == len(records):
        joined = _concatenated(probabilities)
        fields = [str(c) for c in manifest.classes]
        arrays = [pa.array(joined[:, i]) for i in range(joined.shape[1])]
        columns["probabilities"] = pa.StructArray.from_arrays(arrays, names=fields)
    return pa.table(columns)


def _entity_columns(records: Sequence[Record], rows: int) -> dict[str, pa.Array]:
    """``status`` and ``features`` of entity requests' records; a null ``status`` (and no
    ``features``) for raw rows."""
    kept = [r[5] for r in records]
    if not kept or not all(type(k) is EntityInputs for k in kept):
        return {"status": pa.nulls(rows, pa.string())}
    entity: list[EntityInputs] = kept  # type: ignore[assignment]
    status = pa.array(list(chain.from_iterable(k.status for k in entity)), pa.string())
    names = tuple(entity[0].features)
    if not names or any(tuple(k.features) != names for k in entity):
        return {"status": status}
    values = _fields(names, [k.features for k in entity])
    return {"status": status, "features": pa.StructArray.from_arrays(values, names=list(names))}


def _inputs(names: tuple[str, ...], records: Sequence[Record]) -> list[pa.Array]:
    """One Arrow column per input name: each record's columns taken at once (``itemgetter``
    over the records, then transposed by ``zip``), so no Python loop runs per name and
    record; a record's float arrays (what the servable scored) are joined, not rebuilt."""
    return _fields(names, [r[5] for r in records])  # type: ignore[misc]


def _fields(names: tuple[str, ...], mappings: Sequence[Mapping[str, Any]]) -> list[pa.Array]:
    """One Arrow column per name of ``mappings`` (one mapping per record)."""
    if not names:
        return []
    if len(names) == 1:
        return [_column([m[names[0]] for m in mappings])]
    getter = itemgetter(*names)
    per_name = zip(*map(getter, mappings), strict=True)
    return [_column(list(parts)) for parts in per_name]


def _column(parts: list[Any]) -> pa.Array:
    """One Arrow column from each record's values (numpy arrays or JSON lists)."""
    if all(map(isinstance, parts, repeat(np.ndarray))):  # no Python loop per record
        joined = _concatenated(parts) if parts else np.empty(0)
        if joined.dtype.kind != "O":
            return pa.array(joined)
        flat: list[Any] = joined.tolist()
    else:
        flat = [v for p in parts for v in (p.tolist() if isinstance(p, np.ndarray) else p)]
    try:
        return pa.array(flat, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in flat], pa.string())


_CHUNK = 256


def _concatenated(parts: list[np.ndarray], axis: int = 0) -> np.ndarray:
    """``np.concatenate`` in steps of ``_CHUNK`` arrays: one call over thousands of small
    arrays holds the interpreter lock for milliseconds, which the server's event loop (in
    another thread) would wait for; between steps it can run."""
    if len(parts) <= _CHUNK:
        return np.concatenate(parts, axis=axis)
    steps = [np.concatenate(parts[i : i + _CHUNK], axis=axis) for i in range(0, len(parts), _CHUNK)]
    return np.concatenate(steps, axis=axis)
