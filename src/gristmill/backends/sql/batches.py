"""``BatchCatalog`` on SQL: raw batch manifests, unique on (source, content_digest)."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import raw_batches as batches
from gristmill.errors import ConflictError
from gristmill.stores.raw import RawBatch, missing_batch

_NEWEST_FIRST = (batches.c.created_at.desc(), batches.c.batch_id.desc())


class SqlBatchCatalog:
    """Raw batch manifests, newest first by ``created_at`` (then id)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_batch(self, batch: RawBatch) -> RawBatch:
        """Record ``batch``, or return the batch already recorded with its content.

        Race-safe: when writers add the same content at once, the database's unique
        constraint lets one row in and all of them get that row back.
        """
        with self._db.write() as connection:
            if self._db.insert_new(connection, batches, to_values(batch)):
                return batch
            # READ COMMITTED (PostgreSQL) reads the winner's row in this new statement.
            existing = self._first(connection, _same_content(batch.source, batch.content_digest))
        if existing is None:
            raise ConflictError(
                f"a raw batch with id {batch.batch_id!r} exists already with other content; "
                "add the batch under a new id"
            )
        return existing

    def get_batch(self, batch_id: str) -> RawBatch:
        with self._db.read() as connection:
            batch = self._first(connection, batches.c.batch_id == batch_id)
        if batch is None:
            raise missing_batch(batch_id)
        return batch

    def find_batch_by_digest(self, source: str, content_digest: str) -> RawBatch | None:
        with self._db.read() as connection:
            return self._first(connection, _same_content(source, content_digest))

    def latest_batch(self, source: str) -> RawBatch | None:
        with self._db.read() as connection:
            return self._first(connection, batches.c.source == source)

    def list_batches(self, *, source: str | None = None, limit: int = 100) -> list[RawBatch]:
        query = sa.select(batches).order_by(*_NEWEST_FIRST).limit(limit)
        if source is not None:
            query = query.where(batches.c.source == source)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(RawBatch, row) for row in rows]

    @staticmethod
    def _first(connection: sa.Connection, condition: sa.ColumnElement[bool]) -> RawBatch | None:
        query = sa.select(batches).where(condition).order_by(*_NEWEST_FIRST).limit(1)
        row = connection.execute(query).first()
        return None if row is None else to_object(RawBatch, row)


def _same_content(source: str, content_digest: str) -> sa.ColumnElement[bool]:
    return sa.and_(batches.c.source == source, batches.c.content_digest == content_digest)
