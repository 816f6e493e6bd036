"""``FeedbackStore`` on SQL: outcomes, logged predictions and quality windows in four tables.

Every join runs in one write transaction, serialized with every other join: on SQLite by
the database's write lock (``BEGIN IMMEDIATE``), on PostgreSQL by a transaction-scoped
advisory lock taken first (``feedback_join.serialize``). Serializing is what makes "a pair
is joined by the transaction that records its later side" hold: an outcome and its
prediction recorded at the same moment are never each recorded without seeing the other.
The transactions are short (indexed look-ups, a file's rows inserted in one statement), so
waiting for one is brief. Figures are stored only as of the revision they were measured
at (a conditional update), so no lock is held while a window is measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gristmill.backends.sql import feedback_join as join
from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.feedback_join import (
    fresh_target,
    in_window,
    outcome_id,
    outcome_values,
    prediction_values,
    window_is,
    window_key_of,
)
from gristmill.backends.sql.tables import (
    feedback_outcomes,
    logged_predictions,
    logged_sources,
    quality_windows,
)
from gristmill.core.tallies import added
from gristmill.stores.feedback import (
    FeedbackCounts,
    Joined,
    Labelled,
    LoggedPrediction,
    Outcome,
    QualityWindow,
    WindowKey,
)

_outcomes = feedback_outcomes
_logged = logged_predictions
_windows = quality_windows
_FIGURES = ("labelled", "duplicates", "late", "unusable", "metrics", "estimate_error")


class SqlFeedbackStore:
    """Outcomes, logged predictions, their join and quality windows (module docstring)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    # -- recording ---------------------------------------------------------------------------

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> Joined:
        if not outcomes:
            return Joined()
        with self._db.write() as connection:
            join.serialize(connection, self._db.schema)
            fresh = join.unrecorded(connection, outcomes)
            pairs = join.targets_of(connection, fresh)
            rows = []
            for outcome in fresh:
                targets = pairs.get(outcome_id(outcome), [])
                rows.append(outcome_values(outcome, targets[0].key[2] if targets else None))
            if rows:
                connection.execute(sa.insert(_outcomes), rows)
            joining = [(o, t) for o in fresh for t in pairs.get(outcome_id(o), [])]
            windows = join.apply(connection, joining)
        joined = sum(len(targets) for targets in pairs.values())
        waiting = sum(1 for o in fresh if not pairs.get(outcome_id(o)))
        return Joined(len(fresh), joined, waiting, windows)

    def add_predictions(
        self,
        source: str,
        predictions: Sequence[LoggedPrediction],
        *,
        classes: Sequence[str] = (),
        estimates: Mapping[WindowKey, dict[str, Any]] | None = None,
    ) -> Joined | None:
        now = datetime.now(UTC)
        first = predictions[0] if predictions else None
        with self._db.write() as connection:
            join.serialize(connection, self._db.schema)
            mark = {
                "source": source,
                "model": first.model if first else "",
                "version": first.version if first else 0,
                "rows": len(predictions),
                "recorded_at": now,
            }
            if not self._db.insert_new(connection, logged_sources, mark):
                return None
            fresh = join.unlogged(connection, predictions)
            if fresh:
                connection.execute(sa.insert(_logged), [prediction_values(p) for p in fresh])
            counts: dict[WindowKey, int] = defaultdict(int)
            for prediction in fresh:
                counts[window_key_of(prediction)] += 1
            self._add_to_windows(connection, counts, list(classes), estimates or {})
            targets = {p.key: p for p in (fresh_target(p) for p in fresh)}
            pairs = join.outcomes_for(connection, fresh, targets)
            windows = join.apply(connection, pairs)
            joining = {outcome_id(o): o for o, _ in pairs}
            model = first.model if first else None
            for outcome_key in joining:
                connection.execute(
                    sa.update(_outcomes)
                    .where(
                        _outcomes.c.feedback_id == outcome_key[0],
                        _outcomes.c.position == outcome_key[1],
                        _outcomes.c.status == "waiting",
                    )
                    .values(status="joined", joined_model=model)
                )
        return Joined(len(fresh), len(pairs), 0, windows)

    # -- measuring ---------------------------------------------------------------------------

    def labelled(self, key: WindowKey) -> tuple[QualityWindow, list[Labelled]]:
        query = sa.select(
            _logged.c.prediction,
            _logged.c.probabilities,
            _logged.c.actual,
            _logged.c.outcomes,
            _logged.c.late,
        ).where(*in_window(key), _logged.c.actual.is_not(None))
        with self._db.read() as connection:
            window = self._window(connection, key)
            rows = connection.execute(query).all()
        labelled = [
            Labelled(r.prediction, r.probabilities, r.actual, r.outcomes, r.late) for r in rows
        ]
        return window, labelled

    def record_quality(self, window: QualityWindow) -> bool:
        values = {name: getattr(window, name) for name in _FIGURES}
        values.update(
            measured_revision=window.revision,
            measured_at=window.measured_at or datetime.now(UTC),
        )
        statement = (
            sa.update(_windows)
            .where(*window_is(window.key), _windows.c.revision == window.revision)
            .values(**values)
        )
        with self._db.write() as connection:
            return connection.execute(statement).rowcount == 1

    def unmeasured(self, *, limit: int = 100) -> list[WindowKey]:
        query = (
            sa.select(
                _windows.c.model,
                _windows.c.version,
                _windows.c.window_seconds,
                _windows.c.window_start,
            )
            .where(_windows.c.measured_revision < _windows.c.revision)
            .order_by(_windows.c.window_start, _windows.c.model, _windows.c.version)
            .limit(limit)
        )
        with self._db.read() as connection:
            return [WindowKey(*row) for row in connection.execute(query).all()]

    # -- reading -----------------------------------------------------------------------------

    def list_windows(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime | None = None,
        window_seconds: int | None = None,
    ) -> list[QualityWindow]:
        query = sa.select(_windows).where(_windows.c.model == model)
        if version is not None:
            query = query.where(_windows.c.version == version)
        if since is not None:
            query = query.where(_windows.c.window_start >= since)
        if window_seconds is not None:
            query = query.where(_windows.c.window_seconds == window_seconds)
        query = query.order_by(_windows.c.window_start, _windows.c.version)
        with self._db.read() as connection:
            return [QualityWindow(**row._mapping) for row in connection.execute(query).all()]

    def counts(self, model: str | None = None) -> FeedbackCounts:
        query = sa.select(_outcomes.c.status, sa.func.count()).group_by(_outcomes.c.status)
        if model is not None:
            query = query.where(
                sa.or_(_outcomes.c.model == model, _outcomes.c.joined_model == model)
            )
        with self._db.read() as connection:
            by_status = {status: int(n) for status, n in connection.execute(query).all()}
        joined, waiting = by_status.get("joined", 0), by_status.get("waiting", 0)
        return FeedbackCounts(joined + waiting, joined, waiting)

    def _add_to_windows(
        self,
        connection: sa.Connection,
        counts: Mapping[WindowKey, int],
        classes: list[str],
        estimates: Mapping[WindowKey, dict[str, Any]],
    ) -> None:
        for key in sorted({*counts, *estimates}, key=lambda k: k.window_start):
            recorded = self._find_window(connection, key)
            window = recorded or QualityWindow(
                key.model, key.version, key.window_seconds, key.window_start
            )
            window = replace(
                window,
                predictions=window.predictions + counts.get(key, 0),
                classes=window.classes or classes,
                estimate=added(window.estimate, estimates.get(key)) or {},
            )
            values = {
                "predictions": window.predictions,
                "classes": window.classes,
                "estimate": window.estimate,
            }
            if recorded is not None:
                connection.execute(sa.update(_windows).where(*window_is(key)).values(**values))
            else:
                connection.execute(sa.insert(_windows).values(**_window_values(window)))

    def _find_window(self, connection: sa.Connection, key: WindowKey) -> QualityWindow | None:
        row = connection.execute(sa.select(_windows).where(*window_is(key))).first()
        return None if row is None else QualityWindow(**row._mapping)

    def _window(self, connection: sa.Connection, key: WindowKey) -> QualityWindow:
        found = self._find_window(connection, key)
        if found is None:
            return QualityWindow(key.model, key.version, key.window_seconds, key.window_start)
        return found


def _window_values(window: QualityWindow) -> dict[str, Any]:
    return {column.name: getattr(window, column.name) for column in _windows.columns}
