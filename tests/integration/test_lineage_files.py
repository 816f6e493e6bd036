"""A file is one lineage node however its path was written: a folder's file, a source's
``path``, a relative ``--file`` and a score job's input all name it by its absolute path,
and edges written before that (``file:///abs/path``) meet it in the same node."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.backends.parquet.raw import ParquetRawStore
from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.sources import SourceSpec
from gristmill.ingestion.ingest import ingest
from gristmill.stores.lineage import file_node, file_spellings, lineage_graph
from gristmill.stores.metadata import LineageEdge
from gristmill.testing.cli import run_cli_here


def nodes(edges: list[LineageEdge], kind: str = "file") -> set[str]:
    return {e.parent_id for e in edges if e.parent_kind == kind} | {
        e.child_id for e in edges if e.child_kind == kind
    }


def test_file_node_is_the_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute = str(tmp_path.resolve() / "data" / "a.csv")
    for written in ("data/a.csv", "./data/../data/a.csv", absolute, f"file://{absolute}"):
        assert file_node(written) == absolute, written
    assert file_node(f"file://localhost{absolute}") == absolute
    assert file_node("s3://bucket/a.csv") == "s3://bucket/a.csv"
    assert file_node("https://ann:s3cret@host/a.csv") == "https://ann:***@host/a.csv"
    assert file_spellings(absolute) == [absolute, f"file://{absolute}"]
    assert file_spellings("churn/3") == ["churn/3"]


def test_a_file_read_three_ways_is_one_node(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raw: ParquetRawStore,
    metadata: SqlMetadataStore,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("id,x\n1,2.5\n2,3.5\n")
    monkeypatch.chdir(tmp_path)
    absolute = str((folder / "a.csv").resolve())
    by_folder = SourceSpec(name="birds", format="folder", path=str(folder), pattern="*.csv")
    by_path = SourceSpec(name="birds", format="csv", path=absolute)
    (first,) = ingest(by_folder, raw, metadata)  # fsspec names it file:///…/a.csv
    ingest(by_path, raw, metadata)
    ingest(by_path, raw, metadata, file="data/a.csv")  # a relative --file

    down = lineage_graph(metadata.lineage, "source:birds").descendants
    assert nodes(down) == {absolute}
    (edge,) = metadata.lineage.parents(first.batch.batch_id)
    assert (edge.parent_id, edge.parent_kind) == (absolute, "file")


def test_edges_written_before_meet_the_new_ones(
    tmp_path: Path, raw: ParquetRawStore, metadata: SqlMetadataStore
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,x\n1,2.5\n")
    absolute = str(path.resolve())
    old = f"file://{absolute}"  # how a folder source's file was recorded before
    metadata.lineage.add_edges(
        [
            LineageEdge("source:birds", "source", old, "file", "provided"),
            LineageEdge(old, "file", "batch-old", "raw_batch", "ingested_from"),
        ]
    )
    (new,) = ingest(SourceSpec(name="birds", format="csv", path=absolute), raw, metadata)

    down = lineage_graph(metadata.lineage, "source:birds").descendants
    assert nodes(down) == {absolute}
    assert [e.child_id for e in down if e.parent_kind == "source"] == [absolute]
    assert nodes(down, "raw_batch") == {"batch-old", new.batch.batch_id}
    for asked in (absolute, old):
        up, below = lineage_graph(metadata.lineage, asked)
        assert nodes(up, "source") == {"source:birds"}
        assert nodes(below, "raw_batch") == {"batch-old", new.batch.batch_id}


def test_gristmill_lineage_finds_a_file_by_any_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "data").mkdir()
    absolute = str((tmp_path / "data" / "a.csv").resolve())  # deleted since: never made
    with SqlMetadataStore(f"sqlite:///{home / 'metadata.db'}") as metadata:
        metadata.lineage.add_edges(
            [LineageEdge(f"file://{absolute}", "file", "batch-old", "raw_batch", "ingested_from")]
        )
    for asked in ("data/a.csv", absolute, f"file://{absolute}"):
        code, out, err = run_cli_here(
            "--home", str(home), "lineage", asked, cwd=tmp_path, monkeypatch=monkeypatch,
            capsys=capsys,
        )  # fmt: skip
        assert code == 0, err
        assert out.splitlines()[0] == absolute, out
        assert f"raw_batch batch-old ← file {absolute}" in out
