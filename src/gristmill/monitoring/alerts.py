"""Drift alerts: one per (version, window, column) that crossed its threshold, as the bus,
the log and a webhook receive it.

``alert_id`` is derived from the version, window and column, so every process names the same
crossing alike, and a webhook receiver can drop a repeated POST by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gristmill.core.ids import digest_json
from gristmill.stores.drift import DriftAlert, DriftWindow


def alert_id(model: str, version: int, seconds: int, start: datetime, column: str) -> str:
    """The id of the alert of ``column`` in one window of ``model``/``version``."""
    key = {"model": model, "version": version, "window": [seconds, start.isoformat()]}
    return "da_" + digest_json({**key, "column": column})[7:31]


def raised(window: DriftWindow, columns: list[str], *, file: str, at: datetime) -> list[DriftAlert]:
    """The alerts of ``columns`` (drifted in ``window`` after ``file`` was counted)."""
    alerts = []
    for column in columns:
        result = window.results[column]
        alerts.append(
            DriftAlert(
                alert_id=alert_id(
                    window.model, window.version, window.window_seconds, window.window_start, column
                ),
                model=window.model,
                version=window.version,
                window_seconds=window.window_seconds,
                window_start=window.window_start,
                column=column,
                method=str(result["method"]),
                statistic=float(result["statistic"]),
                threshold=float(result["threshold"]),
                p_value=result.get("p_value"),
                rows=int(result["rows"]),
                raised_at=at,
                file=file,
            )
        )
    return alerts


def payload(alert: DriftAlert) -> dict[str, Any]:
    """The ``monitor.alert`` event's payload (and the webhook's, one per alert)."""
    end = alert.window_start.timestamp() + alert.window_seconds
    return {
        "kind": "drift",
        "alert_id": alert.alert_id,
        "model": alert.model,
        "version": alert.version,
        "column": alert.column,
        "window_start": alert.window_start.isoformat(),
        "window_end": datetime.fromtimestamp(end, alert.window_start.tzinfo).isoformat(),
        "method": alert.method,
        "statistic": alert.statistic,
        "threshold": alert.threshold,
        "p_value": alert.p_value,
        "rows": alert.rows,
        "file": alert.file,
        "raised_at": alert.raised_at.isoformat(),
    }


def describe(alert: DriftAlert) -> str:
    """One line for the log: ``churn/3 column age drifted: psi 0.41 > 0.2 (1200 rows,
    window 2024-05-01T12:00:00+00:00, 1h)``."""
    if alert.method == "psi":
        crossing = f"psi {alert.statistic:.3g} > {alert.threshold:g}"
    else:
        crossing = f"{alert.method} p-value {alert.p_value:.3g} < {alert.threshold:g}"
    return (
        f"{alert.model}/{alert.version} column {alert.column} drifted: {crossing} "
        f"({alert.rows} rows, window from {alert.window_start.isoformat()}, "
        f"{alert.window_seconds}s)"
    )
