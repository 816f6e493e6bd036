"""``SplitStore`` on SQL: split manifests, one row per ``split_id``."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import splits
from gristmill.errors import BackendError
from gristmill.stores.models import Split, missing_split


class SqlSplitStore:
    """Split manifests.

    The id is derived from the feature set, the strategy, its parameters and the seed, so
    adding an id that is recorded already means the same split was made again: the recorded
    manifest wins and is returned (race-safe, as for feature sets).
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_split(self, split: Split) -> Split:
        with self._db.write() as connection:
            if self._db.insert_new(connection, splits, to_values(split)):
                return split
            existing = self._select(connection, split.split_id)
        if existing is None:  # only if the row was deleted between the two statements
            raise BackendError(f"split {split.split_id!r} vanished while being added; retry")
        return existing

    def get_split(self, split_id: str) -> Split:
        split = self.find_split(split_id)
        if split is None:
            raise missing_split(split_id)
        return split

    def find_split(self, split_id: str) -> Split | None:
        with self._db.read() as connection:
            return self._select(connection, split_id)

    @staticmethod
    def _select(connection: sa.Connection, split_id: str) -> Split | None:
        row = connection.execute(sa.select(splits).where(splits.c.split_id == split_id)).first()
        return None if row is None else to_object(Split, row)
