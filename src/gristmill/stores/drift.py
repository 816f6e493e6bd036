"""Drift store port: each version's drift windows, the log files they took, their alerts.

The monitoring stage counts the prediction log of a model version in windows of a fixed
length (``window_seconds``; a window starts at a whole multiple of it since 1970-01-01 UTC).
A ``DriftWindow`` holds what its files added up to — per column, counts on the bins of the
version's drift reference (``counts``, opaque JSON here: ``monitoring.window_counts`` reads
it) — and the drift last judged from them (``results``), with the columns that raised an
alert (``alerted``).

**Exactly once.** A log file is counted by ``take_file``: in one transaction, the file is
recorded as taken (``TakenFile``, once per version and path) and every window it added to
is written, *only if* no other writer changed that window since it was read (its
``revision``: optimistic concurrency), and the alerts it raised are inserted. A file taken
before is never added again (``seen``); a window changed meanwhile refuses the whole
transaction (``conflict``: read again, add again). So a worker killed at any point, and the
redelivery of its event to another, count each file once (ADR 21).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

TakeOutcome = Literal["taken", "seen", "conflict"]


def window_of(at: datetime, seconds: int) -> datetime:
    """The start of the ``seconds``-long window that holds ``at`` (UTC)."""
    epoch = int(at.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class DriftWindow:
    """One version's window: ``rows`` logged rows counted from ``files`` files.

    ``counts`` is the per-column tally (JSON); ``results`` the drift judged from it after its
    last file, per column (JSON: statistics, method, threshold, ``drifted``); ``alerted`` the
    columns that raised an alert in this window (each once). ``revision`` counts the writes
    (1 for the first): ``take_file`` stores a window only over the revision before it.
    """

    model: str
    version: int
    window_seconds: int
    window_start: datetime
    rows: int = 0
    files: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    alerted: list[str] = field(default_factory=list)
    revision: int = 0
    updated_at: datetime | None = None

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(seconds=self.window_seconds)


@dataclass(frozen=True)
class TakenFile:
    """A prediction log file counted into a version's windows: its ``rows`` (those of the
    reference's columns), when, by which ``execution_id``, and which windows it added to."""

    model: str
    version: int
    file: str
    rows: int
    taken_at: datetime
    windows: list[str] = field(default_factory=list)
    execution_id: str | None = None


@dataclass(frozen=True)
class DriftAlert:
    """Column ``column`` of ``model``/``version`` crossed its threshold in a window: one per
    (version, window, column), ``alert_id`` derived from them. ``file`` is the log file whose
    rows made it cross; ``notified_at`` when the webhook accepted it (``None``: not yet, or
    no webhook)."""

    alert_id: str
    model: str
    version: int
    window_seconds: int
    window_start: datetime
    column: str
    method: str
    statistic: float
    threshold: float
    rows: int
    raised_at: datetime
    file: str
    p_value: float | None = None
    notified_at: datetime | None = None


class DriftStore(Protocol):
    """Drift windows, taken files and alerts (see the module docstring).

    Times are UTC; ``window_start`` must be a whole multiple of ``window_seconds`` since the
    epoch (``window_of``), else ``ValueError``. Lists are oldest window first.
    """

    def find_window(
        self, model: str, version: int, window_seconds: int, window_start: datetime
    ) -> DriftWindow | None:
        """The stored window, or ``None`` (revision 0: nothing counted yet)."""
        ...

    def find_file(self, model: str, version: int, file: str) -> TakenFile | None:
        """The record of a taken file, or ``None`` if it was not counted."""
        ...

    def take_file(
        self, file: TakenFile, windows: Sequence[DriftWindow], alerts: Sequence[DriftAlert]
    ) -> TakeOutcome:
        """Count ``file`` into ``windows``, atomically: ``taken`` if it recorded the file,
        stored every window and inserted the alerts (one already recorded for the same
        version, window and column is left as it is); ``seen`` if the file was taken before
        (nothing written); ``conflict`` if a window's stored revision is no longer
        ``window.revision - 1`` (nothing written: read the windows again and retry)."""
        ...

    def list_windows(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime,
        window_seconds: int | None = None,
    ) -> list[DriftWindow]:
        """The windows of ``model`` (of one version, one window length) that end after
        ``since``, oldest first (then by version)."""
        ...

    def list_alerts(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime | None = None,
        file: str | None = None,
    ) -> list[DriftAlert]:
        """Alerts of ``model`` (of one version; raised at or after ``since``; raised by one
        ``file``), oldest window first, then by version and column."""
        ...

    def mark_notified(self, alert_ids: Sequence[str], at: datetime) -> None:
        """Record that the webhook accepted these alerts (a mark already set is kept)."""
        ...
