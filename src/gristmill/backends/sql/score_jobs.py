"""``ScoreJobStore`` on SQL: one row per batch score job."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import score_jobs
from gristmill.errors import NotFoundError
from gristmill.stores.scores import ScoreJob


class SqlScoreJobStore:
    """Score jobs, newest first by ``created_at`` (then id)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_job(self, job: ScoreJob) -> ScoreJob:
        with self._db.write() as connection:
            self._db.insert_missing(connection, score_jobs, [to_values(job)])
            recorded = self._select(connection, job.job_id)
        return recorded or job

    def save_job(self, job: ScoreJob) -> None:
        with self._db.write() as connection:
            self._db.upsert(connection, score_jobs, to_values(job))

    def get_job(self, job_id: str) -> ScoreJob:
        job = self.find_job(job_id)
        if job is None:
            raise NotFoundError(f"no score job with id {job_id!r}; list them with `gristmill jobs`")
        return job

    def find_job(self, job_id: str) -> ScoreJob | None:
        with self._db.read() as connection:
            return self._select(connection, job_id)

    def list_jobs(self, *, limit: int = 50) -> list[ScoreJob]:
        query = sa.select(score_jobs).order_by(
            score_jobs.c.created_at.desc(), score_jobs.c.job_id.desc()
        )
        with self._db.read() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [to_object(ScoreJob, row) for row in rows]

    @staticmethod
    def _select(connection: sa.Connection, job_id: str) -> ScoreJob | None:
        row = connection.execute(sa.select(score_jobs).where(score_jobs.c.job_id == job_id)).first()
        return None if row is None else to_object(ScoreJob, row)
