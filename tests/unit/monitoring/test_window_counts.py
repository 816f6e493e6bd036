"""Drift windows from prediction log files: references, counts that add up, verdicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from gristmill.config.monitoring import DriftSpec, MonitorSpec
from gristmill.errors import DataError
from gristmill.features.validation.drift import KS_BINS, numeric_drift
from gristmill.monitoring.profile import (
    DriftReference,
    column_reference,
    from_body,
    profiled,
    to_body,
)
from gristmill.monitoring.verdicts import drifted, judged
from gristmill.monitoring.window_counts import added, count_log
from gristmill.testing.prediction_logs import CHURN_INPUTS, log_table, manifest_of, reference_of
from gristmill.testing.prediction_logs import customers as frame

HOUR = 3600
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MANIFEST = manifest_of("churn", 3, CHURN_INPUTS, classes=["no", "yes"])


@pytest.fixture(scope="module")
def reference() -> DriftReference:
    columns, prediction = frame(20_000, seed=0)
    made = reference_of(MANIFEST, columns, prediction)
    assert made.skipped == {}
    return replace(made, digest="sha256:ref")


def counted(reference: DriftReference, rows: int, at: datetime | list[datetime], **shape):
    columns, prediction = frame(rows, **shape)
    table = log_table(MANIFEST, columns, prediction, at)
    return count_log(table, reference, HOUR, digest=reference.digest)


def test_the_reference_keeps_bins_and_categories_and_round_trips(
    reference: DriftReference,
) -> None:
    age, plan, prediction = reference.columns
    assert (age.kind, age.source, len(age.edges), sum(age.counts)) == (
        "numeric",
        "inputs",
        9,
        20_000,
    )
    assert len(age.ks_edges) == KS_BINS - 1 and sum(age.ks_counts) == 20_000
    assert max(age.counts) - min(age.counts) <= 1  # deciles: a tenth each
    assert (plan.kind, plan.categories) == ("categorical", ("basic", "pro"))
    assert (prediction.name, prediction.source, prediction.categories) == (
        "prediction",
        "prediction",
        ("no", "yes"),
    )
    assert from_body(to_body(reference), "sha256:ref") == reference


def test_one_file_is_counted_on_the_reference_bins(reference: DriftReference) -> None:
    [(start, counts)] = counted(reference, 1000, T0 + timedelta(minutes=5)).items()
    assert start == T0 and counts["rows"] == 1000 and counts["reference"] == "sha256:ref"
    age, plan = counts["columns"]["age"], counts["columns"]["plan"]
    assert sum(age["bins"]) == sum(age["ks"]) == 1000 and age["missing"] == 0
    assert len(age["bins"]) == 10 and len(age["ks"]) == KS_BINS
    assert sum(plan["counts"]) == 1000 and plan["new"] == plan["missing"] == 0
    assert sum(counts["columns"]["prediction"]["counts"]) == 1000


def test_missing_values_and_new_categories_are_counted_apart(reference: DriftReference) -> None:
    columns = {
        "age": np.array([30.0, np.nan, 50.0, np.nan]),
        "plan": np.array(["basic", None, "enterprise", "pro"], dtype=object),
    }
    table = log_table(MANIFEST, columns, np.array(["no", "yes", "maybe", None], dtype=object), T0)
    [counts] = count_log(table, reference, HOUR).values()
    age, plan, prediction = (counts["columns"][n] for n in ("age", "plan", "prediction"))
    assert (age["rows"], age["missing"], sum(age["bins"])) == (4, 2, 2)
    assert (plan["missing"], plan["new"], plan["counts"]) == (1, 1, [1, 1])
    assert (prediction["missing"], prediction["new"], prediction["counts"]) == (1, 1, [1, 1])


def test_a_file_across_windows_is_cut_by_the_rows_times(reference: DriftReference) -> None:
    times = [T0 + timedelta(minutes=59, seconds=50), T0 + timedelta(hours=1, seconds=5)] * 5
    windows = counted(reference, 1000, times)  # 10 requests of 100 rows, alternating hours
    assert sorted(windows) == [T0, T0 + timedelta(hours=1)]
    assert [windows[w]["rows"] for w in sorted(windows)] == [500, 500]
    assert sum(windows[T0]["columns"]["age"]["bins"]) == 500


def test_counts_add_up_file_by_file_as_all_at_once(reference: DriftReference) -> None:
    columns, prediction = frame(3000, shift=0.3)
    whole = count_log(log_table(MANIFEST, columns, prediction, T0), reference, HOUR)[T0]
    total = None
    for start in range(0, 3000, 700):
        part = {name: values[start : start + 700] for name, values in columns.items()}
        table = log_table(MANIFEST, part, prediction[start : start + 700], T0)
        total = added(total, count_log(table, reference, HOUR)[T0])
    assert total == whole


def test_counts_of_another_reference_are_refused(reference: DriftReference) -> None:
    counts = counted(reference, 100, T0)[T0]
    with pytest.raises(DataError, match="reference"):
        added(counts, {**counts, "reference": "sha256:other"})


def test_a_column_the_file_lacks_is_not_counted(reference: DriftReference) -> None:
    table = log_table(MANIFEST, {"age": frame(200)[0]["age"]}, frame(200)[1], T0)
    [counts] = count_log(table, reference, HOUR).values()
    assert sorted(counts["columns"]) == ["age", "prediction"]
    assert sorted(judged(counts, reference, DriftSpec(min_rows=1))) == ["age", "prediction"]


def test_the_same_distribution_does_not_drift_and_a_shift_does(reference: DriftReference) -> None:
    same = judged(counted(reference, 5000, T0, seed=9)[T0], reference, DriftSpec())
    assert drifted(same) == []
    assert same["age"]["psi"] < 0.02 and same["age"]["judged"]
    shifted = judged(
        counted(reference, 5000, T0, shift=1.0, plans=(0.1, 0.9))[T0], reference, DriftSpec()
    )
    assert drifted(shifted) == ["age", "plan", "prediction"]
    age = shifted["age"]
    assert (age["method"], age["threshold"], age["statistic"]) == ("psi", 0.2, age["psi"])
    assert age["psi"] > 0.5 and age["ks_pvalue"] < 1e-6 and age["chi2_pvalue"] < 1e-6


def test_psi_of_counts_is_preparations_psi(reference: DriftReference) -> None:
    columns, _ = frame(20_000, seed=0)  # the reference's own rows …
    current, prediction = frame(4000, shift=0.4, seed=5)  # … and a window's
    window = count_log(log_table(MANIFEST, current, prediction, T0), reference, HOUR)[T0]
    result = judged(window, reference, DriftSpec())["age"]
    assert result["psi"] == pytest.approx(numeric_drift(columns["age"], current["age"]).statistic)


def test_ks_from_counts_is_close_to_the_test_on_the_values(reference: DriftReference) -> None:
    ages = frame(20_000, seed=0)[0]["age"]
    for shift in (0.0, 0.05, 0.2):
        current, prediction = frame(8000, shift=shift, seed=11)
        window = count_log(log_table(MANIFEST, current, prediction, T0), reference, HOUR)[T0]
        result = judged(window, reference, DriftSpec(method="ks"))["age"]
        exact = stats.ks_2samp(ages, current["age"])
        assert abs(result["ks"] - exact.statistic) <= 1 / KS_BINS + 1e-9
        assert (result["ks_pvalue"] < 0.01) == (exact.pvalue < 0.01)


def test_min_rows_methods_and_column_rules_decide_the_verdict(reference: DriftReference) -> None:
    window = counted(reference, 400, T0, shift=1.0, plans=(0.1, 0.9))[T0]
    assert drifted(judged(window, reference, DriftSpec(min_rows=500))) == []
    assert not judged(window, reference, DriftSpec(min_rows=500))["age"]["judged"]
    spec = DriftSpec(
        min_rows=100,
        method="ks",
        columns={"plan": {"ignore": True}, "prediction": {"method": "psi", "psi": 5.0}},
    )
    results = judged(window, reference, spec)
    assert drifted(results) == ["age"]
    assert (results["age"]["method"], results["age"]["threshold"]) == ("ks", 0.01)
    assert results["plan"]["psi"] > 0.2 and not results["plan"]["judged"]
    assert results["plan"]["ignored"] and not results["age"]["ignored"]
    assert results["prediction"]["threshold"] == 5.0
    # KS does not apply to categories: chi-square answers; auto is preparation's rule
    assert judged(window, reference, DriftSpec(method="ks"))["plan"]["method"] == "chi2"
    auto = judged(window, reference, DriftSpec(method="auto"))
    assert (auto["age"]["method"], auto["plan"]["method"]) == ("psi", "chi2")


def test_the_monitor_section_reads_its_window_and_refuses_what_it_cannot_use() -> None:
    monitor = MonitorSpec.model_validate(
        {"window": "90m", "drift": {"psi": 0.1, "columns": {"age": {"method": "ks"}}}}
    )
    assert (monitor.window, monitor.window_seconds) == ("90m", 5400)
    assert monitor.drift.for_column("age").method == "ks"
    assert monitor.drift.for_column("plan").psi == 0.1
    for bad in ({"window": "soon"}, {"webhook": "ftp://x"}, {"drift": {"threshold": 0.2}}):
        with pytest.raises(ValueError):
            MonitorSpec.model_validate(bad)


def test_identifiers_are_not_monitored_and_old_references_holding_one_are_not_judged() -> None:
    rows = 300
    rng = np.random.default_rng(0)
    inputs = pa.table(
        {
            "customer": [f"c{i:04d}" for i in range(rows)],  # the entity key
            "order_no": np.arange(rows) * 7,  # all distinct: an identifier
            "ticket": [f"t{i}" for i in range(rows)],  # text, all distinct
            "age": rng.normal(40, 10, rows),  # all distinct too, but a measurement
            "visits": rng.integers(0, 20, rows),
            "plan": rng.choice(["basic", "pro"], rows),
        }
    )
    made, skipped = profiled(inputs, None, entity="customer")
    assert [c.name for c in made] == ["age", "visits", "plan"]
    assert skipped == {
        "customer": "an identifier: the entity key",
        "order_no": f"an identifier: {rows} distinct values in {rows} rows",
        "ticket": f"an identifier: {rows} distinct values in {rows} rows",
    }
    # a reference made before identifiers were skipped holds one: counted, never judged
    ticket = column_reference("ticket", inputs.column("ticket"))
    assert not isinstance(ticket, str)
    reference = DriftReference("m", 1, rows, "old", (ticket,), digest="sha256:old")
    window = {"rows": 600, "columns": {"ticket": {"counts": [0] * rows, "new": 600, "missing": 0}}}
    result = judged(window, reference, DriftSpec(min_rows=100))["ticket"]
    assert result["identifier"] and not result["judged"] and not result["drifted"]
    assert result["psi"] > 1  # it would have drifted
