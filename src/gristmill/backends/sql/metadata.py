"""``SqlMetadataStore``: the metadata store on SQLite or PostgreSQL, one role port per attribute."""

from __future__ import annotations

from types import TracebackType

from gristmill.backends.sql.audit import SqlAuditLog
from gristmill.backends.sql.batches import SqlBatchCatalog
from gristmill.backends.sql.candidates import SqlCandidateStore
from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.dead_letters import SqlDeadLetterStore
from gristmill.backends.sql.drift import SqlDriftStore
from gristmill.backends.sql.executions import SqlExecutionStore
from gristmill.backends.sql.feature_sets import SqlFeatureSetCatalog
from gristmill.backends.sql.feedback import SqlFeedbackStore
from gristmill.backends.sql.lineage import SqlLineageStore
from gristmill.backends.sql.migrations import at_head, upgrade_to_head
from gristmill.backends.sql.registry import SqlModelRegistry
from gristmill.backends.sql.reports import SqlReportStore
from gristmill.backends.sql.runs import SqlRunStore
from gristmill.backends.sql.schedules import SqlScheduleStore
from gristmill.backends.sql.score_jobs import SqlScoreJobStore
from gristmill.backends.sql.serving_stats import SqlServingStatsStore
from gristmill.backends.sql.specs import SqlSpecStore
from gristmill.backends.sql.splits import SqlSplitStore


class SqlMetadataStore:
    """Runs, executions, lineage, audit, raw batches, reports, feature sets, splits, model
    candidates, the model registry, pipeline specs, dead letters, score jobs, serving stats,
    schedules, feedback (with live quality) and drift windows in one database.

    ``url`` is ``sqlite:///path/to/meta.db`` (the folder is created; several processes may
    share the file) or ``postgresql+psycopg://user:pass@host/db`` (plain ``postgresql://``
    means psycopg too). ``schema`` (PostgreSQL only; ignored for SQLite) keeps every table,
    and the migration version table, in that schema, created if missing.

    The constructor only stores its arguments; ``open`` connects and applies migrations
    (safe when several processes open at once), ``close`` releases connections. Both are
    idempotent, and the store is a context manager doing the two.
    """

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._db = SqlDatabase(url, schema=schema, role="metadata")
        self.runs = SqlRunStore(self._db)
        self.executions = SqlExecutionStore(self._db)
        self.lineage = SqlLineageStore(self._db)
        self.audit = SqlAuditLog(self._db)
        self.batches = SqlBatchCatalog(self._db)
        self.reports = SqlReportStore(self._db)
        self.feature_sets = SqlFeatureSetCatalog(self._db)
        self.splits = SqlSplitStore(self._db)
        self.candidates = SqlCandidateStore(self._db)
        self.registry = SqlModelRegistry(self._db)
        self.specs = SqlSpecStore(self._db)
        self.dead_letters = SqlDeadLetterStore(self._db)
        self.score_jobs = SqlScoreJobStore(self._db)
        self.serving_stats = SqlServingStatsStore(self._db)
        self.schedules = SqlScheduleStore(self._db)
        self.feedback = SqlFeedbackStore(self._db)
        self.drift = SqlDriftStore(self._db)

    def __repr__(self) -> str:
        schema = "" if self.schema is None else f", schema={self.schema!r}"
        return f"SqlMetadataStore({self._db.masked_url!r}{schema})"

    def open(self) -> None:
        if self._db.is_open:
            return
        self._db.open()
        schema = None if self._db.dialect == "sqlite" else self.schema
        try:
            with self._db.read() as connection:  # at head (most opens): no lock, no Alembic
                if at_head(connection, schema):
                    return
            with self._db.write() as connection:
                upgrade_to_head(connection, schema)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqlMetadataStore:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
