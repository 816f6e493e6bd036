"""The report store port: validation reports (and later drift and evaluation reports).

A report is immutable JSON about one subject (a raw batch, a feature set, a model), kept in
the metadata store. ``get_report`` raises ``NotFoundError``; ``list_reports`` is newest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from gristmill.errors import NotFoundError

ReportStatus = Literal["passed", "warned", "failed"]
LEADERBOARD_KIND = "leaderboard"
"""The kind of an evaluation's leaderboard report (``lb_…``)."""


@dataclass(frozen=True)
class Report:
    """``kind`` (e.g. ``validation``), the ``subject`` id it is about, a ``status``, a body."""

    report_id: str
    kind: str
    subject: str
    status: ReportStatus
    created_at: datetime
    body: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None


class ReportReader(Protocol):
    def get_report(self, report_id: str) -> Report: ...

    def list_reports(
        self, *, subject: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Report]: ...


def missing_report(report_id: str) -> NotFoundError:
    """What ``get_report`` raises when no report has ``report_id``."""
    return NotFoundError(
        f"no report with id {report_id!r}; list reports with `gristmill ls reports`"
    )


class ReportStore(ReportReader, Protocol):
    def add_report(self, report: Report) -> None:
        """Record it; the same id again with the same content is a no-op.

        The content is ``kind``, ``subject``, ``status`` and ``body``: ``created_at`` and
        ``run_id`` say when and by whom it was first recorded, and the first record keeps
        them, so a retry of the work that made a report converges. A different content
        under an existing id is a ``ConflictError``.
        """
        ...
