"""Data validation of raw batches: statistics, inferred schema, drift and anomalies."""

from gristmill.features.validation.anomalies import Anomaly, AnomalyKind, find_anomalies
from gristmill.features.validation.drift import (
    DriftMethod,
    DriftResult,
    aligned_counts,
    bin_counts,
    categorical_drift,
    chi2_test,
    ks_from_counts,
    ks_test,
    numeric_drift,
    psi,
    quantile_edges,
)
from gristmill.features.validation.profiles import ColumnProfile, Kind, profile_table
from gristmill.features.validation.report import REPORT_KIND, ValidationResult, validate
from gristmill.features.validation.schema import (
    ColumnSchema,
    Schema,
    SchemaChange,
    compare_schemas,
    infer_schema,
)
from gristmill.features.validation.statistics import (
    QUANTILES,
    ColumnStatistics,
    TableStatistics,
    compute_statistics,
)

__all__ = [
    "QUANTILES",
    "REPORT_KIND",
    "Anomaly",
    "AnomalyKind",
    "ColumnProfile",
    "ColumnSchema",
    "ColumnStatistics",
    "DriftMethod",
    "DriftResult",
    "Kind",
    "Schema",
    "SchemaChange",
    "TableStatistics",
    "ValidationResult",
    "aligned_counts",
    "bin_counts",
    "categorical_drift",
    "chi2_test",
    "compare_schemas",
    "compute_statistics",
    "find_anomalies",
    "infer_schema",
    "ks_from_counts",
    "ks_test",
    "numeric_drift",
    "profile_table",
    "psi",
    "quantile_edges",
    "validate",
]
