"""``RunStore`` on SQL: one row per pipeline run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import runs
from gristmill.errors import ConflictError
from gristmill.stores.metadata import Run, RunStatus, missing_run


class SqlRunStore:
    """Runs, newest first by ``started_at`` (then id)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def start_run(self, run: Run) -> None:
        with self._db.write() as connection:
            inserted = self._db.insert_new(connection, runs, to_values(run))
        if not inserted:
            raise ConflictError(
                f"a run with id {run.run_id!r} exists already; start a run with a new id"
            )

    def finish_run(self, run_id: str, status: RunStatus, summary: dict[str, Any]) -> Run:
        update = (
            sa.update(runs)
            .where(runs.c.run_id == run_id)
            .values(status=status, summary=summary, finished_at=datetime.now(UTC))
        )
        with self._db.write() as connection:
            connection.execute(update)
            run = self._select(connection, run_id)
        if run is None:
            raise missing_run(run_id)
        return run

    def get_run(self, run_id: str) -> Run:
        run = self.find_run(run_id)
        if run is None:
            raise missing_run(run_id)
        return run

    def find_run(self, run_id: str) -> Run | None:
        with self._db.read() as connection:
            return self._select(connection, run_id)

    def list_runs(self, *, limit: int = 50) -> list[Run]:
        query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        with self._db.read() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [to_object(Run, row) for row in rows]

    @staticmethod
    def _select(connection: sa.Connection, run_id: str) -> Run | None:
        row = connection.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        return None if row is None else to_object(Run, row)
