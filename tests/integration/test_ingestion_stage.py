"""The ingestion stage and ``ingest`` end to end: real files, a real SQLite metadata store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.sources import SourceSpec
from gristmill.core.events import RAW_INGESTED, SOURCE_AVAILABLE, Event
from gristmill.errors import ConfigError, DataError, SchemaChangedError
from gristmill.ingestion import ingest
from gristmill.stages.base import Stage
from gristmill.stages.ingestion import IngestionStage
from gristmill.testing.data import numbers_table, wine_table, write_csv, write_lines


def event(source: SourceSpec, **payload: Any) -> Event:
    return Event(
        type=SOURCE_AVAILABLE,
        key=source.name,
        payload={"source": source.model_dump(mode="json"), **payload},
    )


def test_the_stage_ingests_a_csv_and_announces_the_batch(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_csv(tmp_path / "wine.csv", wine_table())
    spec = SourceSpec(name="wine", format="csv", path=str(path), partition_rows=60)
    stage: Stage = IngestionStage(raw, metadata)
    assert (stage.name, stage.consumes) == ("ingestion", SOURCE_AVAILABLE)
    incoming = event(spec)
    outcome = stage.handle(incoming)
    (announcement,) = outcome.announcements
    assert (announcement.type, announcement.key) == (RAW_INGESTED, "wine")
    payload = announcement.payload
    batch = raw.get(payload["batch_id"])
    assert payload == {
        "batch_id": batch.batch_id,
        "source": "wine",
        "rows": 178,
        "schema": batch.schema,
        "location": batch.location,
        "content_digest": batch.content_digest,
        "created": True,
        "bad_rows": 0,
        "quarantine": None,
        "origin": batch.origin,
    }
    assert outcome.summary == "wine: 1 new batch(es), 178 rows"
    assert len(batch.files) == 3
    assert batch.run_id is None  # the event's correlation id names no recorded run
    assert raw.read(batch.batch_id).num_rows == 178
    (edge,) = metadata.lineage.parents(batch.batch_id)
    assert (edge.parent_id, edge.parent_kind) == (batch.origin, "file")
    assert edge.parent_id.endswith("wine.csv")

    again = stage.handle(event(spec))
    assert again.announcements[0].payload["created"] is False
    assert again.announcements[0].payload["batch_id"] == batch.batch_id
    assert again.summary == "wine: 0 new batch(es), 0 rows, 1 already ingested"
    assert len(raw.list()) == 1


def test_the_idempotency_key_is_the_event_and_its_source(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_csv(tmp_path / "n.csv", numbers_table(10))
    spec = SourceSpec(name="n", format="csv", path=str(path))
    stage = IngestionStage(raw, metadata)
    first = event(spec)
    key = stage.idempotency_key(first)
    assert stage.idempotency_key(first) == key  # a redelivery: the same work
    assert stage.idempotency_key(event(spec)) != key  # a new announcement: handled again


def test_a_folder_gives_one_batch_per_new_file(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    folder = tmp_path / "drop"
    write_csv(folder / "a.csv", numbers_table(5, seed=1))
    write_csv(folder / "b.csv", numbers_table(7, seed=2))
    write_lines(folder / "notes.txt", ["not data"])
    spec = SourceSpec(name="drops", format="folder", path=str(folder), pattern="*.csv")
    stage = IngestionStage(raw, metadata)
    first = stage.handle(event(spec))
    assert [a.payload["rows"] for a in first.announcements] == [5, 7]
    assert stage.handle(event(spec)).summary == "drops: nothing new"
    write_csv(folder / "c.csv", numbers_table(3, seed=3))
    write_csv(folder / "copy-of-a.csv", numbers_table(5, seed=1))
    third = stage.handle(event(spec))
    assert [a.payload["rows"] for a in third.announcements] == [3]
    one = stage.handle(event(spec, file=str(folder / "a.csv")))
    assert one.announcements[0].payload["created"] is False


def test_bad_rows_fail_by_default_and_nothing_is_written(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_lines(tmp_path / "x.csv", ["id,age", "1,30", "2,old", "3,41"])
    spec = SourceSpec(name="people", format="csv", path=str(path), columns={"age": "int64"})
    with pytest.raises(DataError) as caught:
        ingest(spec, raw, metadata)
    assert (caught.value.file, caught.value.row, caught.value.column) == (str(path), 3, "age")
    assert "on_bad_rows: quarantine" in str(caught.value)
    assert raw.list() == []
    assert list((tmp_path / "raw").rglob("*.parquet")) == []


def test_quarantine_keeps_bad_rows_beside_the_batch(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_lines(tmp_path / "x.csv", ["id,age", "1,30", "2,old", "3", "4,41"])
    spec = SourceSpec(
        name="people",
        format="csv",
        path=str(path),
        columns={"age": "int64"},
        on_bad_rows="quarantine",
    )
    outcome = IngestionStage(raw, metadata).handle(event(spec))
    payload = outcome.announcements[0].payload
    assert (payload["rows"], payload["bad_rows"]) == (2, 2)
    assert payload["quarantine"].endswith(f"{payload['batch_id']}/quarantine.parquet")
    assert "2 bad rows quarantined" in outcome.summary
    quarantine = raw.read_quarantine(payload["batch_id"])
    assert quarantine is not None
    assert quarantine.select(["row", "column"]).to_pylist() == [
        {"row": 3, "column": "age"},
        {"row": 4, "column": None},
    ]


@pytest.mark.parametrize("mode", ["fail", "quarantine"])
def test_a_stray_quote_refuses_the_file_and_writes_nothing(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore, mode: str
) -> None:
    lines = ["id,name,score", *[f"{i},n{i},{i}" for i in range(1, 200)]]
    lines[30] = '30,"n30,30'
    path = write_lines(tmp_path / "x.csv", lines)
    spec = SourceSpec(name="p", format="csv", path=str(path), on_bad_rows=mode)
    with pytest.raises(
        DataError, match=r"line 31 \(data row 30\): a quote opens here and never closes"
    ):
        ingest(spec, raw, metadata)
    assert raw.list() == []
    assert list((tmp_path / "raw").rglob("*.parquet")) == []


def test_every_row_bad_is_an_error(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_lines(tmp_path / "x.csv", ["id,age", "1,old"])
    spec = SourceSpec(
        name="p", format="csv", path=str(path), columns={"age": "int64"}, on_bad_rows="quarantine"
    )
    with pytest.raises(DataError, match="every row"):
        ingest(spec, raw, metadata)
    assert raw.list() == []


def test_a_changed_schema_fails_unless_allowed(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = tmp_path / "x.csv"
    spec = SourceSpec(name="p", format="csv", path=str(path))
    write_lines(path, ["id,age,name", "1,30,a"])
    ingest(spec, raw, metadata)
    write_lines(path, ["id,age,city", "1,thirty,b"])
    with pytest.raises(SchemaChangedError) as caught:
        ingest(spec, raw, metadata)
    message = str(caught.value)
    assert "added ['city']; removed ['name']; retyped age: int64 -> string" in message
    assert "on_schema_change: allow" in message
    assert len(raw.list()) == 1
    allowed = spec.model_copy(update={"on_schema_change": "allow"})
    (written,) = ingest(allowed, raw, metadata)
    assert written.created and len(raw.list()) == 2


def test_progress_is_reported_per_part(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = write_csv(tmp_path / "n.csv", numbers_table(1000))
    spec = SourceSpec(name="n", format="csv", path=str(path), partition_rows=300)
    calls: list[tuple[int, int | None]] = []
    ingest(spec, raw, metadata, progress=lambda rows, total: calls.append((rows, total)))
    size = path.stat().st_size
    assert calls == [(300, size), (600, size), (900, size), (1000, size)]


def test_a_sql_source_through_the_stage(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    wine_table().to_pandas().to_sql("wine", url, index=False)
    spec = SourceSpec(name="wine", format="sql", url=url, query="SELECT * FROM wine")
    stage = IngestionStage(raw, metadata)
    first = stage.handle(event(spec))
    assert first.announcements[0].payload["rows"] == 178
    second = stage.handle(event(spec))
    assert second.announcements[0].payload["created"] is False
    batch_id = first.announcements[0].payload["batch_id"]
    (edge,) = metadata.lineage.parents(batch_id)
    assert (edge.parent_id, edge.parent_kind) == ("source:wine", "source")
    assert pa.concat_tables([raw.read(batch_id)]).num_rows == 178


def test_a_bad_event_is_a_config_error(raw: ParquetRawStore, metadata: SqlMetadataStore) -> None:
    stage = IngestionStage(raw, metadata)
    with pytest.raises(ConfigError, match="no valid source spec"):
        stage.handle(Event(type=SOURCE_AVAILABLE, payload={"source": {"format": "xml"}}))


def test_a_folder_of_mixed_formats_on_an_fsspec_filesystem(
    namespace: str, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    memory = fsspec.filesystem("memory")
    folder = f"/{namespace}/drop"
    table = numbers_table(20)
    with memory.open(f"{folder}/a.csv", "wb") as stream:
        pacsv.write_csv(table, stream)
    with memory.open(f"{folder}/b.parquet", "wb") as stream:
        pq.write_table(table.slice(0, 5), stream)
    with memory.open(f"{folder}/c.jsonl", "wb") as stream:
        stream.write(b'{"id": 1, "amount": 2.5, "kind": "red", "ok": true}\n')
    spec = SourceSpec(name="mixed", format="folder", path=f"memory://{folder}")
    try:
        written = ingest(spec, raw, metadata)
    finally:
        memory.rm(f"/{namespace}", recursive=True)
    assert [w.batch.row_count for w in written] == [20, 5, 1]
    assert [w.batch.origin for w in written] == [
        f"memory://{folder}/{name}" for name in ("a.csv", "b.parquet", "c.jsonl")
    ]
    assert raw.read(written[1].batch.batch_id).equals(table.slice(0, 5))


def test_an_empty_file_in_a_folder_does_not_block_the_next_ones(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "1.csv").write_text("a,b\n")  # header only: nothing to keep
    write_csv(landing / "2.csv", numbers_table(5))
    spec = SourceSpec(name="landing", format="folder", path=str(landing), pattern="*.csv")
    (written,) = ingest(spec, raw, metadata)
    assert written.batch.row_count == 5 and written.batch.origin.endswith("2.csv")


def test_the_same_file_read_with_other_options_is_a_new_batch(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("shop;amount\na;1\nb;2\n")
    whole = SourceSpec(name="sales", format="csv", path=str(path), on_schema_change="allow")
    (first,) = ingest(whole, raw, metadata)
    assert first.created and [c["name"] for c in first.batch.schema] == ["shop;amount"]
    # Before: "already ingested", the one-column batch read with ',' came back.
    split = whole.model_copy(update={"delimiter": ";"})
    (second,) = ingest(split, raw, metadata)
    assert second.created and second.batch.batch_id != first.batch.batch_id
    assert [c["name"] for c in second.batch.schema] == ["shop", "amount"]
    (again,) = ingest(split, raw, metadata)  # the same options again: idempotent
    assert not again.created and again.batch.batch_id == second.batch.batch_id
    named = whole.model_copy(update={"delimiter": ";", "names": ["s", "n"]})
    (third,) = ingest(named, raw, metadata)
    assert third.created and third.batch.row_count == 3


def test_a_tsv_file_is_read_with_a_tab(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = tmp_path / "sales.tsv"
    path.write_text("shop\tamount\na\t1\nb\t2\n")
    (written,) = ingest(SourceSpec(name="sales", format="csv", path=str(path)), raw, metadata)
    assert [c["name"] for c in written.batch.schema] == ["shop", "amount"]
    assert raw.read(written.batch.batch_id).column("amount").to_pylist() == [1, 2]
