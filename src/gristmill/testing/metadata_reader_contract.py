"""The contract every ``MetadataReader`` passes: it reads what a metadata store wrote exactly
as that store reads it back — the same objects, in the same order, for every filter and
limit, and the same ``NotFoundError`` for an id nobody wrote.

::

    class TestSqliteMetadataReader(MetadataReaderContract):
        __test__ = True

        @pytest.fixture
        def writer_and_reader(self, tmp_path):
            return SqlMetadataStore(f"sqlite:///{tmp_path}/meta.db"), lambda: SqliteMetadataReader(
                tmp_path / "meta.db"
            )

``writer_and_reader`` gives an *unopened* store and a callable making an unopened reader of
the same database; the suite opens the store (which creates the tables), writes through
it, then opens a reader. A store is a reader of itself, so a store's own backend can run
the suite with ``lambda: store``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta, timezone
from typing import Any

import pytest

from gristmill.errors import NotFoundError
from gristmill.stores.lineage import lineage_graph
from gristmill.stores.metadata import MetadataReader, MetadataStore
from gristmill.testing.metadata_records import (
    PAYLOAD,
    assert_utc,
    at,
    make_batch,
    make_candidate,
    make_edge,
    make_entry,
    make_execution,
    make_feature_set,
    make_report,
    make_run,
    make_split,
)
from gristmill.testing.spec_store_contract import make_spec

WriterAndReader = tuple[MetadataStore, Callable[[], MetadataReader]]
PARIS = timezone(timedelta(hours=2))


def write_records(store: MetadataStore) -> None:
    """Records of every kind a reader reads, with ties in time (ordered by id), two of each
    filter's values, JSON payloads and times given in another zone."""
    for i, seconds in enumerate((0, 10, 10, 20)):
        store.runs.start_run(make_run(f"run-{i}", seconds, summary={"i": i, **PAYLOAD}))
    store.runs.finish_run("run-1", "succeeded", {"outputs": [PAYLOAD]})
    for i, (run, seconds) in enumerate((("run-1", 5), ("run-1", 1), ("run-2", 1), ("run-2", 1))):
        execution = make_execution(
            f"ex-{i}", seconds, run_id=run, outputs=[{"type": "raw.ingested", "payload": PAYLOAD}]
        )
        store.executions.record_execution(execution)
    store.lineage.add_edges(
        [
            make_edge("file-a", "batch-1", 1),
            make_edge("source-a", "batch-1", 0),
            make_edge("batch-1", "fs-1", 2),
            make_edge("batch-1", "fs-2", 2, relation="joined_into"),
            make_edge("fs-1", "sp-1", None),
        ]
    )
    for i, (subject, action) in enumerate((("m:a", "deploy"), ("m:b", "deploy"), ("m:a", "x"))):
        store.audit.append(make_entry(f"e-{i}", i % 2, subject=subject, action=action))
    for i, source in enumerate(("customers", "orders", "customers", "orders")):
        at_time = at(i // 2).astimezone(PARIS)
        batch = make_batch(f"b-{i}", created_at=at_time, source=source, extra={"n": i})
        store.batches.add_batch(batch)
    for i, (kind, subject) in enumerate((("validation", "b-1"), ("leaderboard", "sp-1"))):
        store.reports.add_report(make_report(f"rep-{i}", i, kind=kind, subject=subject))
    store.reports.add_report(make_report("rep-2", 1, body=PAYLOAD, run_id="run-1"))
    for i, name in enumerate(("customers_v1", "orders_v1", "customers_v1")):
        store.feature_sets.add_feature_set(
            make_feature_set(f"fs-{i}", i // 2, name=name, selection={"kept": ["age"]})
        )
    store.splits.add_split(make_split("sp-1", warnings=[{"kind": "imbalance"}]))
    made_by = (("run-1", "fs-1"), ("run-2", "fs-1"), ("run-1", "fs-2"))
    for i, (run, feature_set) in enumerate(made_by):
        candidate = make_candidate(
            f"mc-{i}", i // 2, run_id=run, feature_set_id=feature_set, metrics={"f1": 0.5 + i}
        )
        store.candidates.save_candidate(candidate)
    store.specs.add_spec(make_spec("sha256:spec-1"))


class MetadataReaderContract:
    """What a ``MetadataReader`` reads, against what the store that wrote it reads."""

    __test__ = False

    @pytest.fixture
    def writer_and_reader(self) -> WriterAndReader:
        raise NotImplementedError("a reader's test class provides writer_and_reader")

    @pytest.fixture
    def written(self, writer_and_reader: WriterAndReader) -> Iterator[MetadataStore]:
        store = writer_and_reader[0]
        store.open()
        try:
            write_records(store)
            yield store
        finally:
            store.close()

    @pytest.fixture
    def reader(
        self, written: MetadataStore, writer_and_reader: WriterAndReader
    ) -> Iterator[MetadataReader]:
        reader = writer_and_reader[1]()
        reader.open()
        try:
            yield reader
        finally:
            reader.close()

    def test_runs_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        for limit in (1, 2, 50):
            assert reader.runs.list_runs(limit=limit) == written.runs.list_runs(limit=limit)
        assert [r.run_id for r in reader.runs.list_runs()] == ["run-3", "run-2", "run-1", "run-0"]
        finished = reader.runs.get_run("run-1")
        assert finished == written.runs.get_run("run-1")
        assert finished.summary == {"outputs": [PAYLOAD]}
        assert_utc(finished.started_at)
        assert_utc(finished.finished_at)
        assert reader.runs.find_run("run-9") is None

    def test_executions_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        for run in ("run-1", "run-2", "run-9"):
            assert reader.executions.list_executions(run) == written.executions.list_executions(run)
        assert [e.execution_id for e in reader.executions.list_executions("run-1")] == [
            "ex-1",
            "ex-0",
        ]
        runs = ["run-2", "run-9", "run-1"]
        found = reader.executions.list_executions_of_runs(runs)
        assert found == written.executions.list_executions_of_runs(runs)
        assert list(found) == runs
        assert found["run-9"] == []
        assert found["run-2"][0].outputs == [{"type": "raw.ingested", "payload": PAYLOAD}]

    def test_lineage_reads_as_the_store_reads_it(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        for node in ("batch-1", "fs-1", "sp-1", "nowhere"):
            assert reader.lineage.parents(node) == written.lineage.parents(node)
            assert reader.lineage.children(node) == written.lineage.children(node)
        assert [e.parent_id for e in reader.lineage.parents("batch-1")] == ["source-a", "file-a"]
        assert lineage_graph(reader.lineage, "fs-1") == lineage_graph(written.lineage, "fs-1")

    def test_audit_reads_as_the_store_reads_it(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        cases: list[dict[str, Any]] = [
            {},
            {"limit": 1},
            {"subject": "m:a"},
            {"action": "deploy"},
            {"subject": "m:a", "action": "x"},
            {"subject": "none"},
        ]
        for filters in cases:
            assert reader.audit.list_entries(**filters) == written.audit.list_entries(**filters)
        assert [e.entry_id for e in reader.audit.list_entries()] == ["e-1", "e-2", "e-0"]

    def test_batches_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        for filters in ({}, {"limit": 3}, {"source": "orders"}, {"source": "none"}):
            listed = reader.batches.list_batches(**filters)
            assert listed == written.batches.list_batches(**filters)
        assert [b.batch_id for b in reader.batches.list_batches()] == ["b-3", "b-2", "b-1", "b-0"]
        batch = reader.batches.get_batch("b-2")
        assert batch == written.batches.get_batch("b-2")
        assert batch.created_at == at(1)
        assert_utc(batch.created_at)

    def test_reports_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        cases: list[dict[str, Any]] = [
            {},
            {"limit": 2},
            {"kind": "validation"},
            {"subject": "sp-1"},
            {"subject": "b-1", "kind": "validation"},
        ]
        for filters in cases:
            assert reader.reports.list_reports(**filters) == written.reports.list_reports(**filters)
        assert reader.reports.get_report("rep-2") == written.reports.get_report("rep-2")
        assert reader.reports.get_report("rep-2").body == PAYLOAD

    def test_feature_sets_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        for filters in ({}, {"limit": 1}, {"name": "customers_v1"}, {"name": "none"}):
            listed = reader.feature_sets.list_feature_sets(**filters)
            assert listed == written.feature_sets.list_feature_sets(**filters)
        found = reader.feature_sets.get_feature_set("fs-1")
        assert found == written.feature_sets.get_feature_set("fs-1")
        assert reader.feature_sets.find_feature_set("fs-9") is None

    def test_splits_and_candidates_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        assert reader.splits.get_split("sp-1") == written.splits.get_split("sp-1")
        assert reader.splits.find_split("sp-9") is None
        cases: list[dict[str, Any]] = [
            {},
            {"limit": 1},
            {"run_id": "run-1"},
            {"feature_set_id": "fs-1"},
            {"run_id": "run-1", "feature_set_id": "fs-2"},
        ]
        for filters in cases:
            listed = reader.candidates.list_candidates(**filters)
            assert listed == written.candidates.list_candidates(**filters)
        assert reader.candidates.get_candidate("mc-2") == written.candidates.get_candidate("mc-2")
        assert reader.candidates.find_candidate("mc-9") is None

    def test_specs_read_as_the_store_reads_them(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        spec = reader.specs.get_spec("sha256:spec-1")
        assert spec == written.specs.get_spec("sha256:spec-1")
        assert spec == make_spec("sha256:spec-1")
        assert reader.specs.find_spec("sha256:none") is None

    @pytest.mark.parametrize(
        "read",
        [
            lambda r: r.runs.get_run("nope"),
            lambda r: r.batches.get_batch("nope"),
            lambda r: r.reports.get_report("nope"),
            lambda r: r.feature_sets.get_feature_set("nope"),
            lambda r: r.splits.get_split("nope"),
            lambda r: r.candidates.get_candidate("nope"),
            lambda r: r.specs.get_spec("nope"),
        ],
    )
    def test_a_missing_id_is_not_found_as_the_store_says(
        self, written: MetadataStore, reader: MetadataReader, read: Callable[[Any], Any]
    ) -> None:
        with pytest.raises(NotFoundError) as expected:
            read(written)
        with pytest.raises(NotFoundError) as got:
            read(reader)
        assert str(got.value) == str(expected.value)

    def test_reads_what_is_written_after_it_opened(
        self, written: MetadataStore, reader: MetadataReader
    ) -> None:
        later = replace(make_run("run-late", 99), status="succeeded")
        written.runs.start_run(later)
        assert reader.runs.list_runs(limit=1) == [later]
