"""A drift reference: what each monitored column of a version looked like in training.

For every column the monitoring stage compares — each raw input the version's servable
takes, and its prediction — the reference keeps only what the comparison needs, so a
window never has to see the training rows again:

* a **numeric** column: the inner edges of its deciles (``features.validation.drift.BINS``
  bins, for PSI and chi-square) and of ``KS_BINS`` quantile bins (for KS), with the
  reference's count in each bin;
* a **categorical** column (text, booleans, a classifier's classes): its categories, as
  text (Arrow's cast: ``true``, ``1``), and their counts; at most ``MAX_CATEGORIES``.

A column of another kind (times, free text with more distinct values than that) is not
monitored, nor is an **identifier** — the entity key of the version's feature set, or a
text or integer column whose values are (nearly) all distinct in the training rows (at
least ``IDENTIFIER_SHARE`` of ``IDENTIFIER_ROWS`` or more): new ids in every window would
read as drift in each one. ``skipped`` says why (an identifier's reason starts with
``IDENTIFIER``). Columns are named as in the prediction log's ``inputs``;
the prediction is ``prediction`` (an input of that name is then ``inputs.prediction``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import DataError
from gristmill.features.validation.drift import BINS, KS_BINS, bin_counts, quantile_edges
from gristmill.features.validation.profiles import MAX_CATEGORIES, json_value, sorted_numbers
from gristmill.monitoring.reference_report import IDENTIFIER

FORMAT = "gristmill.drift_reference/1"
PREDICTION = "prediction"
IDENTIFIER_SHARE = 0.95
IDENTIFIER_ROWS = 20

ColumnKind = Literal["numeric", "categorical"]
Source = Literal["inputs", "prediction"]


@dataclass(frozen=True)
class ColumnReference:
    """One monitored column's reference (see the module docstring). ``field`` is where the
    log holds it: a field of ``inputs``, or the ``prediction`` column."""

    name: str
    kind: ColumnKind
    source: Source
    field: str
    rows: int
    missing: int
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    ks_edges: tuple[float, ...] = ()
    ks_counts: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class DriftReference:
    """A version's reference: its monitored ``columns`` (the inputs, then the prediction),
    from ``rows`` training rows (``source`` says which), and the artifact digest of the
    ``sample`` of those rows with their predictions (``None`` when not stored)."""

    model: str
    version: int
    rows: int
    source: str
    columns: tuple[ColumnReference, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    sample: str | None = None
    seed: int = 0
    digest: str = ""
    """The artifact digest of the reference itself (not part of its body)."""

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def column(self, name: str) -> ColumnReference | None:
        return next((c for c in self.columns if c.name == name), None)


def column_reference(
    name: str,
    column: pa.ChunkedArray | pa.Array,
    *,
    source: Source = "inputs",
    field: str | None = None,
    categories: list[Any] | None = None,
) -> ColumnReference | str:
    """The reference of one column of training rows, or why it is not monitored.

    ``categories`` (a classifier's classes) makes it categorical over exactly those, in that
    order, whatever the values' type.
    """
    chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    where = field or name
    data_type = chunked.type
    if categories is None and _is_numeric(data_type):
        values, nan = sorted_numbers(chunked)
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        edges = quantile_edges(finite, BINS, assume_sorted=True)
        ks_edges = quantile_edges(finite, KS_BINS, assume_sorted=True)
        return ColumnReference(
            kind="numeric",
            rows=int(values.size),
            missing=chunked.null_count + nan,
            edges=tuple(edges.tolist()),
            counts=tuple(bin_counts(values, edges, assume_sorted=True).tolist()),
            ks_edges=tuple(ks_edges.tolist()),
            ks_counts=tuple(bin_counts(values, ks_edges, assume_sorted=True).tolist()),
            name=name,
            source=source,
            field=where,
        )
    if categories is None and not _is_categorical(data_type):
        return f"its type {data_type} is neither numbers nor categories"
    text = as_text(chunked)
    counted = pc.value_counts(text.drop_null() if text.null_count else text)
    seen = dict(
        zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    )
    if categories is not None:
        names = as_text(pa.array(categories)).to_pylist()
    else:
        if len(seen) > MAX_CATEGORIES:
            return f"it has {len(seen)} distinct values (free text: more than {MAX_CATEGORIES})"
        names = sorted(seen, key=lambda value: (-seen[value], value))
    return ColumnReference(
        kind="categorical",
        rows=int(sum(seen.values())),
        missing=text.null_count,
        counts=tuple(int(seen.get(value, 0)) for value in names),
        categories=tuple(str(value) for value in names),
        name=name,
        source=source,
        field=where,
    )


def profiled(
    inputs: pa.Table,
    predicted: pa.Array | None,
    *,
    classes: list[Any] | None = None,
    entity: str | None = None,
) -> tuple[tuple[ColumnReference, ...], dict[str, str]]:
    """The reference of every column of ``inputs`` and of the ``predicted`` values (a
    category of ``classes`` when given), and why the others are not monitored (``entity``
    and other identifiers among them)."""
    made: list[ColumnReference] = []
    skipped: dict[str, str] = {}
    wanted: list[tuple[str, Any, Source, str, list[Any] | None]] = []
    for n in inputs.column_names:
        name = f"inputs.{n}" if n == PREDICTION else n
        why = identifier(inputs.column(n), entity=n == entity)
        if why is not None:
            skipped[name] = why
        else:
            wanted.append((name, inputs.column(n), "inputs", n, None))
    if predicted is not None:
        wanted.append((PREDICTION, predicted, "prediction", PREDICTION, classes))
    for name, values, source, where, categories in wanted:
        made_or_why = column_reference(
            name, values, source=source, field=where, categories=categories
        )
        if isinstance(made_or_why, str):
            skipped[name] = made_or_why
        else:
            made.append(made_or_why)
    return tuple(made), skipped


def identifier(column: pa.ChunkedArray | pa.Array, *, entity: bool = False) -> str | None:
    """Why ``column`` (training rows of an input) is an identifier, or ``None``: the entity
    key, or text or integers (nearly) all distinct (see the module docstring)."""
    if entity:
        return f"{IDENTIFIER}: the entity key"
    data_type = column.type
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    textual = pa.types.is_string(data_type) or pa.types.is_large_string(data_type)
    if not (textual or pa.types.is_integer(data_type)):
        return None  # measurements (floats) are all distinct by nature
    present = len(column) - column.null_count
    if present < IDENTIFIER_ROWS:
        return None
    distinct = len(pc.unique(column.drop_null() if column.null_count else column))
    if distinct < IDENTIFIER_SHARE * present:
        return None
    return f"{IDENTIFIER}: {distinct} distinct values in {present} rows"


def looks_like_identifier(column: ColumnReference) -> bool:
    """Whether a categorical input's reference (one made before identifiers were told
    apart) is an identifier's: (nearly) one category per row."""
    return (
        column.kind == "categorical"
        and column.source == "inputs"
        and column.rows >= IDENTIFIER_ROWS
        and len(column.categories) >= IDENTIFIER_SHARE * column.rows
    )


