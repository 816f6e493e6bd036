"""Anomalies against a ValidationSpec: each is found when injected, and not found otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from gristmill.config.features import ValidationSpec
from gristmill.features.validation import Anomaly, validate

Build = Callable[..., pa.Table]


def spec(**settings: Any) -> ValidationSpec:
    return ValidationSpec.model_validate(settings)


def kinds(anomalies: list[Anomaly]) -> list[tuple[str, str]]:
    return [(anomaly.column, anomaly.kind) for anomaly in anomalies]


def only(anomalies: list[Anomaly], kind: str) -> Anomaly:
    (found,) = [anomaly for anomaly in anomalies if anomaly.kind == kind]
    return found


@pytest.mark.parametrize("dataset", ["penguins", "wine", "diabetes", "breast_cancer"])
def test_clean_real_data_passes(dataset: str, request: pytest.FixtureRequest) -> None:
    result = validate(request.getfixturevalue(dataset), ValidationSpec())
    assert result.anomalies == []
    assert result.status == "passed"


def test_missing_share_above_the_limit_is_explained(customers: Build, with_missing: Build) -> None:
    table = with_missing(customers(1000), "age", 0.31)
    anomaly = only(validate(table, ValidationSpec()).anomalies, "missing")
    assert anomaly.column == "age"
    assert anomaly.severity == "warn"
    assert anomaly.message == (
        "column 'age': 31% missing, above the 20% allowed (validation.max_missing)"
    )
    assert anomaly.numbers == {"missing": 310, "rows": 1000, "share": 0.31, "allowed": 0.2}


def test_missing_share_at_or_below_the_limit_is_fine(customers: Build, with_missing: Build) -> None:
    table = with_missing(customers(1000), "age", 0.2)
    assert validate(table, ValidationSpec()).anomalies == []


def test_a_column_expectation_overrides_max_missing(customers: Build, with_missing: Build) -> None:
    table = with_missing(with_missing(customers(1000), "age", 0.05), "plan", 0.3)
    result = validate(
        table, spec(expect={"age": {"max_missing": 0.01}, "plan": {"max_missing": 0.5}})
    )
    assert kinds(result.anomalies) == [("age", "missing")]
    assert "above the 1% allowed (validation.expect.age.max_missing)" in result.anomalies[0].message


def test_values_outside_the_expected_range(customers: Build, with_column: Build) -> None:
    ages = np.random.default_rng(0).uniform(18, 90, 1000)
    ages[:3], ages[3:10] = [-1.0, -5.0, 3.0], 130.0
    table = with_column(customers(1000), "age", ages)
    anomaly = only(
        validate(table, spec(expect={"age": {"min": 10, "max": 120}})).anomalies, "out_of_range"
    )
    assert anomaly.message == (
        "column 'age': 10 values (1%) outside the expected range [10, 120] "
        "(validation.expect.age): 3 below 10 (smallest -5), 7 above 120 (largest 130)"
    )
    assert (anomaly.numbers["below"], anomaly.numbers["above"]) == (3, 7)
    assert validate(table, spec(expect={"age": {"min": -10, "max": 130}})).anomalies == []
    assert validate(table, spec(expect={"age": {"min": -10}})).anomalies == []


@pytest.mark.parametrize("method", ["iqr", "zscore"])
def test_injected_outliers_are_found(method: str, customers: Build, with_column: Build) -> None:
    # 4 %: with many more, z-scores mask them (the outliers inflate the deviation itself).
    rng = np.random.default_rng(1)
    clean = customers(2000)
    ages = clean.column("age").to_numpy().copy()
    ages[rng.choice(2000, 80, replace=False)] = 1000.0
    settings = {"outliers": method, "outlier_threshold": 3.0, "max_outliers": 0.02}
    table = with_column(clean, "age", ages)
    anomaly = only(validate(table, spec(**settings)).anomalies, "outliers")
    assert anomaly.column == "age"
    assert anomaly.numbers["outliers"] == 80
    assert anomaly.message.startswith("column 'age': 4% outliers (80 values more than 3 ")
    assert "above the 2% allowed (validation.max_outliers)" in anomaly.message
    assert validate(clean, spec(**settings)).anomalies == []


@pytest.mark.parametrize("method", ["iqr", "zscore"])
def test_normal_data_has_no_outlier_anomaly(method: str, customers: Build) -> None:
    result = validate(customers(5000), spec(outliers=method))
    assert [a for a in result.anomalies if a.kind == "outliers"] == []


def test_outliers_off_or_under_the_allowed_share(customers: Build, with_column: Build) -> None:
    incomes = customers(1000).column("income").to_numpy().copy()
    incomes[:30] = 1e7  # 3 %
    table = with_column(customers(1000), "income", incomes)
    assert validate(table, ValidationSpec()).anomalies == []
    incomes[:100] = 1e7
    table = with_column(customers(1000), "income", incomes)
    assert validate(table, spec(outliers="none")).anomalies == []


def test_a_column_with_no_spread_is_not_all_outliers(with_column: Build) -> None:
    # 90 % zeros: the IQR is 0, so the rule cannot scale; it is skipped, not triggered.
    table = pa.table({"clicks": np.where(np.arange(1000) % 10 == 0, 5, 0)})
    assert validate(table, ValidationSpec()).anomalies == []


def test_values_outside_the_expected_set(customers: Build, with_column: Build) -> None:
    plans = np.array(customers(1000).column("plan").to_pylist(), dtype=object)
    plans[:12] = "gold"
    plans[12:15] = "vip"
    table = with_column(customers(1000), "plan", plans.tolist())
    allowed = {"expect": {"plan": {"values": ["basic", "plus", "pro"]}}}
    anomaly = only(validate(table, spec(**allowed)).anomalies, "unexpected_values")
    assert anomaly.message == (
        "column 'plan': 15 values (1.5%) not among the expected values "
        "(validation.expect.plan.values), e.g. 'gold', 'vip'"
    )
    assert validate(customers(1000), spec(**allowed)).anomalies == []
    codes = pa.table({"code": pa.array([1, 2, 3, 9, None])})
    found = validate(codes, spec(expect={"code": {"values": [1, 2, 3]}})).anomalies
    assert [a.numbers["examples"] for a in found] == [[9]]


def test_new_categories_against_the_previous_batch(customers: Build) -> None:
    previous = customers(2000, seed=1)
    current = customers(2000, seed=2, plans=("basic", "plus", "gold"))
    anomaly = only(
        validate(current, ValidationSpec(), previous=previous).anomalies, "new_categories"
    )
    rows = current.column("plan").to_pylist().count("gold")
    assert anomaly.message == (
        f"column 'plan': 1 category not seen in the previous batch: 'gold' "
        f"({rows:,} rows, {rows / 20:.3g}%)"
    )
    same = validate(customers(2000, seed=2), ValidationSpec(), previous=previous)
    assert [a for a in same.anomalies if a.kind == "new_categories"] == []


def test_type_changes_and_columns_added_or_removed(customers: Build) -> None:
    previous = customers(500, seed=1)
    current = customers(500, seed=2).drop_columns(["visits"])
    current = current.set_column(0, "age", current.column("age").cast(pa.string()))
    current = current.append_column("score", pa.array(np.ones(500)))
    result = validate(current, ValidationSpec(), previous=previous)
    assert "age" not in result.drift  # text now: nothing to compare with the numbers before
    assert kinds(result.anomalies) == [
        ("age", "type_changed"),
        ("visits", "column_removed"),
        ("score", "column_added"),
    ]
    assert result.anomalies[0].message == (
        "column 'age': type changed from double in the previous batch to string"
    )


def test_expected_type_and_expected_columns(customers: Build) -> None:
    expect = {"visits": {"type": "double"}, "churned": {}, "age": {"type": "double"}}
    result = validate(customers(100), spec(expect=expect))
    assert kinds(result.anomalies) == [
        ("visits", "type_mismatch"),
        ("churned", "expected_column_absent"),
    ]
    assert result.anomalies[0].message == (
        "column 'visits': type is int64, expected double (validation.expect.visits.type)"
    )


def test_a_shifted_batch_drifts_and_an_unshifted_one_does_not(customers: Build) -> None:
    previous = customers(5000, seed=1)
    shifted = customers(5000, seed=2, age_shift=5.0, plan_shares=(0.3, 0.3, 0.4))
    result = validate(shifted, ValidationSpec(), previous=previous)
    assert kinds(result.anomalies) == [("age", "drift"), ("plan", "drift")]
    age = result.anomalies[0]
    assert age.message.startswith(
        "column 'age': distribution drifted from the previous batch (PSI "
    )
    assert age.message.endswith(", above the default threshold 0.2)")
    assert "chi-square p-value" in result.anomalies[1].message
    steady = validate(customers(5000, seed=2), ValidationSpec(), previous=previous)
    assert steady.anomalies == []
    assert set(steady.drift) == {"age", "income", "plan", "active", "visits"}
    assert not any(r.drifted for r in steady.drift.values())


def test_drift_against_the_reference_or_not_at_all(customers: Build) -> None:
    reference = customers(5000, seed=1)
    previous = customers(5000, seed=3, age_shift=8.0)
    current = customers(5000, seed=2)
    against_reference = spec(drift={"against": "reference"})
    result = validate(current, against_reference, previous=previous, reference=reference)
    assert (result.baseline, result.anomalies) == ("reference", [])
    result = validate(current, ValidationSpec(), previous=previous, reference=reference)
    assert (result.baseline, kinds(result.anomalies)) == ("previous batch", [("age", "drift")])
    result = validate(current, spec(drift={"against": "none"}), previous=previous)
    assert (result.drift, result.anomalies) == ({}, [])


def test_real_data_drift_between_penguin_species(penguins: pa.Table) -> None:
    species = penguins.column("species").to_pylist()
    adelie = penguins.filter(pa.array([s == "Adelie" for s in species]))
    gentoo = penguins.filter(pa.array([s == "Gentoo" for s in species]))
    result = validate(gentoo, ValidationSpec(), previous=adelie)
    found = set(kinds(result.anomalies))
    assert {("body_mass_g", "drift"), ("flipper_length_mm", "drift")} <= found
    assert ("species", "new_categories") in found
    assert ("year", "drift") not in found  # both species were sampled in the same years


def test_status_follows_the_policy(customers: Build, with_missing: Build) -> None:
    table = with_missing(customers(100), "age", 0.5)
    assert validate(table, ValidationSpec()).status == "warned"
    assert validate(table, spec(on_anomaly="stop")).status == "failed"
    assert validate(customers(100), spec(on_anomaly="stop")).status == "passed"


def test_anomaly_numbers_are_json(with_column: Build) -> None:
    days = pa.table({"day": pa.array([date(2024, 1, d) for d in (1, 2, 3, 9)])})
    expect = {"expect": {"day": {"values": ["2024-01-01", "2024-01-02", "2024-01-03"]}}}
    (anomaly,) = validate(days, spec(**expect)).anomalies
    assert anomaly.numbers["examples"] == [date(2024, 1, 9)]
    assert json.loads(json.dumps(anomaly.to_dict()))["numbers"]["examples"] == ["2024-01-09"]
