"""``CandidateStore`` on SQL: model candidates, one row per ``candidate_id``, replaced on save."""

from __future__ import annotations

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import candidates
from gristmill.stores.models import Candidate, missing_candidate

_NEWEST_FIRST = (candidates.c.started_at.desc(), candidates.c.candidate_id.desc())


class SqlCandidateStore:
    """Model candidates, newest first by ``started_at`` (then id).

    ``save_candidate`` inserts or replaces every field: a retry or an evaluation records the
    candidate again under its (derived) id.
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def save_candidate(self, candidate: Candidate) -> None:
        with self._db.write() as connection:
            self._db.upsert(connection, candidates, to_values(candidate))

    def get_candidate(self, candidate_id: str) -> Candidate:
        candidate = self.find_candidate(candidate_id)
        if candidate is None:
            raise missing_candidate(candidate_id)
        return candidate

    def find_candidate(self, candidate_id: str) -> Candidate | None:
        query = sa.select(candidates).where(candidates.c.candidate_id == candidate_id)
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(Candidate, row)

    def list_candidates(
        self,
        *,
        run_id: str | None = None,
        feature_set_id: str | None = None,
        limit: int = 100,
    ) -> list[Candidate]:
        query = sa.select(candidates).order_by(*_NEWEST_FIRST).limit(limit)
        if run_id is not None:
            query = query.where(candidates.c.run_id == run_id)
        if feature_set_id is not None:
            query = query.where(candidates.c.feature_set_id == feature_set_id)
        with self._db.read() as connection:
            rows = connection.execute(query).all()
        return [to_object(Candidate, row) for row in rows]
