"""``ExecutionStore`` on SQL: one row per stage execution, upserted by id, claimed under a lease."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import stage_executions as executions
from gristmill.stores.fencing import Fence
from gristmill.stores.metadata import StageExecution

_RUNNING = executions.c.status == "running"
_IDS_PER_QUERY = 500  # run ids per IN list: well under SQLite's limit of bound parameters


def _expired(before: datetime) -> sa.ColumnElement[bool]:
    """The lease ended before ``before`` (an execution without a lease holds none)."""
    lease = executions.c.lease_expires_at
    return sa.or_(
        lease < before,
        sa.and_(lease.is_(None), executions.c.started_at < before),
    )


def superseded_reason(ended: StageExecution, successor: StageExecution) -> str:
    """Why ``ended`` (``running``, its lease expired) is marked failed as ``successor`` claims
    its key: a retry of an attempt that failed and released the work (its error recorded),
    or a take-over from a holder that stopped renewing its lease while it ran."""
    by = f"execution {successor.execution_id}" + (
        f" ({successor.holder})" if successor.holder else ""
    )
    if ended.error:
        return f"retried as {by}"
    if ended.lease_expires_at is None:
        return f"taken over: it was recorded before leases and never finished; {by} took it over"
    holder = f"its holder {ended.holder}" if ended.holder else "its holder"
    return (
        f"taken over: {holder} stopped renewing its lease (it died or stalled), which expired "
        f"{ended.lease_expires_at:%Y-%m-%d %H:%M:%S} UTC while the work ran; "
        f"{by} took the work over"
    )


class SqlExecutionStore:
    """Stage executions; ``record_execution`` replaces the row with the same id."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def record_execution(self, execution: StageExecution) -> None:
        with self._db.write() as connection:
            self._db.upsert(connection, executions, to_values(execution))

    def claim_execution(
        self, execution: StageExecution, *, margin: timedelta = timedelta(0)
    ) -> StageExecution | None:
        now, stage, key = execution.started_at, execution.stage, execution.idempotency_key
        of_key = (executions.c.stage == stage, executions.c.idempotency_key == key)
        with self._db.write() as connection:
            self._lock_key(connection, stage, key)
            blocker = self._newest(connection, *of_key, executions.c.status == "succeeded")
            blocker = blocker or self._newest(
                connection, *of_key, _RUNNING, executions.c.lease_expires_at >= now - margin
            )
            if blocker is not None:
                return blocker
            expired = connection.execute(
                sa.select(executions).where(*of_key, _RUNNING, _expired(now - margin))
            ).all()
            for row in expired:
                ended = to_object(StageExecution, row)
                connection.execute(
                    sa.update(executions)
                    .where(executions.c.execution_id == ended.execution_id, _RUNNING)
                    .values(
                        status="failed",
                        finished_at=ended.finished_at or now,
                        error=self._with_reason(superseded_reason(ended, execution)),
                    )
                )
            self._db.upsert(connection, executions, to_values(execution))
        return None

    def renew_lease(self, execution_id: str, until: datetime) -> bool:
        with self._db.write() as connection:
            renewed = connection.execute(
                sa.update(executions)
                .where(executions.c.execution_id == execution_id, _RUNNING)
                .values(lease_expires_at=until)
            )
        return bool(renewed.rowcount)

    def finish_execution(self, execution: StageExecution) -> bool:
        values = to_values(execution)
        del values["execution_id"]
        with self._db.write() as connection:
            finished = connection.execute(
                sa.update(executions)
                .where(executions.c.execution_id == execution.execution_id, _RUNNING)
                .values(**values)
            )
        return bool(finished.rowcount)

    def mark_published(self, execution_id: str, at: datetime) -> None:
        with self._db.write() as connection:
            connection.execute(
                sa.update(executions)
                .where(
                    executions.c.execution_id == execution_id, executions.c.published_at.is_(None)
                )
                .values(published_at=at)
            )

    def list_unpublished(
        self, stage: str, finished_before: datetime, *, limit: int = 100
    ) -> list[StageExecution]:
        query = (
            sa.select(executions)
            .where(
                executions.c.stage == stage,
                executions.c.published_at.is_(None),
                ~_RUNNING,
                executions.c.finished_at < finished_before,
            )
            .order_by(executions.c.finished_at, executions.c.execution_id)
            .limit(limit)
        )
        with self._db.read() as connection:
            return [to_object(StageExecution, row) for row in connection.execute(query)]

    def fence(self, execution_id: str) -> Fence:
        return Fence(execution_id, self._db.fence_scope)

    def find_execution(self, stage: str, idempotency_key: str) -> StageExecution | None:
        with self._db.read() as connection:
            return self._newest(
                connection,
                executions.c.stage == stage,
                executions.c.idempotency_key == idempotency_key,
            )

    def list_executions(self, run_id: str) -> list[StageExecution]:
        query = (
            sa.select(executions)
            .where(executions.c.run_id == run_id)
            .order_by(executions.c.started_at, executions.c.execution_id)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(StageExecution, row) for row in rows]

    def list_executions_of_runs(self, run_ids: Sequence[str]) -> dict[str, list[StageExecution]]:
        found: dict[str, list[StageExecution]] = {run_id: [] for run_id in run_ids}
        wanted = list(found)
        with self._db.read() as connection:
            for start in range(0, len(wanted), _IDS_PER_QUERY):
                query = (
                    sa.select(executions)
                    .where(executions.c.run_id.in_(wanted[start : start + _IDS_PER_QUERY]))
                    .order_by(executions.c.started_at, executions.c.execution_id)
                )
                for row in connection.execute(query).all():
                    execution = to_object(StageExecution, row)
                    found[str(execution.run_id)].append(execution)
        return found

    def list_stale_executions(self, expired_before: datetime) -> list[StageExecution]:
        query = (
            sa.select(executions)
            .where(_RUNNING, _expired(expired_before))
            .order_by(executions.c.started_at, executions.c.execution_id)
        )
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(StageExecution, row) for row in rows]

    def abandon_execution(
        self, execution_id: str, *, reason: str, expired_before: datetime
    ) -> StageExecution | None:
        with self._db.write() as connection:
            where = (executions.c.execution_id == execution_id, _RUNNING, _expired(expired_before))
            stale = self._newest(connection, *where)
            if stale is None:
                return None
            connection.execute(
                sa.update(executions)
                .where(*where)
                .values(
                    status="failed",
                    finished_at=datetime.now(UTC),
                    error=self._with_reason(reason),
                )
            )
            return self._newest(connection, executions.c.execution_id == execution_id)

    # -- internals ---------------------------------------------------------------------------

    def _newest(
        self, connection: sa.Connection, *where: sa.ColumnElement[bool]
    ) -> StageExecution | None:
        query = (
            sa.select(executions)
            .where(*where)
            .order_by(executions.c.started_at.desc(), executions.c.execution_id.desc())
            .limit(1)
        )
        row = connection.execute(query).first()
        return None if row is None else to_object(StageExecution, row)

    def _lock_key(self, connection: sa.Connection, stage: str, key: str) -> None:
        """Serialize claims of one key: SQLite's write transaction already holds the whole
        database; PostgreSQL takes a transaction-scoped advisory lock on the key's hash."""
        if self._db.dialect == "postgresql":
            digest = hashlib.sha256(f"gristmill.execution:{stage}\0{key}".encode()).digest()
            lock = int.from_bytes(digest[:8], "big", signed=True)
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))

    @staticmethod
    def _with_reason(reason: str) -> sa.ColumnElement[str]:
        """``reason``, after the error the execution already had (a retried failure's)."""
        error = executions.c.error
        return sa.case((error.is_(None), reason), else_=error + "; " + reason)
