"""``FeatureSetCatalog`` on SQL: feature set manifests, one row per ``feature_set_id``."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import feature_sets
from gristmill.errors import BackendError
from gristmill.stores.features import FeatureSet, missing_feature_set

_NEWEST_FIRST = (feature_sets.c.created_at.desc(), feature_sets.c.feature_set_id.desc())


class SqlFeatureSetCatalog:
    """Feature set manifests, newest first by ``created_at`` (then id).

    The id is derived from the pipeline definition and its inputs, so adding an id that is
    recorded already means the same features were computed again: the recorded manifest
    wins and is returned (race-safe, as for raw batches).
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_feature_set(self, feature_set: FeatureSet) -> FeatureSet:
        with self._db.write() as connection:
            if self._db.insert_new(connection, feature_sets, to_values(feature_set)):
                return feature_set
            existing = self._first(
                connection, feature_sets.c.feature_set_id == feature_set.feature_set_id
            )
        if existing is None:  # only if the row was deleted between the two statements
            raise BackendError(
                f"feature set {feature_set.feature_set_id!r} vanished while being added; retry"
            )
        return existing

    def get_feature_set(self, feature_set_id: str) -> FeatureSet:
        feature_set = self.find_feature_set(feature_set_id)
        if feature_set is None:
            raise missing_feature_set(feature_set_id)
        return feature_set

    def find_feature_set(self, feature_set_id: str) -> FeatureSet | None:
        with self._db.read() as connection:
            return self._first(connection, feature_sets.c.feature_set_id == feature_set_id)

    def latest_feature_set(self, name: str) -> FeatureSet | None:
        with self._db.read() as connection:
            return self._first(connection, feature_sets.c.name == name)

    def list_feature_sets(self, *, name: str | None = None, limit: int = 100) -> list[FeatureSet]:
        query = sa.select(feature_sets).order_by(*_NEWEST_FIRST).limit(limit)
        if name is not None:
            query = query.where(feature_sets.c.name == name)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(FeatureSet, row) for row in rows]

    @staticmethod
    def _first(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> FeatureSet | None:
        query = sa.select(feature_sets).where(condition).order_by(*_NEWEST_FIRST).limit(1)
        row = connection.execute(query).first()
        return None if row is None else to_object(FeatureSet, row)
