"""``DriftStore`` on SQL: drift windows, the log files they took and their alerts.

``take_file`` is one write transaction: the file's row is inserted first (a clash with a
taken file ends it as ``seen``), then each window is inserted (revision 1) or updated with
``WHERE revision = :before`` (a row inserted or updated by another writer meanwhile ends it
as ``conflict``), then the alerts are inserted unless recorded. Ending early raises inside
the transaction, so nothing of it is committed. On SQLite the transaction holds the write
lock from its start; on PostgreSQL a concurrent insert of the same key waits for the other
transaction, and an update of a row another one updated re-reads it and finds its revision
moved: either way, of two writers of one window, one wins and the other retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import drift_alerts, drift_files, drift_windows
from gristmill.stores.drift import (
    DriftAlert,
    DriftWindow,
    TakenFile,
    TakeOutcome,
    window_of,
)

_windows, _files, _alerts = drift_windows, drift_files, drift_alerts
_WINDOW_FIELDS = frozenset(f.name for f in fields(DriftWindow))


class _RefusedError(Exception):
    """Ends ``take_file``'s transaction without committing it."""

    def __init__(self, outcome: TakeOutcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class SqlDriftStore:
    """Drift windows, taken files and alerts (see the module docstring)."""

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def find_window(
        self, model: str, version: int, window_seconds: int, window_start: datetime
    ) -> DriftWindow | None:
        _check_start(window_start, window_seconds)
        query = sa.select(_windows).where(
            _windows.c.model == model,
            _windows.c.version == version,
            _windows.c.window_seconds == window_seconds,
            _windows.c.window_start == window_start,
        )
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else _window_of(row)

    def find_file(self, model: str, version: int, file: str) -> TakenFile | None:
        query = sa.select(_files).where(
            _files.c.model == model, _files.c.version == version, _files.c.file == file
        )
        with self._db.read() as connection:
            row = connection.execute(query).first()
        return None if row is None else to_object(TakenFile, row)

    def take_file(
        self, file: TakenFile, windows: Sequence[DriftWindow], alerts: Sequence[DriftAlert]
    ) -> TakeOutcome:
        for window in windows:
            _check_start(window.window_start, window.window_seconds)
            if window.revision < 1:
                raise ValueError(
                    f"window {window.window_start.isoformat()} of {window.model}/"
                    f"{window.version} has revision {window.revision}; a stored window has 1 "
                    "or more (the revision it was read at, plus one)"
                )
        now = datetime.now(UTC)
        try:
            with self._db.write() as connection:
                if not self._db.insert_new(connection, _files, to_values(file)):
                    raise _RefusedError("seen")
                for window in windows:
                    self._store_window(connection, window, now)
                if alerts:
                    self._db.insert_missing(connection, _alerts, [to_values(a) for a in alerts])
        except _RefusedError as refused:
            return refused.outcome
        return "taken"

    def _store_window(self, connection: sa.Connection, window: DriftWindow, now: datetime) -> None:
        values = to_values(window)
        values["window_end"] = window.window_end
        values["updated_at"] = window.updated_at or now
        if window.revision == 1:
            if not self._db.insert_new(connection, _windows, values):
                raise _RefusedError("conflict")
            return
        changed = connection.execute(
            sa.update(_windows)
            .where(
                _windows.c.model == window.model,
                _windows.c.version == window.version,
                _windows.c.window_seconds == window.window_seconds,
                _windows.c.window_start == window.window_start,
                _windows.c.revision == window.revision - 1,
            )
            .values({k: v for k, v in values.items() if not _windows.c[k].primary_key})
        )
        if changed.rowcount != 1:
            raise _RefusedError("conflict")

    def list_windows(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime,
        window_seconds: int | None = None,
    ) -> list[DriftWindow]:
        query = sa.select(_windows).where(_windows.c.model == model, _windows.c.window_end > since)
        if version is not None:
            query = query.where(_windows.c.version == version)
        if window_seconds is not None:
            query = query.where(_windows.c.window_seconds == window_seconds)
        query = query.order_by(
            _windows.c.window_start, _windows.c.version, _windows.c.window_seconds
        )
        with self._db.read() as connection:
            return [_window_of(row) for row in connection.execute(query).all()]

    def list_alerts(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime | None = None,
        file: str | None = None,
    ) -> list[DriftAlert]:
        query = sa.select(_alerts).where(_alerts.c.model == model)
        if version is not None:
            query = query.where(_alerts.c.version == version)
        if since is not None:
            query = query.where(_alerts.c.raised_at >= since)
        if file is not None:
            query = query.where(_alerts.c.file == file)
        query = query.order_by(_alerts.c.window_start, _alerts.c.version, _alerts.c.column)
        with self._db.read() as connection:
            return [to_object(DriftAlert, row) for row in connection.execute(query).all()]

    def mark_notified(self, alert_ids: Sequence[str], at: datetime) -> None:
        if not alert_ids:
            return
        with self._db.write() as connection:
            connection.execute(
                sa.update(_alerts)
                .where(_alerts.c.alert_id.in_(list(alert_ids)), _alerts.c.notified_at.is_(None))
                .values(notified_at=at)
            )


def _check_start(start: datetime, seconds: int) -> None:
    if seconds < 1 or window_of(start, seconds) != start:
        raise ValueError(
            f"window_start {start.isoformat()} is not the start of a {seconds}-second window; "
            "use stores.drift.window_of(at, seconds)"
        )


def _window_of(row: sa.Row[Any]) -> DriftWindow:
    values = {k: v for k, v in row._mapping.items() if k in _WINDOW_FIELDS}
    return DriftWindow(**values)
