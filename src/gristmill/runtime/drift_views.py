"""How a model's drift stands: its drift windows and alerts, as every reader sees them.

``gristmill drift`` (and ``gristmill monitor``, the JSON API and the dashboard as they come)
read drift through ``drift_windows``: the windows the monitoring stage stored, newest
last, with each window's columns in the order of the version's reference and the alerts
raised in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gristmill.monitoring.reference_report import skipped_columns
from gristmill.runtime.serving_views import check_model
from gristmill.stores.drift import DriftAlert, DriftWindow
from gristmill.stores.metadata import MetadataStore


@dataclass(frozen=True)
class ColumnDrift:
    """One column in one window: its figures as judged after the window's last file
    (``statistic`` is the one ``method`` decides by; ``None`` before any present value)."""

    column: str
    kind: str
    rows: int
    missing: int
    method: str
    statistic: float | None
    threshold: float
    judged: bool
    drifted: bool
    ignored: bool = False
    """The spec says so (``monitor.drift.columns.<name>.ignore``)."""
    identifier: bool = False
    """An identifier (a reference made before they were skipped holds it)."""
    psi: float | None = None
    ks_pvalue: float | None = None
    chi2_pvalue: float | None = None
    p_value: float | None = None

    @classmethod
    def of(cls, column: str, result: dict[str, Any]) -> ColumnDrift:
        names = cls.__dataclass_fields__
        return cls(column=column, **{k: v for k, v in result.items() if k in names})


@dataclass(frozen=True)
class WindowDrift:
    """A version's drift window: ``rows`` logged rows from ``files`` files, its columns,
    the alerts it raised, and the version's inputs not monitored at all (``skipped``: why,
    from its reference — identifiers, free text, times)."""

    model: str
    version: int
    window_start: datetime
    window_end: datetime
    rows: int
    files: int
    columns: list[ColumnDrift]
    alerts: list[DriftAlert] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]


def drift_windows(
    metadata: MetadataStore,
    model: str,
    version: int | None = None,
    *,
    since: datetime,
    window_seconds: int | None = None,
) -> list[WindowDrift]:
    """The drift windows of ``model`` (one version, one window length) that end after
    ``since``, oldest first (then by version), each with the alerts raised in it.
    ``NotFoundError`` (with what to run) for a model not registered or a version it does
    not have."""
    check_model(metadata.registry, model)
    if version is not None:
        metadata.registry.get_version(model, version)  # NotFoundError naming both
    windows = metadata.drift.list_windows(
        model, version, since=since, window_seconds=window_seconds
    )
    alerts: dict[tuple[int, int, datetime], list[DriftAlert]] = {}
    if windows:
        earliest = min(w.window_start for w in windows)
        for alert in metadata.drift.list_alerts(model, version, since=earliest):
            key = (alert.version, alert.window_seconds, alert.window_start)
            alerts.setdefault(key, []).append(alert)
    skipped = {v: skipped_columns(metadata, model, v) for v in {w.version for w in windows}}
    return [
        _view(w, alerts.get((w.version, w.window_seconds, w.window_start), []), skipped[w.version])
        for w in windows
    ]


def _view(window: DriftWindow, alerts: list[DriftAlert], skipped: dict[str, str]) -> WindowDrift:
    return WindowDrift(
        model=window.model,
        version=window.version,
        window_start=window.window_start,
        window_end=window.window_end,
        rows=window.rows,
        files=window.files,
        columns=[ColumnDrift.of(name, result) for name, result in window.results.items()],
        alerts=alerts,
        skipped=skipped,
    )