def as_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Category values as text, cast by Arrow alike on both sides of a comparison."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type):
        return column
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(f"values of type {column.type} cannot be read as categories") from exc


def to_body(reference: DriftReference) -> dict[str, Any]:
    """The JSON form of a reference (non-finite numbers as ``null``)."""
    body: dict[str, Any] = json_value(asdict(reference))
    del body["digest"]
    return {"format": FORMAT, **body}


def from_body(body: dict[str, Any], digest: str = "") -> DriftReference:
    """A reference from its JSON form (stored as ``digest``); ``DataError`` for another
    format."""
    if body.get("format") != FORMAT:
        raise DataError(f"a drift reference has format {body.get('format')!r}, not {FORMAT}")
    columns = tuple(
        ColumnReference(
            **{
                **column,
                "edges": _floats(column["edges"]),
                "counts": tuple(column["counts"]),
                "ks_edges": _floats(column["ks_edges"]),
                "ks_counts": tuple(column["ks_counts"]),
                "categories": tuple(column["categories"]),
            }
        )
        for column in body["columns"]
    )
    return DriftReference(
        model=body["model"],
        version=int(body["version"]),
        rows=int(body["rows"]),
        source=body["source"],
        columns=columns,
        skipped=dict(body.get("skipped") or {}),
        sample=body.get("sample"),
        seed=int(body.get("seed", 0)),
        digest=digest,
    )


def _floats(values: list[Any]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)  # edges are quantiles of finite values


def _is_numeric(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
    )


def _is_categorical(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        return _is_categorical(data_type.value_type)
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
    )
