"""``ServingStatsStore`` on SQL: one row per (model, version, minute, replica, policy
revision), summed when read.

Rows are keyed by ``(model, version, window_start, replica, revision)`` in that order, so reading a
version's minutes from a time on is one range of the primary key. A record replaces the
replica's row (an upsert): the replica writes running totals, so writing again is harmless.
The sums are made in Python, over at most a row per replica and minute, so that both
databases add histogram buckets (a JSON list) the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_values
from gristmill.backends.sql.tables import serving_stats
from gristmill.stores.serving_stats import ServingStats, ServingWindow, summed, window_start

_stats = serving_stats


class SqlServingStatsStore:
    """Serving figures per version, replica and minute (see the module docstring)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def record(self, windows: Sequence[ServingWindow]) -> None:
        if not windows:
            return
        now = datetime.now(UTC)
        rows = []
        for window in windows:
            if window_start(window.window_start) != window.window_start:
                raise ValueError(
                    f"window_start {window.window_start.isoformat()} of {window.model}/"
                    f"{window.version} is not a whole minute; use stores.serving_stats."
                    "window_start(at)"
                )
            values = to_values(window)
            values["latency_buckets"] = list(window.latency_buckets)
            values["updated_at"] = window.updated_at or now
            rows.append(values)
        with self._db.write() as connection:
            for values in rows:
                self._db.upsert(connection, _stats, values)

    def stats(
        self, model: str, version: int, *, since: datetime, min_revision: int = 0
    ) -> ServingStats:
        windows = self.list_windows(model, version, since=since)
        counted = [w for w in windows if w.revision >= min_revision]
        return summed(model, version, since, counted, min_revision)

    def list_windows(
        self, model: str, version: int | None = None, *, since: datetime
    ) -> list[ServingWindow]:
        query = sa.select(_stats).where(
            _stats.c.model == model, _stats.c.window_start >= window_start(since)
        )
        if version is not None:
            query = query.where(_stats.c.version == version)
        query = query.order_by(
            _stats.c.window_start, _stats.c.version, _stats.c.replica, _stats.c.revision
        )
        with self._db.read() as connection:
            return [_window_of(row) for row in connection.execute(query).all()]

    def prune(self, before: datetime, *, dry_run: bool = False) -> int:
        older = _stats.c.window_start < window_start(before)
        if dry_run:
            with self._db.read() as connection:
                counted = sa.select(sa.func.count()).select_from(_stats).where(older)
                return int(connection.execute(counted).scalar_one())
        with self._db.write() as connection:
            return int(connection.execute(sa.delete(_stats).where(older)).rowcount)


def _window_of(row: sa.Row[Any]) -> ServingWindow:
    values = dict(row._mapping)
    values["latency_buckets"] = tuple(int(c) for c in values["latency_buckets"])
    return ServingWindow(**values)
