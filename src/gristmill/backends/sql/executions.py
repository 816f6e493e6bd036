"""``ExecutionStore`` on SQL: one row per stage execution, upserted by id."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import stage_executions as executions
from gristmill.stores.metadata import StageExecution


class SqlExecutionStore:
    """Stage executions; ``record_execution`` replaces the row with the same id."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def record_execution(self, execution: StageExecution) -> None:
        with self._db.write() as connection:
            self._db.upsert(connection, executions, to_values(execution))

    def find_execution(self, stage: str, idempotency_key: str) -> StageExecution | None:
        query = (
            sa.select(executions)
            .where(executions.c.stage == stage, executions.c.idempotency_key == idempotency_key)
            .order_by(executions.c.started_at.desc(), executions.c.execution_id.desc())
            .limit(1)
        )
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(StageExecution, row)

    def list_executions(self, run_id: str) -> list[StageExecution]:
        query = (
            sa.select(executions)
            .where(executions.c.run_id == run_id)
            .order_by(executions.c.started_at, executions.c.execution_id)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(StageExecution, row) for row in rows]
