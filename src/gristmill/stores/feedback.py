"""Feedback store port: actual outcomes, the logged predictions they join, live quality windows.

Three kinds of records, kept in the metadata store's database:

* an **outcome** (``Outcome``): one actual value as a ``feedback.received`` event carried
  it, keyed by the event's id and its place in the event — so recording the same event
  again records nothing;
* a **logged prediction** (``LoggedPrediction``): one row of the prediction log (one row of
  one request answered by one version; a shadow version's answer too), keyed by request
  id, row, model and version, filed under the **window** of its time;
* a **quality window** (``QualityWindow``): per version and window (``window_seconds``
  long, aligned to the epoch), how many predictions were logged, the label-free estimate's
  sums over them, and the live quality measured on those that have an actual outcome.

**The join.** A pair (outcome, prediction) is joined exactly once: in the transaction
that records the *later* of the two (``add_outcomes`` or ``add_predictions``). An outcome
named by request id joins every prediction of that request id and row (the answering
version's and its shadows'; of ``model`` only when it names one). An entity outcome joins
the predictions of the request that scored that entity of ``model`` last at or before its
time, once: when it has joined, predictions logged later do not take it. An outcome that
joins nothing yet is *waiting* (its prediction is not logged yet — the log is written
every second — or never will be: an unknown id).

**Duplicates: the last wins.** A prediction joined by several outcomes counts each extra
one as a duplicate and takes as its actual value the one received last (by the time the
feedback was received, then the event id, then the place in the event): a correction sent
later replaces a label, whatever order the events are handled in.

**Late labels.** A label received after its prediction's window ended is *late*; it still
counts, in the window of its prediction: the window's ``revision`` moves on, and the window
is measured again (``labelled`` / ``record_quality``: only if no newer change came in
between, so a slow writer never overwrites newer figures).

Writes are race-safe across processes: joins are serialized (SQLite's write lock, a
transaction-scoped advisory lock on PostgreSQL), so an outcome and its prediction recorded
at the same moment by two workers still meet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


def window_of(at: datetime, seconds: int) -> datetime:
    """The start of the ``seconds``-long window (aligned to the epoch, UTC) that holds ``at``."""
    stamp = int(at.timestamp() // seconds) * seconds
    return datetime.fromtimestamp(stamp, UTC)


@dataclass(frozen=True)
class Outcome:
    """One actual outcome: ``feedback_id`` is the ``feedback.received`` event's id and
    ``position`` its place in that event; ``received_at`` when it was received (the event's
    time). It names its prediction by ``request_id`` and ``row``, or by ``entity`` and
    ``entity_at`` (with ``model``)."""

    feedback_id: str
    position: int
    actual: Any
    received_at: datetime
    request_id: str | None = None
    row: int = 0
    model: str | None = None
    entity: str | None = None
    entity_at: datetime | None = None


@dataclass(frozen=True)
class LoggedPrediction:
    """One logged row of a request answered by ``model``/``version`` at ``at``, filed in the
    window starting ``window_start``. ``probabilities`` are in the order of the version's
    classes (``add_predictions``' ``classes``); ``entity`` is the entity key an entity
    request scored (``None`` for raw rows)."""

    model: str
    version: int
    request_id: str
    row: int
    at: datetime
    window_start: datetime
    window_seconds: int
    prediction: Any
    probabilities: list[float] | None = None
    entity: str | None = None
    shadow: bool = False


@dataclass(frozen=True)
class Labelled:
    """A logged prediction with its actual value (the last received), how many outcomes
    joined it, and whether the winning one came after its window ended."""

    prediction: Any
    probabilities: list[float] | None
    actual: Any
    outcomes: int
    late: bool


@dataclass(frozen=True)
class WindowKey:
    model: str
    version: int
    window_seconds: int
    window_start: datetime

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(seconds=self.window_seconds)


@dataclass(frozen=True)
class QualityWindow:
    """One version's live quality in one window.

    ``predictions`` logged rows; ``classes`` the version's classes (a classifier's);
    ``estimate`` the label-free estimate's sums over every logged row (``tallies``, added as
    files are logged; ``evaluation.cbpe`` turns them into figures). ``revision`` moves on
    with every change to the window's joined outcomes; ``measured_revision`` is the one the
    figures were measured at (behind: to be measured again). Figures: ``labelled`` rows with
    an actual value, ``duplicates`` extra outcomes, ``late`` labels received after the
    window ended, ``unusable`` actual values the version cannot be measured on (a class it
    does not know, text for a regressor), ``metrics`` (accuracy, f1, roc_auc; rmse, mae,
    mape) and ``estimate_error`` (the estimate on the labelled rows minus the real figure).
    """

    model: str
    version: int
    window_seconds: int
    window_start: datetime
    predictions: int = 0
    classes: list[str] = field(default_factory=list)
    estimate: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    measured_revision: int = 0
    labelled: int = 0
    duplicates: int = 0
    late: int = 0
    unusable: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    estimate_error: dict[str, Any] = field(default_factory=dict)
    measured_at: datetime | None = None

    @property
    def key(self) -> WindowKey:
        return WindowKey(self.model, self.version, self.window_seconds, self.window_start)


@dataclass(frozen=True)
class Joined:
    """What a record call did: ``recorded`` new records (0: all seen before), ``joined``
    (outcome, prediction) pairs made, ``waiting`` recorded outcomes that joined nothing,
    and the windows whose joined outcomes changed."""

    recorded: int = 0
    joined: int = 0
    waiting: int = 0
    windows: tuple[WindowKey, ...] = ()


@dataclass(frozen=True)
class FeedbackCounts:
    """Outcomes ``received``; of them ``joined`` (to at least one prediction) and
    ``waiting`` (joined to none: an unknown id, or a prediction not logged yet)."""

    received: int = 0
    joined: int = 0
    waiting: int = 0


class FeedbackStore(Protocol):
    """Outcomes, logged predictions, their join and the quality windows (module docstring)."""

    def add_outcomes(self, outcomes: Sequence[Outcome]) -> Joined:
        """Record the outcomes not recorded yet (by feedback id and position) and join each
        to the logged predictions it names; one transaction."""
        ...

    def add_predictions(
        self,
        source: str,
        predictions: Sequence[LoggedPrediction],
        *,
        classes: Sequence[str] = (),
        estimates: Mapping[WindowKey, dict[str, Any]] | None = None,
    ) -> Joined | None:
        """Record a written part of the prediction log (``source``: its file) once: its
        rows (a row whose key is recorded already is left alone), each window's count and
        ``estimates`` sums added, and the outcomes waiting for its rows joined; one
        transaction. ``None`` if ``source`` was recorded before (nothing is done)."""
        ...

    def labelled(self, key: WindowKey) -> tuple[QualityWindow, list[Labelled]]:
        """A window (zeros if none was recorded) and its predictions that have an actual
        value, read at once."""
        ...

    def record_quality(self, window: QualityWindow) -> bool:
        """Store the window's measured figures (``labelled`` … ``estimate_error``) as of
        ``window.revision``; ``False``, writing nothing, if its revision moved on since
        (newer outcomes joined it: measure again)."""
        ...

    def unmeasured(self, *, limit: int = 100) -> list[WindowKey]:
        """Windows whose figures are behind their joined outcomes, oldest first."""
        ...

    def list_windows(
        self,
        model: str,
        version: int | None = None,
        *,
        since: datetime | None = None,
        window_seconds: int | None = None,
    ) -> list[QualityWindow]:
        """The recorded windows of ``model`` (of one version, of one length, starting at or
        after ``since``), by start then version."""
        ...

    def counts(self, model: str | None = None) -> FeedbackCounts:
        """How many outcomes were received, joined and are waiting (of ``model``: those that
        name it or joined its predictions)."""
        ...
