"""Materialization: the newest feature vector per entity of a table, written to the online store.

The newest row per entity is found with Arrow kernels (a stable sort, then the last row of
each entity's run); Python touches only the rows that become vectors, one batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import ConfigError, DataError
from gristmill.stores.features import EntityVector, OnlineFeatureStore

DEFAULT_BATCH_SIZE = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_vectors(
    table: pa.Table,
    *,
    entity: str,
    timestamp: str | None,
    features: list[str],
    created_at: datetime | None = None,
    feature_set_id: str = "",
    pipeline: str = "",
) -> list[EntityVector]:
    """One vector per entity: its row with the newest ``timestamp``, stamped with its origin.

    Ties (and every row when ``timestamp`` is None) go to the row that comes last in the
    table. Without a timestamp column each vector is stamped ``created_at`` (the feature
    set's creation time), which is then required. Rows without an entity or a timestamp
    are skipped. Entity keys become strings.
    """
    latest = latest_rows(table, entity=entity, timestamp=timestamp, features=features)
    origin = (feature_set_id, pipeline)
    size = latest.num_rows or 1
    batches = _vectors(latest, entity, timestamp, features, created_at, origin, size)
    return next(batches, [])


@dataclass(frozen=True)
class Materialized:
    """What ``materialize_counted`` did: ``written`` vectors were newer than what the store
    held; of the ``entities`` in the table, ``fresh`` were within the TTL (all without
    one); ``newest`` is the newest time a vector was stamped with (``None``: no entity)."""

    written: int
    entities: int
    fresh: int
    newest: datetime | None


def materialize(
    store: OnlineFeatureStore,
    view: str,
    table: pa.Table,
    *,
    entity: str,
    timestamp: str | None,
    features: list[str],
    ttl: float | None,
    feature_set_id: str,
    pipeline: str,
    created_at: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Write the newest vector per entity of ``table`` to ``view``, ``batch_size`` at a time.

    Each vector records ``feature_set_id`` and ``pipeline`` (the digest of the fitted
    pipeline that computed ``table``), and lands in that pipeline's part of the view.
    Returns how many vectors were newer than what the store held (so materializing the same
    table twice returns 0 the second time). See ``latest_vectors`` for which row wins.
    """
    return materialize_counted(
        store,
        view,
        table,
        entity=entity,
        timestamp=timestamp,
        features=features,
        ttl=ttl,
        feature_set_id=feature_set_id,
        pipeline=pipeline,
        created_at=created_at,
        batch_size=batch_size,
    ).written


def materialize_counted(
    store: OnlineFeatureStore,
    view: str,
    table: pa.Table,
    *,
    entity: str,
    timestamp: str | None,
    features: list[str],
    ttl: float | None,
    feature_set_id: str,
    pipeline: str,
    created_at: datetime | None = None,
    stamp: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Materialized:
    """``materialize``, saying how many entities were fresh enough to be written.

    With ``stamp``, every vector is stamped with it (the TTL then counts from it: the
    data's arrival) though the newest row per entity is still chosen by ``timestamp``.
    A vector already older than ``ttl`` is not written (it would read as missing at once).
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, not {batch_size}")
    latest = latest_rows(table, entity=entity, timestamp=timestamp, features=features)
    origin = (feature_set_id, pipeline)
    if stamp is not None:
        timestamp, created_at = None, stamp
    batches = _vectors(latest, entity, timestamp, features, created_at, origin, batch_size)
    oldest = None if ttl is None else datetime.now(UTC) - timedelta(seconds=ttl)
    written = fresh = 0
    newest: datetime | None = None
    for batch in batches:
        if batch:
            top = max(v.event_time for v in batch)
            newest = top if newest is None else max(newest, top)
        kept = batch if oldest is None else [v for v in batch if v.event_time >= oldest]
        fresh += len(kept)
        if kept:
            written += store.put(view, kept, ttl=ttl)
    return Materialized(written, latest.num_rows, fresh, newest)


def latest_rows(
    table: pa.Table, *, entity: str, timestamp: str | None, features: list[str]
) -> pa.Table:
    """The entity, timestamp and feature columns of the newest row per entity (Arrow only)."""
    columns = [entity, *([timestamp] if timestamp else []), *features]
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise DataError(
            f"the table has no column {missing[0]!r} to materialize; its columns are "
            f"{table.column_names}",
            column=missing[0],
        )
    if entity in features or (timestamp is not None and timestamp in features):
        raise ConfigError("the entity and timestamp columns cannot also be features")
    table = table.select(columns)
    valid = pc.is_valid(table[entity])
    if timestamp is not None:
        valid = pc.and_(valid, pc.is_valid(table[timestamp]))
    table = table.filter(valid)
    if table.num_rows == 0:
        return table
    # Sort by entity, then time; the sort is stable, so among equal times the row that came
    # last stays last. The newest row of an entity is the last of its run.
    keys = [(entity, "ascending"), *([(timestamp, "ascending")] if timestamp else [])]
    order = pc.sort_indices(table, sort_keys=keys)
    ordered = table[entity].take(order).combine_chunks()
    last = pa.concat_arrays([pc.not_equal(ordered[:-1], ordered[1:]), pa.array([True])])
    return table.take(pc.filter(order, last))


def _vectors(
    latest: pa.Table,
    entity: str,
    timestamp: str | None,
    features: list[str],
    created_at: datetime | None,
    origin: tuple[str, str],
    batch_size: int,
) -> Iterator[list[EntityVector]]:
    if timestamp is None:
        if created_at is None:
            raise ConfigError(
                "without a timestamp column, vectors need created_at (the feature set's "
                "created time)"
            )
        created: datetime = created_at
    for start in range(0, latest.num_rows, batch_size):
        rows = latest.slice(start, batch_size)
        entities = _strings(rows[entity])
        values = [rows[name].to_pylist() for name in features]
        if timestamp is None:
            times = [created] * rows.num_rows
        else:
            times = _times(rows[timestamp], timestamp)
        # Every list has one item per row of the slice (zip's strict check costs 40%).
        rows_values = zip(*values, strict=False) if values else [()] * rows.num_rows
        yield [
            EntityVector(key, dict(zip(features, row, strict=False)), moment, *origin)
            for key, moment, row in zip(entities, times, rows_values, strict=False)
        ]


def _strings(column: pa.ChunkedArray) -> list[str]:
    try:
        return pc.cast(column, pa.string()).to_pylist()  # type: ignore[no-any-return]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DataError(
            f"entity keys of type {column.type} cannot be used as online keys; "
            "use a string or integer column",
        ) from exc


def _times(column: pa.ChunkedArray, name: str) -> list[datetime]:
    kind = column.type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise DataError(
            f"timestamp column {name!r} has type {kind}; it needs a timestamp or date type",
            column=name,
        )
    # As UTC instants: a naive timestamp is taken as UTC, as everywhere in gristmill. Arrow
    # builds tz-aware datetimes slowly, so they are made from microseconds here (10x faster).
    micros = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64()).to_pylist()
    return [_EPOCH + timedelta(microseconds=us) for us in micros]
