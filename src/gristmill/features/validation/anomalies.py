"""Anomalies of a table against a ``ValidationSpec`` (the role of TFX ExampleValidator).

Checks, each on column profiles (no pass over rows except ``expect.<col>.values``):

* ``missing``: missing share above ``expect.<col>.max_missing``, else ``max_missing``;
* ``out_of_range``: numeric values outside ``expect.<col>.min`` / ``max``;
* ``outliers``: share of values beyond ``outlier_threshold`` IQRs from the quartiles
  (``iqr``) or standard deviations from the mean (``zscore``), above ``max_outliers``; a
  column whose IQR (or deviation) is 0 is skipped, since any other value would count;
* ``unexpected_values``: values outside ``expect.<col>.values``;
* ``new_categories``: categories absent from the baseline, for categorical columns whose
  baseline had at most ``KNOWN_CATEGORIES`` categories (more is open-ended, like cities);
* ``type_mismatch``, ``expected_column_absent``: against ``expect.<col>.type`` and the
  columns ``expect`` names;
* ``type_changed``, ``column_added``, ``column_removed``: against the baseline's schema;
* ``drift``: the column's distribution moved from the baseline's (see ``drift``).

Every anomaly has severity ``warn``; the spec's ``on_anomaly`` decides what a run does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.features import ColumnExpectation, DriftSpec, ValidationSpec
from gristmill.features.validation.drift import DriftResult
from gristmill.features.validation.profiles import (
    ColumnProfile,
    count_outside,
    json_value,
    sorted_quantiles,
)
from gristmill.features.validation.schema import SchemaChange

AnomalyKind = Literal[
    "missing",
    "out_of_range",
    "outliers",
    "unexpected_values",
    "new_categories",
    "type_mismatch",
    "expected_column_absent",
    "type_changed",
    "column_added",
    "column_removed",
    "drift",
]

KNOWN_CATEGORIES = 50
EXAMPLES = 5


@dataclass(frozen=True)
class Anomaly:
    """One finding about one column: a sentence for people and the numbers behind it."""

    column: str
    kind: AnomalyKind
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)
    severity: Literal["warn"] = "warn"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "numbers": json_value(self.numbers)}


def find_anomalies(
    profiles: Mapping[str, ColumnProfile],
    spec: ValidationSpec,
    *,
    baseline: Mapping[str, ColumnProfile] | None = None,
    baseline_name: str = "baseline",
    schema_changes: Iterable[SchemaChange] = (),
    drift: Mapping[str, DriftResult] | None = None,
) -> list[Anomaly]:
    """Every anomaly, column by column in table order, then absent columns, then schema
    changes. ``baseline`` holds the baseline's profiles, ``drift`` the drift tests run."""
    found: list[Anomaly | None] = []
    for name, profile in profiles.items():
        expect = spec.expect.get(name, ColumnExpectation())
        found += [_missing(profile, spec, expect), _type_mismatch(profile, expect)]
        if profile.values is not None and profile.values.size:
            found += [_out_of_range(profile, expect), _outliers(profile, spec)]
        if expect.values is not None:
            found.append(_unexpected_values(profile, expect.values))
        elif baseline is not None and name in baseline:
            found.append(_new_categories(profile, baseline[name], baseline_name))
        result = None if drift is None else drift.get(name)
        if result is not None and result.drifted:
            found.append(_drifted(name, result, baseline_name, spec.drift))
    found += [
        _found(name, "expected_column_absent", f"expected (validation.expect.{name}) but absent")
        for name in spec.expect
        if name not in profiles
    ]
    found += [_schema_changed(change, baseline_name) for change in schema_changes]
    return [anomaly for anomaly in found if anomaly is not None]


def _found(
    column: str, kind: AnomalyKind, text: str, numbers: dict[str, Any] | None = None
) -> Anomaly:
    return Anomaly(column, kind, f"column {column!r}: {text}", numbers or {})


def _missing(
    profile: ColumnProfile, spec: ValidationSpec, expect: ColumnExpectation
) -> Anomaly | None:
    allowed, key = spec.max_missing, "validation.max_missing"
    if expect.max_missing is not None:
        allowed, key = expect.max_missing, f"validation.expect.{profile.name}.max_missing"
    share = profile.missing_share
    if share <= allowed:
        return None
    text = f"{_percent(share)} missing, above the {_percent(allowed)} allowed ({key})"
    numbers = {"missing": profile.missing, "rows": profile.rows, "share": share}
    return _found(profile.name, "missing", text, {**numbers, "allowed": allowed})


def _type_mismatch(profile: ColumnProfile, expect: ColumnExpectation) -> Anomaly | None:
    if expect.type is None or str(profile.type) == expect.type:
        return None
    key = f"validation.expect.{profile.name}.type"
    text = f"type is {profile.type}, expected {expect.type} ({key})"
    return _found(
        profile.name, "type_mismatch", text, {"type": str(profile.type), "expected": expect.type}
    )


