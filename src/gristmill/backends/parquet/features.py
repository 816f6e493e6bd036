"""``ParquetOfflineStore``: feature sets as Parquet on any fsspec filesystem, joined with DuckDB.

Layout: ``<root>/<name>/<feature_set_id>/part-00000.parquet``. A set is written into
``<root>/<name>/.tmp-<random>/``, renamed into place, and only then recorded in the
``FeatureSetCatalog``, which is the truth: a crash leaves at most an invisible directory.
Reads list the Parquet files of the set's directory, skipping names that start with '.'.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
import os
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.backends.parquet.filesystem import open_filesystem
from gristmill.backends.parquet.raw import _remove
from gristmill.core.schema import schema_fields
from gristmill.errors import ConfigError, DataError, NotFoundError
from gristmill.stores.features import FeatureSet, FeatureSetCatalog

logger = logging.getLogger(__name__)

PART = "part-00000.parquet"
_TMP_PREFIX = ".tmp-"

# Which feature row each left row sees: the newest at or before its time, of its entity.
# Only row numbers travel through DuckDB; the columns are taken with Arrow afterwards, so
# every type comes back exactly as it was stored.
_AS_OF = """SELECT r.row AS feature_row
    FROM spine AS l ASOF LEFT JOIN features AS r ON l.key = r.key AND l.at >= r.at
    ORDER BY l.row"""


class ParquetOfflineStore:
    """The offline feature store on Parquet files through fsspec (local disk, ``memory://``…).

    ``write`` is idempotent by ``feature_set_id``: a set the catalog knows is returned as
    recorded, without writing. ``as_of_join`` runs DuckDB's ASOF JOIN. The constructor does
    no I/O.
    """

    def __init__(self, root: str, catalog: FeatureSetCatalog) -> None:
        self.root = root
        self.catalog = catalog

    def __repr__(self) -> str:
        return f"ParquetOfflineStore({self.root!r})"

    def write(self, feature_set: FeatureSet, table: pa.Table) -> FeatureSet:
        """Write ``table`` as ``feature_set`` and record it; return the recorded manifest.

        An empty ``location`` means ``<root>/<name>/<feature_set_id>``. ``row_count`` is set
        from the table, and ``columns`` too when empty. A set already recorded is returned as
        it is (``table`` is not written).
        """
        _check_name(feature_set.name)
        existing = self.catalog.find_feature_set(feature_set.feature_set_id)
        if existing is not None:
            return existing
        fs, root, arrow = open_filesystem(self.root)
        location = feature_set.location or fs.unstrip_protocol(
            f"{root}/{feature_set.name}/{feature_set.feature_set_id}"
        )
        fs, final, arrow = open_filesystem(location)
        parent = final.rsplit("/", 1)[0]
        temporary = f"{parent}/{_TMP_PREFIX}{uuid.uuid4().hex}"
        fs.makedirs(temporary, exist_ok=True)
        try:
            pq.write_table(table, f"{temporary}/{PART}", filesystem=arrow)
            _publish(fs, temporary, final)
        except BaseException:
            _remove(fs, temporary)
            raise
        manifest = dataclasses.replace(
            feature_set,
            location=location,
            row_count=table.num_rows,
            columns=feature_set.columns or schema_fields(table.schema),
        )
        stored = self.catalog.add_feature_set(manifest)
        logger.info(
            "feature set %s written: %s rows of %s", stored.feature_set_id, table.num_rows,
            stored.name, extra={"feature_set_id": stored.feature_set_id},
        )  # fmt: skip
        return stored

    def read(self, feature_set_id: str, *, columns: builtins.list[str] | None = None) -> pa.Table:
        """The set's rows, optionally only ``columns``; ``NotFoundError`` for unknown ones."""
        feature_set = self.catalog.get_feature_set(feature_set_id)
        if columns is not None:
            names = [field["name"] for field in feature_set.columns]
            unknown = [name for name in columns if name not in names]
            if unknown:
                raise NotFoundError(
                    f"feature set {feature_set_id} has no column {unknown[0]!r}; "
                    f"its columns are {names}"
                )
        fs, path, arrow = open_filesystem(feature_set.location)
        try:
            files = sorted(
                entry
                for entry in fs.ls(path, detail=False)
                if entry.endswith(".parquet") and not entry.rsplit("/", 1)[-1].startswith(".")
            )
        except FileNotFoundError:
            files = []
        if not files:
            raise NotFoundError(
                f"the files of feature set {feature_set_id} are missing at "
                f"{feature_set.location}; was the offline store's root moved or cleaned?"
            )
        import pyarrow.dataset as ds  # imports pandas: only when a feature set is read

        return ds.dataset(files, format="parquet", filesystem=arrow).to_table(columns=columns)

    def as_of_join(
        self,
        left: pa.Table,
        feature_set_id: str,
        *,
        on: str,
        timestamp: str,
        columns: builtins.list[str] | None = None,
    ) -> pa.Table:
        """``left`` with the set's features as of each row's ``timestamp`` (DuckDB ASOF JOIN).

        ``on`` and ``timestamp`` name ``left``'s entity and time columns; the set's own are
        its manifest's ``entity`` and ``timestamp`` (``on`` when it has no entity). A set
        without a timestamp column holds its values from ``created_at`` on. ``columns``
        defaults to every column but the entity and timestamp. The result keeps ``left``'s
        rows and order and appends the feature columns with their stored types.
        """
        feature_set = self.catalog.get_feature_set(feature_set_id)
        entity = feature_set.entity or on
        stamp = feature_set.timestamp
        names = columns or [
            field["name"] for field in feature_set.columns if field["name"] not in (entity, stamp)
        ]
        _check_join(left, on, timestamp, names)
        features = self.read(feature_set_id, columns=[entity, *([stamp] if stamp else []), *names])
        if stamp is None:
            created = pa.scalar(feature_set.created_at, pa.timestamp("us", "UTC"))
            at = pa.repeat(created, features.num_rows)
        else:
            at = _instants(features[stamp], stamp)
        spine = _keys(left[on], _instants(left[timestamp], timestamp))
        rows = self._asof(spine, _keys(features[entity], at), on)
        for name in names:
            left = left.append_column(features.schema.field(name), features[name].take(rows))
        return left

    def list(self, *, name: str | None = None, limit: int = 100) -> builtins.list[FeatureSet]:
        """Feature sets newest first (from the catalog)."""
        return self.catalog.list_feature_sets(name=name, limit=limit)

    @staticmethod
    def _asof(spine: pa.Table, features: pa.Table, on: str) -> pa.Array:
        import duckdb  # only joins need it: a store that only reads and writes starts without

        if spine["key"].type != features["key"].type:
            raise DataError(
                f"cannot join on {on!r}: the left side's keys are {spine['key'].type}, the "
                f"feature set's are {features['key'].type}; cast one side first",
                column=on,
            )
        with duckdb.connect() as connection:
            connection.register("spine", spine)
            connection.register("features", features)
            try:
                found = connection.sql(_AS_OF).to_arrow_table()
            except duckdb.Error as exc:
                raise DataError(f"the as-of join on {on!r} failed: {exc}") from exc
        return found["feature_row"].combine_chunks()


def _publish(fs: Any, temporary: str, final: str) -> None:
    """Rename ``temporary`` to ``final`` unless another writer of the same set got there
    first (its files are the same); then ``temporary`` is removed. Never nests one in the
    other: on a local disk the rename is one atomic ``os.rename``, which refuses an existing
    target."""
    if fs.exists(final):
        _remove(fs, temporary)
        return
    try:
        if "file" in fs.protocol:
            os.rename(temporary, final)
        else:
            fs.mv(temporary, final, recursive=True)
    except OSError:
        if not fs.exists(f"{final}/{PART}"):
            raise
        _remove(fs, temporary)


def _keys(key: pa.ChunkedArray, at: pa.ChunkedArray | pa.Array) -> pa.Table:
    """``(row, key, at)``, with string-like keys as strings and integers as int64."""
    kind = key.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        key = pc.cast(key, pa.string())
    elif pa.types.is_integer(kind):
        key = pc.cast(key, pa.int64())
    rows = pa.array(range(len(key)), pa.int64())
    return pa.table({"row": rows, "key": key, "at": at})


def _instants(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """A time column as UTC microseconds (a naive timestamp is taken as UTC)."""
    kind = column.type
    if not (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        raise DataError(
            f"column {name!r} has type {kind}; an as-of join needs a timestamp or date type",
            column=name,
        )
    return pc.cast(column, pa.timestamp("us", tz="UTC"))


def _check_join(left: pa.Table, on: str, timestamp: str, names: builtins.list[str]) -> None:
    for needed in (on, timestamp):
        if needed not in left.column_names:
            raise DataError(
                f"the left table has no column {needed!r}; its columns are {left.column_names}",
                column=needed,
            )
    clashes = [name for name in names if name in left.column_names]
    if clashes:
        raise DataError(
            f"the left table has a column {clashes[0]!r} the feature set would add; "
            "rename it, or pass columns= without it",
            column=clashes[0],
        )


def _check_name(name: str) -> None:
    # The name becomes a directory under the root: no separators, nothing hidden.
    if name and not name.startswith(".") and not {"/", "\\"} & set(name):
        return
    raise ConfigError(
        f"feature set name {name!r} must be non-empty, without '/', '\\' or a leading '.'"
    )
