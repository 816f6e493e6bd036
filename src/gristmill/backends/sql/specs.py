"""``SpecStore`` on SQL: one row per spec digest, one per (source, spec) to find it by source."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import pipeline_spec_sources, pipeline_specs
from gristmill.errors import NotFoundError
from gristmill.stores.specs import StoredSpec, missing_spec


class SqlSpecStore:
    """Specs by digest; the first record of a digest is kept."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_spec(self, spec: StoredSpec) -> StoredSpec:
        names = [
            {"source": source, "digest": spec.digest, "created_at": spec.created_at}
            for source in spec.sources
        ]
        with self._db.write() as connection:
            if self._db.insert_new(connection, pipeline_specs, to_values(spec)):
                if names:
                    self._db.insert_missing(connection, pipeline_spec_sources, names)
                return spec
            recorded = self._select(connection, spec.digest)
        if recorded is None:  # pragma: no cover - insert_new said the row exists
            raise NotFoundError(f"spec {spec.digest} vanished while it was being recorded")
        return recorded

    def get_spec(self, digest: str) -> StoredSpec:
        spec = self.find_spec(digest)
        if spec is None:
            raise missing_spec(digest)
        return spec

    def find_spec(self, digest: str) -> StoredSpec | None:
        with self._db.read() as connection:
            return self._select(connection, digest)

    def specs_naming(self, source: str, *, limit: int = 20) -> list[StoredSpec]:
        query = (
            sa.select(pipeline_specs)
            .join(pipeline_spec_sources, pipeline_spec_sources.c.digest == pipeline_specs.c.digest)
            .where(pipeline_spec_sources.c.source == source)
            .order_by(pipeline_specs.c.created_at.desc(), pipeline_specs.c.digest.desc())
            .limit(limit)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(StoredSpec, row) for row in rows]

    @staticmethod
    def _select(connection: sa.Connection, digest: str) -> StoredSpec | None:
        query = sa.select(pipeline_specs).where(pipeline_specs.c.digest == digest)
        row = connection.execute(query).first()
        return None if row is None else to_object(StoredSpec, row)
