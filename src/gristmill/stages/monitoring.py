"""The monitoring stage: ``predictions.logged`` → drift windows; ``monitor.alert`` on a crossing.

Each event names one prediction log file of one model version. The stage counts the file's
rows into the version's drift windows (``monitor.window`` long) against the version's drift
reference (``monitoring.reference``: built now for a version that has none), judges each
window's drift per column (``monitoring.verdicts``, by ``monitor.drift``) and stores it
(``stores.drift``). A column that crosses its threshold for the first time in a window
raises one alert: announced as ``monitor.alert`` (key: the model), logged, and POSTed to
``monitor.webhook`` when there is one (tried ``webhook_attempts`` times, each bounded by
``webhook_timeout`` seconds, all alerts of a file in one POST; a webhook that stays down is
logged and never fails the stage).

**Exactly once (ADR 21).** The file is recorded as taken in the same transaction as the
window counts it adds (``DriftStore.take_file``, fenced like every write of a stage), so a
worker killed at any point and the redelivery of its event count each file once. A window
written by another worker since it was read refuses the transaction; the stage reads it
again and adds again. A file found taken already (its worker died after the commit) is not
counted again: the stage announces the alerts that file raised, and POSTs those the webhook
has not accepted yet. The webhook may therefore hear an alert twice; its ``alert_id`` tells.

The monitor section is the worker's spec's (``--spec``) when it names the event's model,
else the spec of the run that trained the version, else the defaults
(``config.monitoring.DEFAULT_MONITOR``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config.monitoring import DEFAULT_MONITOR, MonitorSpec
from gristmill.config.spec import PipelineSpec
from gristmill.core.events import MONITOR_ALERT, PREDICTIONS_LOGGED, Event
from gristmill.core.ids import digest_json
from gristmill.core.webhooks import notify
from gristmill.errors import (
    ConfigError,
    ConflictError,
    DataError,
    GristmillError,
    MissingExtraError,
    NotFoundError,
)
from gristmill.features.stores import FeatureStores
from gristmill.monitoring.alerts import describe, payload, raised
from gristmill.monitoring.profile import DriftReference
from gristmill.monitoring.reference import ensure_reference
from gristmill.monitoring.verdicts import drifted, judged
from gristmill.monitoring.window_counts import Counts, added, count_log
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stages.demotions import demoted
from gristmill.stages.specs import spec_of_run
from gristmill.stores.drift import DriftAlert, DriftWindow, TakenFile
from gristmill.stores.fencing import current_fence
from gristmill.stores.models import ModelVersion
from gristmill.training.gate import model_name

log = logging.getLogger(__name__)

TAKE_ATTEMPTS = 50
"""Times a file is added again after a window changed under it before the event is retried."""
REFERENCE_RETRY_SECONDS = 600.0
"""A version whose reference could not be built is tried again after this long."""
LOG_COLUMNS = ("at", "inputs", "prediction")
UNBUILDABLE = (DataError, ConfigError, NotFoundError, ConflictError, MissingExtraError)
"""Why a reference may not be built that waiting will not heal (an outage is retried)."""


@dataclass(frozen=True)
class Logged:
    """What a ``predictions.logged`` event names: a log file of ``model``/``version``."""

    model: str
    version: int
    path: str

    @classmethod
    def of(cls, event: Event) -> Logged:
        body = event.payload
        model, version, path = body.get("model"), body.get("version"), body.get("path")
        if not isinstance(model, str) or not isinstance(path, str) or not path:
            raise DataError(
                f"{event.type} event {event.id} must name the model and the file's path; "
                f"it has model={model!r}, path={path!r}"
            )
        if isinstance(version, bool) or not isinstance(version, int):
            raise DataError(f"{event.type} event {event.id} has version {version!r}, not a number")
        return cls(model, version, path)


class MonitoringStage:
    """Counts prediction log files into drift windows (see the module docstring)."""

    name = "monitoring"
    consumes = PREDICTIONS_LOGGED

    def __init__(
        self,
        stores: FeatureStores,
        spec: PipelineSpec | None = None,
        *,
        webhook_attempts: int = 3,
        webhook_timeout: float = 5.0,
    ) -> None:
        self.stores = stores
        self.spec = spec
        self.webhook_attempts = webhook_attempts
        self.webhook_timeout = webhook_timeout
        self._lock = threading.Lock()
        self._references: dict[tuple[str, int], DriftReference] = {}
        self._unbuilt: dict[tuple[str, int], tuple[float, str]] = {}
        self._monitors: dict[tuple[str, int], MonitorSpec] = {}

    def idempotency_key(self, event: Event) -> str:
        body = event.payload
        return digest_json({"file": [body.get("model"), body.get("version"), body.get("path")]})

    def handle(self, event: Event) -> StageOutcome:
        logged = Logged.of(event)
        drift = self.stores.metadata.drift
        if drift.find_file(logged.model, logged.version, logged.path) is not None:
            return self._taken_before(logged)
        version = self.stores.metadata.registry.get_version(logged.model, logged.version)
        monitor = self.monitor_of(version)
        reference = self.reference_of(version)
        if reference is None:
            why = self._unbuilt.get((version.model, version.version), (0.0, "?"))[1]
            return StageOutcome(
                summary=f"not counted: {version.ref} has no drift reference ({why})"
            )
        table = read_log(logged.path)
        counted = count_log(table, reference, monitor.window_seconds, digest=reference.digest)
        alerts = self._take(logged, table.num_rows, counted, reference, monitor)
        if alerts is None:
            return self._taken_before(logged)
        self._tell(alerts, monitor)
        return StageOutcome(
            [Announcement(MONITOR_ALERT, payload(a), key=a.model) for a in alerts]
            + self._demoted(alerts),
            summary=f"{table.num_rows} row(s) of {version.ref} counted in {len(counted)} "
            f"window(s) of {monitor.window}; {len(alerts)} alert(s)",
        )

    def _demoted(self, alerts: list[DriftAlert]) -> list[Announcement]:
        """A drift alert of a live version whose policy's rollback rule has ``on_drift``:
        the version demoted (once; see ``stages.demotions``), and what to announce."""
        if not alerts:
            return []
        first = alerts[0]
        columns = ", ".join(sorted({a.column for a in alerts}))
        reason = (
            f"drift in {first.model}/{first.version}'s window from "
            f"{first.window_start:%Y-%m-%d %H:%M} UTC: {columns} ({first.method} "
            f"{first.statistic:.3g} vs {first.threshold:g} on {first.column}, {first.rows} rows)"
        )
        figures = {"columns": sorted({a.column for a in alerts}), "alert": payload(first)}
        return demoted(
            self.stores.metadata,
            first.model,
            first.version,
            reason,
            figures,
            trigger="drift",
            judged_by=lambda rule: rule.on_drift,
        )

    def monitor_of(self, version: ModelVersion) -> MonitorSpec:
        """The ``monitor:`` section ``version`` is watched by (see the module docstring)."""
        key = (version.model, version.version)
        with self._lock:
            known = self._monitors.get(key)
        if known is not None:
            return known
        spec = (
            self.spec if self.spec is not None and model_name(self.spec) == version.model else None
        )
        spec = spec or self._spec_of(version)
        monitor = spec.monitor if spec is not None and spec.monitor is not None else DEFAULT_MONITOR
        with self._lock:
            self._monitors[key] = monitor
        return monitor

    def reference_of(self, version: ModelVersion) -> DriftReference | None:
        """``version``'s drift reference, built if it has none; ``None`` (logged once per
        ``REFERENCE_RETRY_SECONDS``) when it cannot be built."""
        key = (version.model, version.version)
        with self._lock:
            known, failed = self._references.get(key), self._unbuilt.get(key)
        if known is not None:
            return known
        if failed is not None and time.monotonic() - failed[0] < REFERENCE_RETRY_SECONDS:
            return None
        try:
            reference = ensure_reference(self.stores, version)
        except UNBUILDABLE as exc:
            log.warning("%s is not monitored for drift: %s", version.ref, exc)
            with self._lock:
                self._unbuilt[key] = (time.monotonic(), str(exc))
            return None
        with self._lock:
            self._references[key] = reference
        return reference

    def _spec_of(self, version: ModelVersion) -> PipelineSpec | None:
        metadata = self.stores.metadata
        candidate = metadata.candidates.find_candidate(version.candidate_id)
        run = metadata.runs.find_run(candidate.run_id) if candidate and candidate.run_id else None
        if run is None:
            return None
        try:
            return spec_of_run(metadata, run)
        except GristmillError as exc:
            log.warning("%s: the spec of run %s is not usable (%s)", version.ref, run.run_id, exc)
            return None

    def _take(
        self,
        logged: Logged,
        rows: int,
        counted: dict[datetime, Counts],
        reference: DriftReference,
        monitor: MonitorSpec,
    ) -> list[DriftAlert] | None:
        """Add the file's counts to its windows, once; its new alerts, or ``None`` when the
        file was taken meanwhile. ``ConflictError`` (retried) when its windows kept changing."""
        drift = self.stores.metadata.drift
        fence = current_fence()
        for _ in range(TAKE_ATTEMPTS):
            now = datetime.now(UTC)
            windows: list[DriftWindow] = []
            alerts: list[DriftAlert] = []
            for start, counts in counted.items():
                stored = drift.find_window(
                    logged.model, logged.version, monitor.window_seconds, start
                )
                window, new = _added(logged, start, stored, counts, reference, monitor, now)
                windows.append(window)
                alerts += raised(window, new, file=logged.path, at=now)
            taken = TakenFile(
                model=logged.model,
                version=logged.version,
                file=logged.path,
                rows=rows,
                taken_at=now,
                windows=[start.isoformat() for start in counted],
                execution_id=fence.execution_id if fence else None,
            )
            outcome = drift.take_file(taken, windows, alerts)
            if outcome == "taken":
                for alert in alerts:
                    log.warning("%s", describe(alert), extra={"stage": self.name})
                return alerts
            if outcome == "seen":
                return None
        raise ConflictError(
            f"the drift windows of {logged.model}/{logged.version} changed {TAKE_ATTEMPTS} "
            f"times while {logged.path} was added; it is tried again"
        )

    def _taken_before(self, logged: Logged) -> StageOutcome:
        """A file taken by an earlier attempt: its alerts again (the same ids), and the
        webhook told those it has not accepted."""
        alerts = self.stores.metadata.drift.list_alerts(
            logged.model, logged.version, file=logged.path
        )
        unsent = [a for a in alerts if a.notified_at is None]
        if unsent:
            version = self.stores.metadata.registry.get_version(logged.model, logged.version)
            self._tell(unsent, self.monitor_of(version))
        return StageOutcome(
            [Announcement(MONITOR_ALERT, payload(a), key=a.model) for a in alerts]
            + self._demoted(alerts),  # a demotion the earlier attempt did not get to
            summary=f"{logged.path} was counted before; {len(alerts)} alert(s) it raised",
        )

    def _tell(self, alerts: list[DriftAlert], monitor: MonitorSpec) -> None:
        """POST ``alerts`` to the webhook in one body; mark them once it accepted."""
        if not alerts or monitor.webhook is None:
            return
        body: dict[str, Any] = {"kind": "drift", "alerts": [payload(a) for a in alerts]}
        if notify(
            monitor.webhook, body, attempts=self.webhook_attempts, timeout=self.webhook_timeout
        ):
            self.stores.metadata.drift.mark_notified(
                [a.alert_id for a in alerts], datetime.now(UTC)
            )


def _added(
    logged: Logged,
    start: datetime,
    stored: DriftWindow | None,
    counts: Counts,
    reference: DriftReference,
    monitor: MonitorSpec,
    now: datetime,
) -> tuple[DriftWindow, list[str]]:
    """The window ``stored`` (or a new one) with ``counts`` added and judged again, and the
    columns that drifted in it for the first time."""
    total = added(stored.counts if stored else None, counts)
    results = judged(total, reference, monitor.drift)
    before = stored.alerted if stored else []
    new = [column for column in drifted(results) if column not in before]
    window = DriftWindow(
        model=logged.model,
        version=logged.version,
        window_seconds=monitor.window_seconds,
        window_start=start,
        rows=int(total["rows"]),
        files=(stored.files if stored else 0) + 1,
        counts=total,
        results=results,
        alerted=[*before, *new],
        revision=(stored.revision if stored else 0) + 1,
        updated_at=now,
    )
    return window, new


def read_log(path: str) -> pa.Table:
    """The columns drift needs of one prediction log file; ``DataError`` naming it when it
    is gone or not a log file."""
    import pyarrow.parquet as pq

    file = Path(path)
    if not file.is_file():
        raise DataError(
            f"prediction log file {path} does not exist (deleted, or written on another "
            "machine: the monitoring workers must see the server's serve.log_url folder)"
        )
    try:
        names = set(pq.read_schema(file).names)
        return pq.read_table(file, columns=[c for c in LOG_COLUMNS if c in names])
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"prediction log file {path} cannot be read: {exc}") from exc
