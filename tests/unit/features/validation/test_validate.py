"""``validate`` as a whole: the result, and the report body it makes."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa

from gristmill.config.features import ValidationSpec
from gristmill.features.validation import REPORT_KIND, validate
from gristmill.stores.reports import Report


def test_result_holds_statistics_schema_and_anomalies(
    customers: Callable[..., pa.Table], with_missing: Callable[..., pa.Table]
) -> None:
    previous = customers(3000, seed=1)
    table = with_missing(customers(3000, seed=2, age_shift=6.0), "income", 0.25)
    result = validate(table, ValidationSpec(), previous=previous, subject="b-2")
    assert (result.subject, result.status, result.baseline) == ("b-2", "warned", "previous batch")
    assert result.statistics.row_count == 3000
    assert [c.name for c in result.schema.columns] == table.column_names
    assert [(a.column, a.kind) for a in result.anomalies] == [
        ("age", "drift"),
        ("income", "missing"),
    ]
    assert result.drift["age"].drifted
    assert "name" not in result.drift  # free text has no distribution to compare
    assert "signup" not in result.drift


def test_body_is_plain_json_that_round_trips(
    penguins: pa.Table, customers: Callable[..., pa.Table]
) -> None:
    spec = ValidationSpec.model_validate({"expect": {"plan": {"values": ["basic"]}}})
    result = validate(customers(500, seed=2), spec, previous=customers(500, seed=1), subject="b")
    for body in (result.to_body(), validate(penguins, ValidationSpec()).to_body()):
        assert json.loads(json.dumps(body, allow_nan=False)) == body
    body = result.to_body()
    assert set(body) == {
        "subject",
        "status",
        "row_count",
        "column_count",
        "baseline",
        "anomalies",
        "schema",
        "schema_changes",
        "drift",
        "statistics",
        "thresholds",
    }
    assert (body["subject"], body["status"], body["row_count"], body["column_count"]) == (
        "b",
        "warned",
        500,
        7,
    )
    assert body["anomalies"][0]["kind"] == "unexpected_values"
    assert body["thresholds"]["expect"]["plan"]["values"] == ["basic"]
    assert body["drift"]["age"]["method"] == "psi"
    report = Report("r-1", REPORT_KIND, "b", result.status, datetime.now(UTC), body)
    assert report.body["statistics"]["columns"][0]["name"] == "age"


def test_validating_the_same_inputs_gives_the_same_body(customers: Callable[..., pa.Table]) -> None:
    # A redelivered event re-validates; its report must equal the one stored (idempotent add).
    table, previous = customers(2000, seed=2), customers(2000, seed=1)
    first = validate(table, ValidationSpec(), previous=previous).to_body()
    assert validate(table, ValidationSpec(), previous=previous).to_body() == first


def test_without_a_baseline_nothing_is_compared(customers: Callable[..., pa.Table]) -> None:
    result = validate(customers(100), ValidationSpec())
    assert (result.baseline, result.drift, result.schema_changes) == (None, {}, [])
    assert result.status == "passed"
    assert result.to_body()["baseline"] is None
