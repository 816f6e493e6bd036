"""Builders of metadata records for the contract suites, and the helpers those suites share.

Every builder takes an id, a time offset in ``seconds`` after ``T0`` (UTC) and field
``changes``; the defaults make a valid record that round-trips exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from gristmill.stores.features import FeatureSet
from gristmill.stores.metadata import AuditEntry, LineageEdge, Run, StageExecution
from gristmill.stores.models import Candidate, Split
from gristmill.stores.raw import RawBatch
from gristmill.stores.reports import Report

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
# A payload that exercises JSON: nesting, unicode, floats, booleans, nulls, empty containers.
PAYLOAD: dict[str, Any] = {
    "metric": 0.8125,
    "tiny": 1e-12,
    "big": 2**53,
    "ok": True,
    "none": None,
    "name": "crème brûlée ✓",
    "nested": {"list": [1, "two", [3.5, {"four": []}]], "empty": {}},
}


def at(seconds: float) -> datetime:
    """A UTC instant ``seconds`` after the suite's reference time."""
    return T0 + timedelta(seconds=seconds)


def make_run(run_id: str, seconds: float = 0, **changes: Any) -> Run:
    return replace(
        Run(run_id=run_id, pipeline="churn", status="running", started_at=at(seconds)), **changes
    )


def make_execution(execution_id: str, seconds: float = 0, **changes: Any) -> StageExecution:
    execution = StageExecution(
        execution_id=execution_id,
        stage="preparation",
        idempotency_key="key-1",
        status="running",
        started_at=at(seconds),
        run_id="run-1",
    )
    return replace(execution, **changes)


def make_batch(batch_id: str, seconds: float = 0, **changes: Any) -> RawBatch:
    batch = RawBatch(
        batch_id=batch_id,
        source="customers",
        location=f"file:///data/raw/customers/{batch_id}",
        files=["part-0.parquet", "part-1.parquet"],
        schema=[{"name": "age", "type": "int64", "nullable": True}],
        schema_fingerprint="sha256:fp",
        row_count=1000,
        content_digest=f"sha256:{batch_id}",
        created_at=at(seconds),
    )
    return replace(batch, **changes)


def make_edge(parent: str, child: str, seconds: float | None = 0, **changes: Any) -> LineageEdge:
    created = None if seconds is None else at(seconds)
    edge = LineageEdge(parent, "node", child, "node", created_at=created)
    return replace(edge, **changes)


def make_entry(entry_id: str, seconds: float = 0, **changes: Any) -> AuditEntry:
    entry = AuditEntry(entry_id, at(seconds), "ann", "deploy", "model:churn", {"version": 3})
    return replace(entry, **changes)


def make_report(report_id: str, seconds: float = 0, **changes: Any) -> Report:
    report = Report(report_id, "validation", "b-1", "passed", at(seconds), {"anomalies": []})
    return replace(report, **changes)


def make_feature_set(feature_set_id: str, seconds: float = 0, **changes: Any) -> FeatureSet:
    feature_set = FeatureSet(
        feature_set_id=feature_set_id,
        name="customers_v1",
        definition_digest="sha256:def",
        inputs=["b-1", "b-2"],
        location=f"file:///data/features/customers_v1/{feature_set_id}",
        columns=[{"name": "age", "type": "double", "role": "feature"}],
        row_count=1000,
        created_at=at(seconds),
    )
    return replace(feature_set, **changes)


def assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


def run_together(count: int, work: Callable[[int], Any]) -> list[Any]:
    """``work(i)`` for ``i`` in ``range(count)`` on as many threads, released at once."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as error:  # reported to the test below
            results[index] = error

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [result for result in results if isinstance(result, BaseException)]
    if errors:
        raise errors[0]
    return results


def make_split(split_id: str, seconds: float = 0, **changes: Any) -> Split:
    split = Split(
        split_id=split_id,
        feature_set_id="fs-1",
        strategy="random",
        params={"test_size": 0.25, "validation_size": None, "seed": 7},
        sizes={"train": 750, "test": 250},
        created_at=at(seconds),
    )
    return replace(split, **changes)


def make_candidate(candidate_id: str, seconds: float = 0, **changes: Any) -> Candidate:
    candidate = Candidate(
        candidate_id=candidate_id,
        name="forest",
        algorithm="random_forest",
        task="classification",
        params={"n_estimators": 100, "max_depth": None},
        feature_set_id="fs-1",
        split_id="sp-1",
        status="trained",
        started_at=at(seconds),
    )
    return replace(candidate, **changes)
