"""``ReportStore`` on SQL: one immutable row per report, its body as JSON."""

from __future__ import annotations

import json

import sqlalchemy as sa

from gristmill.backends.sql.database import SqlDatabase
from gristmill.backends.sql.rows import to_object, to_values
from gristmill.backends.sql.tables import reports
from gristmill.errors import ConflictError
from gristmill.stores.reports import Report, missing_report


class SqlReportStore:
    """Reports, newest first by ``created_at`` (then id).

    ``add_report`` is idempotent per ``report_id`` (a redelivered event may add its report
    again, at another time, from another run: the first record is kept); a report with a
    *different* content under an existing id is a ``ConflictError``. "The same" is judged
    after the JSON round trip, so a body holding tuples equals its stored lists.
    """

    def __init__(self, database: SqlDatabase) -> None:
        self._db = database

    def add_report(self, report: Report) -> None:
        with self._db.write() as connection:
            if self._db.insert_new(connection, reports, to_values(report)):
                return
            existing = self._select(connection, report.report_id)
        if existing is None or _content(existing) != _content(_as_stored(report)):
            raise ConflictError(
                f"report {report.report_id!r} exists already with other content; "
                "a report is immutable, add the new one under a new id"
            )

    def get_report(self, report_id: str) -> Report:
        with self._db.read() as connection:
            report = self._select(connection, report_id)
        if report is None:
            raise missing_report(report_id)
        return report

    def list_reports(
        self, *, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Report]:
        query = sa.select(reports)
        if subject is not None:
            query = query.where(reports.c.subject == subject)
        if kind is not None:
            query = query.where(reports.c.kind == kind)
        query = query.order_by(reports.c.created_at.desc(), reports.c.report_id.desc())
        with self._db.read() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [to_object(Report, row) for row in rows]

    @staticmethod
    def _select(connection: sa.Connection, report_id: str) -> Report | None:
        query = sa.select(reports).where(reports.c.report_id == report_id)
        row = connection.execute(query).first()
        return None if row is None else to_object(Report, row)


def _as_stored(report: Report) -> Report:
    """``report`` as it reads back: its body through JSON (tuples become lists)."""
    return Report(**{**to_values(report), "body": json.loads(json.dumps(report.body))})


def _content(report: Report) -> tuple[object, ...]:
    """What makes two reports under one id the same: not when or by which run."""
    return (report.kind, report.subject, report.status, report.body)
