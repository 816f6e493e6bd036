"""The contract every ``MetadataStore`` backend passes: subclass, provide one fixture, run.

::

    class TestSqliteMetadataStore(MetadataStoreContract):
        __test__ = True

        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db")

``store_factory`` returns a callable that makes a new, *unopened* store on the same
location each time (the suite opens several at once to race them, and reopens to check
durability); the subclass cleans the location up after the test. ``store`` is an opened one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from gristmill.errors import ConflictError, NotFoundError
from gristmill.stores.lineage import lineage_graph
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.drift_contract import DriftStoreContract
from gristmill.testing.execution_lease_contract import ExecutionLeaseContract
from gristmill.testing.feedback_contract import FeedbackStoreContract
from gristmill.testing.metadata_records import (
    PAYLOAD,
    T0,
    assert_utc,
    at,
    make_batch,
    make_edge,
    make_entry,
    make_execution,
    make_feature_set,
    make_report,
    make_run,
    run_together,
)
from gristmill.testing.model_store_contract import ModelStoreContract
from gristmill.testing.schedule_contract import ScheduleStoreContract
from gristmill.testing.score_job_contract import ScoreJobStoreContract
from gristmill.testing.serving_stats_contract import ServingStatsContract
from gristmill.testing.spec_store_contract import SpecStoreContract

__all__ = [
    "PAYLOAD",
    "T0",
    "MetadataStoreContract",
    "StoreFactory",
    "assert_utc",
    "at",
    "make_batch",
    "make_edge",
    "make_entry",
    "make_execution",
    "make_feature_set",
    "make_report",
    "make_run",
    "run_together",
]

StoreFactory = Callable[[], MetadataStore]


class MetadataStoreContract(
    ModelStoreContract,
    ExecutionLeaseContract,
    SpecStoreContract,
    ScoreJobStoreContract,
    ServingStatsContract,
    ScheduleStoreContract,
    FeedbackStoreContract,
    DriftStoreContract,
):
    """The semantics of ``gristmill.stores.metadata``, with the ``BatchCatalog``,
    ``ReportStore``, ``FeatureSetCatalog``, ``SplitStore``, ``CandidateStore``, ``SpecStore``
    and ``DeadLetterStore`` it exposes, for any backend (splits and candidates are tested
    in ``ModelStoreContract``, execution leases in ``ExecutionLeaseContract``, specs and
    dead letters in ``SpecStoreContract``, score jobs in ``ScoreJobStoreContract``, serving
    stats in ``ServingStatsContract``, schedules and their ticks in
    ``ScheduleStoreContract``, feedback and live quality in ``FeedbackStoreContract``, drift
    windows in ``DriftStoreContract``)."""

    __test__ = False

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        raise NotImplementedError("a backend's test class provides the store_factory fixture")

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Iterator[MetadataStore]:
        store = store_factory()
        store.open()
        try:
            yield store
        finally:
            store.close()

    # -- runs ----------------------------------------------------------------------------

    def test_run_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        run = make_run("run-1", started_at=at(0).astimezone(paris), summary=PAYLOAD)
        run = replace(run, spec_digest="sha256:spec", finished_at=at(5))
        store.runs.start_run(run)
        got = store.runs.get_run("run-1")
        assert got == run
        assert_utc(got.started_at)
        assert_utc(got.finished_at)
        assert store.runs.find_run("run-1") == run

    def test_start_run_with_an_existing_id_conflicts(self, store: MetadataStore) -> None:
        store.runs.start_run(make_run("run-1"))
        with pytest.raises(ConflictError, match="run-1"):
            store.runs.start_run(make_run("run-1", pipeline="other"))
        assert store.runs.get_run("run-1").pipeline == "churn"

    def test_missing_run_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="no run with id 'nope'"):
            store.runs.get_run("nope")
        assert store.runs.find_run("nope") is None
        with pytest.raises(NotFoundError, match="nope"):
            store.runs.finish_run("nope", "failed", {})

    def test_finish_run_records_status_summary_and_time(self, store: MetadataStore) -> None:
        store.runs.start_run(make_run("run-1", summary={"old": 1}))
        before = datetime.now(UTC)
        finished = store.runs.finish_run("run-1", "succeeded", PAYLOAD)
        assert (finished.status, finished.summary) == ("succeeded", PAYLOAD)
        assert_utc(finished.finished_at)
        assert finished.finished_at is not None
        assert finished.finished_at >= before - timedelta(seconds=1)
        assert store.runs.get_run("run-1") == finished

    def test_list_runs_newest_first_with_limit(self, store: MetadataStore) -> None:
        for index, seconds in enumerate([2, 0, 3, 1]):
            store.runs.start_run(make_run(f"run-{index}", seconds))
        assert [r.run_id for r in store.runs.list_runs()] == ["run-2", "run-0", "run-3", "run-1"]
        assert [r.run_id for r in store.runs.list_runs(limit=2)] == ["run-2", "run-0"]

    # -- executions ----------------------------------------------------------------------

    def test_execution_round_trips_and_upserts_by_id(self, store: MetadataStore) -> None:
        running = make_execution("ex-1", input_event_id="ev-1")
        store.executions.record_execution(running)
        assert store.executions.find_execution("preparation", "key-1") == running
        done = replace(running, status="succeeded", finished_at=at(9), outputs=[PAYLOAD, {}])
        store.executions.record_execution(done)
        assert store.executions.find_execution("preparation", "key-1") == done
        assert store.executions.list_executions("run-1") == [done]
        failed = replace(done, status="failed", outputs=[], error="boom\ntraceback")
        store.executions.record_execution(failed)
        assert store.executions.list_executions("run-1") == [failed]

    def test_find_execution_returns_the_newest_with_that_key(self, store: MetadataStore) -> None:
        store.executions.record_execution(make_execution("ex-a", 1))
        store.executions.record_execution(make_execution("ex-b", 3))
        store.executions.record_execution(make_execution("ex-c", 2))
        store.executions.record_execution(make_execution("ex-d", 9, idempotency_key="key-2"))
        store.executions.record_execution(make_execution("ex-e", 9, stage="training"))
        found = store.executions.find_execution("preparation", "key-1")
        assert found is not None
        assert found.execution_id == "ex-b"
        assert store.executions.find_execution("preparation", "key-3") is None
        assert store.executions.find_execution("scoring", "key-1") is None

    def test_list_executions_is_one_run_oldest_first(self, store: MetadataStore) -> None:
        for execution_id, seconds in [("ex-a", 2), ("ex-b", 0), ("ex-c", 1)]:
            store.executions.record_execution(make_execution(execution_id, seconds))
        store.executions.record_execution(make_execution("ex-x", 0, run_id="run-2"))
        store.executions.record_execution(make_execution("ex-y", 0, run_id=None))
        listed = store.executions.list_executions("run-1")
        assert [e.execution_id for e in listed] == ["ex-b", "ex-c", "ex-a"]
        assert store.executions.list_executions("run-3") == []

    def test_list_executions_of_runs_reads_several_runs_at_once(self, store: MetadataStore) -> None:
        for execution_id, seconds in [("ex-a", 2), ("ex-b", 0), ("ex-c", 1)]:
            store.executions.record_execution(make_execution(execution_id, seconds))
        store.executions.record_execution(make_execution("ex-x", 0, run_id="run-2"))
        store.executions.record_execution(make_execution("ex-y", 0, run_id=None))
        found = store.executions.list_executions_of_runs(["run-1", "run-2", "run-3"])
        assert {k: [e.execution_id for e in v] for k, v in found.items()} == {
            "run-1": ["ex-b", "ex-c", "ex-a"],
            "run-2": ["ex-x"],
            "run-3": [],
        }
        assert store.executions.list_executions_of_runs([]) == {}

    # -- lineage -------------------------------------------------------------------------

    def test_edges_round_trip_as_parents_and_children(self, store: MetadataStore) -> None:
        edge = make_edge("file:///in.csv", "batch-1", parent_kind="file", child_kind="raw_batch")
        other = make_edge("batch-1", "features-1", 1, relation="input_of")
        store.lineage.add_edges([edge, other])
        assert store.lineage.parents("batch-1") == [edge]
        assert store.lineage.children("batch-1") == [other]
        assert store.lineage.children("file:///in.csv") == [edge]
        assert store.lineage.parents("file:///in.csv") == []
        assert_utc(store.lineage.parents("batch-1")[0].created_at)

    def test_add_edges_is_idempotent(self, store: MetadataStore) -> None:
        edge = make_edge("a", "b")
        store.lineage.add_edges([edge, edge])
        store.lineage.add_edges([edge, make_edge("a", "b", 5, child_kind="changed")])
        store.lineage.add_edges([])
        assert store.lineage.children("a") == [edge]
        store.lineage.add_edges([make_edge("a", "b", relation="other")])
        assert len(store.lineage.children("a")) == 2

    def test_edge_without_time_is_stamped_when_recorded(self, store: MetadataStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=1)
        store.lineage.add_edges([make_edge("a", "b", None)])
        (edge,) = store.lineage.children("a")
        assert_utc(edge.created_at)
        assert edge.created_at is not None
        assert edge.created_at >= before
        assert replace(edge, created_at=None) == make_edge("a", "b", None)

    def test_lineage_graph_follows_several_hops(self, store: MetadataStore) -> None:
        # source -> batch -> features -> {model-a, model-b} -> version (a diamond).
        chain = [
            make_edge("source", "batch", 0),
            make_edge("batch", "features", 1),
            make_edge("features", "model-a", 2),
            make_edge("features", "model-b", 3),
            make_edge("model-a", "version", 4),
            make_edge("model-b", "version", 5),
        ]
        store.lineage.add_edges(chain)
        up, down = lineage_graph(store.lineage, "version")
        assert up == [chain[4], chain[5], chain[2], chain[3], chain[1], chain[0]]
        assert down == []
        up, down = lineage_graph(store.lineage, "features", depth=1)
        assert (up, down) == ([chain[1]], [chain[2], chain[3]])
        graph = lineage_graph(store.lineage, "batch")
        assert graph.ancestors == [chain[0]]
        assert graph.descendants == chain[1:]
        assert lineage_graph(store.lineage, "batch", depth=0) == ([], [])

    def test_lineage_graph_stops_on_cycles(self, store: MetadataStore) -> None:
        loop = [make_edge("a", "b"), make_edge("b", "c", 1), make_edge("c", "a", 2)]
        store.lineage.add_edges(loop)
        up, down = lineage_graph(store.lineage, "a", depth=50)
        assert set(up) == set(loop)
        assert set(down) == set(loop)

    # -- audit ---------------------------------------------------------------------------

    def test_audit_entries_round_trip_newest_first(self, store: MetadataStore) -> None:
        entries = [
            make_entry(f"e-{i}", seconds, details=PAYLOAD) for i, seconds in enumerate([1, 3, 2])
        ]
        for entry in entries:
            store.audit.append(entry)
        assert store.audit.list_entries() == [entries[1], entries[2], entries[0]]
        assert store.audit.list_entries(limit=1) == [entries[1]]
        assert_utc(store.audit.list_entries()[0].at)

    def test_audit_entries_filter_by_subject(self, store: MetadataStore) -> None:
        store.audit.append(make_entry("e-1", 1))
        store.audit.append(make_entry("e-2", 2, subject="model:other"))
        store.audit.append(make_entry("e-3", 3))
        listed = store.audit.list_entries(subject="model:churn")
        assert [e.entry_id for e in listed] == ["e-3", "e-1"]
        assert store.audit.list_entries(subject="model:none") == []

    def test_audit_entries_filter_by_action(self, store: MetadataStore) -> None:
        store.audit.append(make_entry("e-1", 1, action="model.policy_set"))
        store.audit.append(make_entry("e-2", 2, action="model.alias_set"))
        store.audit.append(make_entry("e-3", 3, action="model.policy_set", subject="model:x"))
        store.audit.append(make_entry("e-4", 4, action="model.policy_set"))
        listed = store.audit.list_entries(action="model.policy_set", limit=2)
        assert [e.entry_id for e in listed] == ["e-4", "e-3"]
        both = store.audit.list_entries(subject="model:churn", action="model.policy_set")
        assert [e.entry_id for e in both] == ["e-4", "e-1"]

    def test_audit_append_is_idempotent_per_id(self, store: MetadataStore) -> None:
        entry = make_entry("e-1")
        store.audit.append(entry)
        store.audit.append(entry)
        assert store.audit.list_entries() == [entry]
        with pytest.raises(ConflictError, match="e-1"):
            store.audit.append(replace(entry, action="rollback"))

    # -- raw batch catalog ---------------------------------------------------------------

    def test_batch_round_trips_exactly(self, store: MetadataStore) -> None:
        batch = make_batch(
            "b-1", origin="cli", run_id="run-1", quarantine="file:///q", extra=PAYLOAD
        )
        batch = replace(batch, bad_rows=3, row_count=2**40)
        assert store.batches.add_batch(batch) == batch
        got = store.batches.get_batch("b-1")
        assert got == batch
        assert_utc(got.created_at)

    def test_missing_batch_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="no raw batch with id 'nope'"):
            store.batches.get_batch("nope")
        assert store.batches.find_batch_by_digest("customers", "sha256:nope") is None
        assert store.batches.latest_batch("customers") is None

    def test_add_batch_is_idempotent_on_source_and_digest(self, store: MetadataStore) -> None:
        first = make_batch("b-1", content_digest="sha256:same")
        again = make_batch("b-2", 5, content_digest="sha256:same")
        elsewhere = make_batch("b-3", 6, content_digest="sha256:same", source="orders")
        assert store.batches.add_batch(first) == first
        assert store.batches.add_batch(again) == first
        assert store.batches.add_batch(elsewhere) == elsewhere
        assert store.batches.list_batches(source="customers") == [first]
        assert store.batches.find_batch_by_digest("customers", "sha256:same") == first
        assert store.batches.find_batch_by_digest("orders", "sha256:same") == elsewhere

    def test_batch_id_reused_for_other_content_conflicts(self, store: MetadataStore) -> None:
        store.batches.add_batch(make_batch("b-1"))
        with pytest.raises(ConflictError, match="b-1"):
            store.batches.add_batch(make_batch("b-1", content_digest="sha256:different"))

    def test_latest_batch_is_per_source(self, store: MetadataStore) -> None:
        store.batches.add_batch(make_batch("b-1", 1))
        store.batches.add_batch(make_batch("b-2", 3))
        store.batches.add_batch(make_batch("b-3", 2))
        store.batches.add_batch(make_batch("b-4", 9, source="orders"))
        latest = store.batches.latest_batch("customers")
        assert latest is not None
        assert latest.batch_id == "b-2"

    def test_list_batches_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        for batch_id, seconds, source in [("b-1", 1, "a"), ("b-2", 3, "b"), ("b-3", 2, "a")]:
            store.batches.add_batch(make_batch(batch_id, seconds, source=source))
        assert [b.batch_id for b in store.batches.list_batches()] == ["b-2", "b-3", "b-1"]
        assert [b.batch_id for b in store.batches.list_batches(source="a")] == ["b-3", "b-1"]
        assert [b.batch_id for b in store.batches.list_batches(limit=1)] == ["b-2"]

    def test_racing_writers_of_the_same_content_get_one_batch(
        self, store_factory: StoreFactory
    ) -> None:
        # Separate stores (as separate workers would have), opened at once on a fresh
        # location (migrations race too), then all adding the same content at once.
        writers = 6
        stores = [store_factory() for _ in range(writers)]
        try:
            run_together(writers, lambda i: stores[i].open())
            batches = [
                make_batch(f"b-{i}", i, content_digest="sha256:same") for i in range(writers)
            ]
            added = run_together(writers, lambda i: stores[i].batches.add_batch(batches[i]))
            assert len({batch.batch_id for batch in added}) == 1
            assert added[0] in batches
            assert stores[0].batches.list_batches() == [added[0]]
        finally:
            for store in stores:
                store.close()

    def test_one_store_serves_many_threads(self, store: MetadataStore) -> None:
        # Stage handlers run in worker threads that share one store.
        def work(index: int) -> None:
            store.runs.start_run(make_run(f"run-{index:02d}", index))
            store.executions.record_execution(make_execution(f"ex-{index:02d}", index))
            store.lineage.add_edges([make_edge("shared", f"child-{index:02d}", index)])
            store.audit.append(make_entry(f"e-{index:02d}", index))

        run_together(12, work)
        assert [r.run_id for r in store.runs.list_runs()] == [
            f"run-{i:02d}" for i in range(11, -1, -1)
        ]
        assert len(store.executions.list_executions("run-1")) == 12
        assert len(store.lineage.children("shared")) == 12
        assert len(store.audit.list_entries()) == 12

    # -- reports -------------------------------------------------------------------------

    def test_report_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        report = make_report("r-1", created_at=at(0).astimezone(paris), body=PAYLOAD)
        report = replace(report, status="warned", run_id="run-1")
        store.reports.add_report(report)
        got = store.reports.get_report("r-1")
        assert got == report
        assert_utc(got.created_at)
        assert store.reports.list_reports() == [report]

    def test_add_report_is_idempotent_per_id(self, store: MetadataStore) -> None:
        report = make_report("r-1", body={"columns": [["age", 0.5]]})
        store.reports.add_report(report)
        store.reports.add_report(report)
        store.reports.add_report(replace(report, body={"columns": [("age", 0.5)]}))
        assert store.reports.list_reports() == [report]
        with pytest.raises(ConflictError, match="r-1"):
            store.reports.add_report(replace(report, status="failed"))
        assert store.reports.get_report("r-1") == report

    def test_a_report_added_again_later_by_another_run_keeps_the_first(
        self, store: MetadataStore
    ) -> None:
        first = replace(make_report("r-1", 0, body=PAYLOAD), run_id="run-1")
        store.reports.add_report(first)
        store.reports.add_report(replace(first, created_at=at(60), run_id="run-2"))
        assert store.reports.list_reports() == [first]

    def test_missing_report_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match=r"no report with id 'nope'.*gristmill ls"):
            store.reports.get_report("nope")
        assert store.reports.list_reports(subject="nope") == []

    def test_list_reports_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        for report_id, seconds, subject, kind in [
            ("r-1", 1, "b-1", "validation"),
            ("r-2", 3, "b-2", "validation"),
            ("r-3", 2, "b-1", "drift"),
            ("r-4", 2, "b-1", "validation"),
        ]:
            store.reports.add_report(make_report(report_id, seconds, subject=subject, kind=kind))

        def ids(**filters: Any) -> list[str]:
            return [r.report_id for r in store.reports.list_reports(**filters)]

        assert ids() == ["r-2", "r-4", "r-3", "r-1"]  # a tie in time: the larger id first
        assert ids(subject="b-1") == ["r-4", "r-3", "r-1"]
        assert ids(kind="validation") == ["r-2", "r-4", "r-1"]
        assert ids(subject="b-1", kind="validation") == ["r-4", "r-1"]
        assert ids(subject="b-1", limit=1) == ["r-4"]

    # -- feature-set catalog -------------------------------------------------------------

    def test_feature_set_round_trips_exactly_in_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        feature_set = make_feature_set(
            "fs-1",
            created_at=at(0).astimezone(paris),
            columns=[{"name": "age", "type": "double", "stats": PAYLOAD}],
            row_count=2**40,
            entity="customer_id",
            timestamp="signup_at",
            label="churned",
            pipeline_artifact="file:///artifacts/fs-1",
            selection=PAYLOAD,
            validation_report="r-1",
            run_id="run-1",
        )
        assert store.feature_sets.add_feature_set(feature_set) == feature_set
        got = store.feature_sets.get_feature_set("fs-1")
        assert got == feature_set
        assert_utc(got.created_at)
        assert store.feature_sets.find_feature_set("fs-1") == feature_set
        bare = make_feature_set("fs-2", inputs=[], columns=[])
        assert store.feature_sets.add_feature_set(bare) == bare
        assert store.feature_sets.get_feature_set("fs-2") == bare

    def test_add_feature_set_returns_the_recorded_one(self, store: MetadataStore) -> None:
        first = make_feature_set("fs-1")
        again = make_feature_set("fs-1", 5, location="file:///elsewhere", row_count=7)
        assert store.feature_sets.add_feature_set(first) == first
        assert store.feature_sets.add_feature_set(again) == first
        assert store.feature_sets.list_feature_sets() == [first]

    def test_missing_feature_set_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match=r"no feature set with id 'nope'.*gristmill ls"):
            store.feature_sets.get_feature_set("nope")
        assert store.feature_sets.find_feature_set("nope") is None
        assert store.feature_sets.latest_feature_set("customers_v1") is None

    def test_feature_sets_newest_first_and_latest_by_name(self, store: MetadataStore) -> None:
        for feature_set_id, seconds, name in [
            ("fs-1", 1, "a"),
            ("fs-2", 3, "b"),
            ("fs-3", 2, "a"),
            ("fs-4", 0, "a"),
        ]:
            store.feature_sets.add_feature_set(make_feature_set(feature_set_id, seconds, name=name))

        def ids(**filters: Any) -> list[str]:
            return [f.feature_set_id for f in store.feature_sets.list_feature_sets(**filters)]

        assert ids() == ["fs-2", "fs-3", "fs-1", "fs-4"]
        assert ids(name="a") == ["fs-3", "fs-1", "fs-4"]
        assert ids(name="a", limit=2) == ["fs-3", "fs-1"]
        latest = store.feature_sets.latest_feature_set("a")
        assert latest is not None
        assert latest.feature_set_id == "fs-3"
        assert store.feature_sets.latest_feature_set("c") is None

    def test_racing_writers_of_one_feature_set_get_one(self, store: MetadataStore) -> None:
        writers = 6
        candidates = [make_feature_set("fs-1", i, row_count=i) for i in range(writers)]
        added = run_together(writers, lambda i: store.feature_sets.add_feature_set(candidates[i]))
        assert all(feature_set == added[0] for feature_set in added)
        assert added[0] in candidates
        assert store.feature_sets.list_feature_sets() == [added[0]]

    # -- lifecycle -----------------------------------------------------------------------

    def test_reopening_keeps_the_data(self, store_factory: StoreFactory) -> None:
        store = store_factory()
        store.open()
        store.open()
        store.runs.start_run(make_run("run-1"))
        store.batches.add_batch(make_batch("b-1"))
        store.close()
        store.close()
        reopened = store_factory()
        reopened.open()
        try:
            assert reopened.runs.get_run("run-1") == make_run("run-1")
            assert reopened.batches.get_batch("b-1") == make_batch("b-1")
        finally:
            reopened.close()
        store.open()
        try:
            assert store.runs.get_run("run-1") == make_run("run-1")
        finally:
            store.close()
