"""``validate``: statistics, schema, drift and anomalies of one batch, as one result.

The *baseline* a batch is compared with (schema changes, new categories, drift) is the
reference when ``validation.drift.against`` is ``reference`` and one is given, else the
previous batch, else the reference if only that is given. ``against: none`` turns drift
off but keeps the other comparisons. The result's body is deterministic (no timings), so
validating the same inputs again gives an equal report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from gristmill.config.features import DriftSpec, ValidationSpec
from gristmill.features.validation.anomalies import Anomaly, find_anomalies
from gristmill.features.validation.drift import DriftResult, categorical_drift, numeric_drift
from gristmill.features.validation.profiles import ColumnProfile, profile_table
from gristmill.features.validation.schema import Schema, SchemaChange, compare_schemas
from gristmill.features.validation.statistics import TableStatistics
from gristmill.stores.reports import ReportStatus

REPORT_KIND = "validation"


@dataclass(frozen=True)
class ValidationResult:
    """What validating one batch found. ``status`` is ``passed`` without anomalies, else
    ``failed`` when the spec says ``on_anomaly: stop`` and ``warned`` otherwise."""

    subject: str
    status: ReportStatus
    statistics: TableStatistics
    schema: Schema
    anomalies: list[Anomaly]
    spec: ValidationSpec
    baseline: str | None = None
    schema_changes: list[SchemaChange] = field(default_factory=list)
    drift: dict[str, DriftResult] = field(default_factory=dict)

    def to_body(self) -> dict[str, Any]:
        """The JSON body of the ``validation`` report (``gristmill.stores.reports.Report``)."""
        return {
            "subject": self.subject,
            "status": self.status,
            "row_count": self.statistics.row_count,
            "column_count": len(self.schema.columns),
            "baseline": self.baseline,
            "anomalies": [anomaly.to_dict() for anomaly in self.anomalies],
            "schema": self.schema.to_dict(),
            "schema_changes": [change.to_dict() for change in self.schema_changes],
            "drift": {column: result.to_dict() for column, result in self.drift.items()},
            "statistics": self.statistics.to_dict(),
            "thresholds": self.spec.model_dump(mode="json"),
        }


def validate(
    table: pa.Table,
    spec: ValidationSpec,
    *,
    previous: pa.Table | None = None,
    reference: pa.Table | None = None,
    subject: str = "",
) -> ValidationResult:
    """Validate ``table`` (a raw batch) against ``spec`` and, when given, a baseline batch.

    ``previous`` is the source's previous batch, ``reference`` the training reference;
    ``subject`` names the batch in the result (its ``batch_id``).
    """
    profiles = profile_table(table)
    schema = Schema.from_profiles(profiles)
    baseline, baseline_name = _baseline(spec, previous, reference)
    known: dict[str, ColumnProfile] | None = None
    changes: list[SchemaChange] = []
    drift: dict[str, DriftResult] = {}
    if baseline is not None:
        changes = compare_schemas(_schema_of(baseline), schema)
        known = profile_table(baseline, columns=[n for n in profiles if n in baseline.column_names])
        if spec.drift.against != "none":
            drift = _drift(profiles, known, spec)
    anomalies = find_anomalies(
        profiles,
        spec,
        baseline=known,
        baseline_name=baseline_name or "baseline",
        schema_changes=changes,
        drift=drift,
    )
    status: ReportStatus = "passed"
    if anomalies:
        status = "failed" if spec.on_anomaly == "stop" else "warned"
    return ValidationResult(
        subject=subject,
        status=status,
        statistics=TableStatistics.from_profiles(table.num_rows, profiles),
        schema=schema,
        anomalies=anomalies,
        spec=spec,
        baseline=baseline_name,
        schema_changes=changes,
        drift=drift,
    )


def _baseline(
    spec: ValidationSpec, previous: pa.Table | None, reference: pa.Table | None
) -> tuple[pa.Table | None, str | None]:
    if spec.drift.against == "reference" and reference is not None:
        return reference, "reference"
    if previous is not None:
        return previous, "previous batch"
    if reference is not None:
        return reference, "reference"
    return None, None


def _schema_of(table: pa.Table) -> Schema:
    # Only Arrow types are compared, so the baseline's schema needs no profiling pass.
    return Schema.from_dicts(
        [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in table.schema]
    )


def _drift(
    profiles: dict[str, ColumnProfile], baseline: dict[str, ColumnProfile], spec: ValidationSpec
) -> dict[str, DriftResult]:
    results = {
        name: column_drift(profile, baseline[name], spec.drift)
        for name, profile in profiles.items()
        if name in baseline
    }
    return {name: result for name, result in results.items() if result is not None}


def column_drift(
    current: ColumnProfile, baseline: ColumnProfile, spec: DriftSpec
) -> DriftResult | None:
    """The drift of one column from its baseline, or ``None`` when no test applies (text,
    temporal, a side without values, or numeric against categorical).

    With ``method: auto``, ``threshold`` is the PSI threshold of numeric columns; the
    chi-square test of categorical ones keeps its default p-value threshold.
    """
    if current.values is not None and baseline.values is not None:
        if current.values.size == 0 or baseline.values.size == 0:
            return None
        return numeric_drift(
            baseline.values,
            current.values,
            method=spec.method,
            threshold=spec.threshold,
            assume_sorted=True,
        )
    if current.counts and baseline.counts:
        threshold = None if spec.method == "auto" else spec.threshold
        return categorical_drift(
            baseline.counts, current.counts, method=spec.method, threshold=threshold
        )
    return None