def _out_of_range(profile: ColumnProfile, expect: ColumnExpectation) -> Anomaly | None:
    values = profile.values
    if values is None or (expect.min is None and expect.max is None):
        return None
    below, above = count_outside(values, expect.min, expect.max)
    if below + above == 0:
        return None
    parts = []
    if below:
        parts.append(f"{below:,} below {_number(expect.min)} (smallest {_number(profile.minimum)})")
    if above:
        parts.append(f"{above:,} above {_number(expect.max)} (largest {_number(profile.maximum)})")
    share = (below + above) / profile.rows
    text = (
        f"{_count(below + above, 'value')} ({_percent(share)}) outside the expected range "
        f"[{_number(expect.min)}, {_number(expect.max)}] (validation.expect.{profile.name}): "
        + ", ".join(parts)
    )
    numbers: dict[str, Any] = {"below": below, "above": above, "share": share}
    numbers |= {"min": profile.minimum}
    numbers |= {"max": profile.maximum, "expected_min": expect.min, "expected_max": expect.max}
    return _found(profile.name, "out_of_range", text, numbers)


def _outliers(profile: ColumnProfile, spec: ValidationSpec) -> Anomaly | None:
    values = profile.values
    if values is None or spec.outliers == "none" or profile.kind != "numeric":
        return None
    k = spec.outlier_threshold
    if spec.outliers == "iqr":
        q1, q3 = (float(q) for q in sorted_quantiles(values, (0.25, 0.75)))
        spread, low, high = q3 - q1, q1 - k * (q3 - q1), q3 + k * (q3 - q1)
        rule = f"more than {_number(k)} IQRs beyond the quartiles"
    else:
        mean = float(values.mean())
        spread = float(values.std(ddof=1)) if values.size > 1 else 0.0
        low, high = mean - k * spread, mean + k * spread
        rule = f"more than {_number(k)} standard deviations from the mean"
    if spread <= 0:
        return None
    below, above = count_outside(values, low, high)
    share = (below + above) / values.size
    if share <= spec.max_outliers:
        return None
    text = (
        f"{_percent(share)} outliers ({_count(below + above, 'value')} {rule}, outside "
        f"[{_number(low)}, {_number(high)}]), above the {_percent(spec.max_outliers)} allowed "
        "(validation.max_outliers)"
    )
    numbers: dict[str, Any] = {"outliers": below + above, "share": share, "method": spec.outliers}
    numbers |= {"low": low, "high": high, "allowed": spec.max_outliers}
    return _found(profile.name, "outliers", text, numbers)


def _unexpected_values(profile: ColumnProfile, allowed: list[Any]) -> Anomaly | None:
    column = profile.column
    try:
        value_set = pa.array(allowed).cast(_value_type(column.type))
        known = pc.is_in(column, value_set=value_set)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        # Compare as text when the expected values do not fit the column's type.
        known = pc.is_in(column.cast(pa.string()), value_set=pa.array([str(v) for v in allowed]))
    unknown = pc.and_(pc.invert(known), pc.is_valid(column))
    count = int(pc.sum(unknown).as_py() or 0)
    if count == 0:
        return None
    examples = pc.unique(column.filter(unknown)).to_pylist()[:EXAMPLES]
    share = count / profile.rows
    text = (
        f"{_count(count, 'value')} ({_percent(share)}) not among the expected values "
        f"(validation.expect.{profile.name}.values), e.g. {_listing(examples)}"
    )
    numbers = {"rows": count, "share": share, "examples": examples}
    return _found(profile.name, "unexpected_values", text, numbers)


def _new_categories(
    profile: ColumnProfile, baseline: ColumnProfile, baseline_name: str
) -> Anomaly | None:
    known, seen = baseline.counts, profile.counts
    if known is None or seen is None or len(known) > KNOWN_CATEGORIES:
        return None
    new = [category for category in seen if category not in known]
    if not new:
        return None
    rows = sum(seen[category] for category in new)
    share = rows / profile.rows
    text = (
        f"{_count(len(new), 'category')} not seen in the {baseline_name}: {_listing(new)} "
        f"({_count(rows, 'row')}, {_percent(share)})"
    )
    numbers = {"categories": new[:EXAMPLES], "count": len(new), "rows": rows, "share": share}
    return _found(profile.name, "new_categories", text, numbers)


def _drifted(name: str, result: DriftResult, baseline_name: str, spec: DriftSpec) -> Anomaly:
    if result.threshold == spec.threshold:
        limit = f"the threshold {_number(result.threshold)} (validation.drift.threshold)"
    else:
        limit = f"the default threshold {_number(result.threshold)}"
    if result.method == "psi":
        measure = f"PSI {_number(result.statistic)}, above {limit}"
    else:
        test = "KS" if result.method == "ks" else "chi-square"
        measure = f"{test} p-value {_number(result.p_value)}, below {limit}"
    text = f"distribution drifted from the {baseline_name} ({measure})"
    return _found(name, "drift", text, result.to_dict())


def _schema_changed(change: SchemaChange, baseline_name: str) -> Anomaly:
    if change.change == "type_changed":
        text = f"type changed from {change.before} in the {baseline_name} to {change.after}"
        return _found(change.column, "type_changed", text, change.to_dict())
    if change.change == "removed":
        text = f"in the {baseline_name} but not in this batch"
        return _found(change.column, "column_removed", text, change.to_dict())
    text = f"new, not in the {baseline_name}"
    return _found(change.column, "column_added", text, change.to_dict())


def _value_type(data_type: pa.DataType) -> pa.DataType:
    return data_type.value_type if pa.types.is_dictionary(data_type) else data_type


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _count(count: int, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{count:,} {noun if count == 1 else plural}"


def _listing(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:EXAMPLES])
    return shown + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")
