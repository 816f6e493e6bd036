"""Batch score jobs on real stores: a file, a raw batch and a feature set scored by
partition with the version's own pipeline, bad rows named, a job asked again writing
nothing twice, and the lineage from raw batch to scores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.errors import ConfigError, DataError, NotFoundError
from gristmill.execution.inline import InlineExecutor
from gristmill.features.stores import FeatureStores
from gristmill.runtime.wiring import build_score_store, open_stores
from gristmill.servables import load_servable
from gristmill.stages.score_jobs import run_score_job
from gristmill.stores.lineage import lineage_graph
from gristmill.stores.models import ModelVersion
from gristmill.stores.scores import ScoreJob
from gristmill.testing.registered import penguins, train_penguins

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ModelVersion, Path]:
    import asyncio

    folder = tmp_path_factory.mktemp("scoring")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    version = asyncio.run(train_penguins(settings, folder))
    return settings, version, folder


@pytest.fixture
def stores(trained: tuple[Settings, ModelVersion, Path]) -> Iterator[FeatureStores]:
    with open_stores(trained[0]) as opened:
        yield opened


def new_job(model: str, source: str) -> ScoreJob:
    from gristmill.core.ids import new_id

    return ScoreJob(new_id(), model, source, "queued", datetime.now(UTC))


def score(settings: Settings, stores: FeatureStores, job: ScoreJob, rows: int = 50) -> ScoreJob:
    stores.metadata.score_jobs.add_job(job)
    executor = InlineExecutor()
    executor.open()
    return run_score_job(job, stores, build_score_store(settings), executor, partition_rows=rows)


def test_a_file_is_scored_by_partition_as_the_servable_answers(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores, tmp_path: Path
) -> None:
    settings, _, _ = trained
    frame = penguins().drop(columns=["species"])
    path = tmp_path / "birds.parquet"
    frame.to_parquet(path)
    done = score(settings, stores, new_job("penguins_logreg", str(path)))

    assert (done.state, done.version, done.input_kind) == ("succeeded", 1, "file")
    assert (done.partitions_total, done.partitions_done) == (7, 7)  # 344 rows by 50
    assert (done.rows, done.bad_rows) == (len(frame), 0)
    assert stores.metadata.score_jobs.get_job(done.job_id) == done
    table = build_score_store(settings).read(done.job_id).to_pandas()
    assert table["row"].tolist() == list(range(len(frame)))
    assert set(table["job_id"]) == {done.job_id} and set(table["version"]) == {1}
    assert table["penguin_id"].tolist() == frame["penguin_id"].tolist()
    servable = load_servable(stores, "penguins_logreg", 1)
    expected = servable.predict(
        {c.name: frame[c.name].to_numpy() for c in servable.manifest.inputs}
    )
    assert table["prediction"].tolist() == list(expected.values)
    assert expected.probabilities is not None
    for number, label in enumerate(servable.manifest.classes or ()):
        assert np.allclose(table[f"p_{label}"], expected.probabilities[:, number])


def test_a_scored_file_is_in_lineage_as_the_node_ingestion_gives_it(
    trained: tuple[Settings, ModelVersion, Path],
    stores: FeatureStores,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, _, _ = trained
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "birds.csv"
    penguins().drop(columns=["species"]).to_csv(path, index=False)
    monkeypatch.chdir(tmp_path)
    done = score(settings, stores, new_job("penguins_logreg", "in/birds.csv"), rows=500)
    parents = {(e.parent_id, e.parent_kind) for e in stores.metadata.lineage.parents(done.job_id)}
    assert parents == {(str(path.resolve()), "file"), ("penguins_logreg/1", "model_version")}


def test_bad_rows_are_counted_and_named_and_the_rest_scored(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores, tmp_path: Path
) -> None:
    settings, _, _ = trained
    frame = penguins().drop(columns=["species"])
    frame["bill_length_mm"] = frame["bill_length_mm"].astype(object)
    frame.loc[[5, 120], "bill_length_mm"] = "long"
    path = tmp_path / "birds.csv"
    frame.to_csv(path, index=False)
    done = score(settings, stores, new_job("penguins_logreg@champion", str(path)))

    assert done.state == "succeeded"
    assert (done.rows, done.bad_rows) == (len(frame) - 2, 2)
    assert [(e["row"], e["key"]) for e in done.errors] == [
        (5, "penguin_id=p0005"),
        (120, "penguin_id=p0120"),
    ]
    assert "bill_length_mm" in done.errors[0]["error"]
    assert "row 120 holds 'long'" in done.errors[1]["error"]  # the job's row, not the piece's
    table = build_score_store(settings).read(done.job_id)
    assert sorted(set(range(len(frame))) - set(table["row"].to_pylist())) == [5, 120]


def test_a_raw_batch_and_a_feature_set_are_scored_and_linked_in_lineage(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores
) -> None:
    settings, version, _ = trained
    (batch,) = stores.raw.list()
    by_batch = score(settings, stores, new_job("penguins_logreg/1", f"batch:{batch.batch_id}"))
    assert (by_batch.input_kind, by_batch.rows) == ("batch", batch.row_count)
    (feature_set,) = stores.metadata.feature_sets.list_feature_sets()
    by_features = score(settings, stores, new_job("penguins_logreg", "feature_set:penguins_v1"))
    assert (by_features.input_kind, by_features.rows) == ("feature_set", feature_set.row_count)

    store = build_score_store(settings)
    raw_scores = store.read(by_batch.job_id).to_pandas()
    # a raw row is named by its batch and number, a feature set's row by its _row_id
    # (the same identity: `<first batch>:<row>`, ADR 8 and 25)
    raw_scores.index = raw_scores["input_id"].astype(str) + ":" + raw_scores["row"].astype(str)
    assert set(raw_scores["input_id"]) == {batch.batch_id}
    feature_scores = store.read(by_features.job_id).to_pandas().set_index("_row_id")
    assert set(feature_scores["input_id"]) == {feature_set.feature_set_id}
    assert raw_scores.loc[feature_scores.index, "prediction"].tolist() == (
        feature_scores["prediction"].tolist()
    )  # the version's own pipeline on raw rows = the learner on its own features

    ancestors = lineage_graph(stores.metadata.lineage, by_features.job_id).ancestors
    nodes = {(e.parent_kind, e.parent_id) for e in ancestors}
    assert ("model_version", version.ref) in nodes
    assert ("candidate", version.candidate_id) in nodes
    assert ("feature_set", feature_set.feature_set_id) in nodes
    assert ("raw_batch", batch.batch_id) in nodes


def test_a_job_asked_again_writes_no_partition_twice_and_hides_until_committed(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores, tmp_path: Path
) -> None:
    settings, _, _ = trained
    path = tmp_path / "birds.csv"
    penguins().to_csv(path, index=False)
    store = build_score_store(settings)
    job = new_job("penguins_logreg", str(path))
    first = score(settings, stores, job)
    partitions = {
        p.name: p.stat().st_mtime_ns for p in Path(first.location or "").glob("part-*.parquet")
    }
    again = score(settings, stores, replace(job, state="queued"))
    assert again.rows == first.rows == 344
    assert {
        p.name: p.stat().st_mtime_ns for p in Path(again.location or "").glob("part-*.parquet")
    } == partitions
    (Path(first.location or "") / "_manifest.json").unlink()  # as if killed before the end
    with pytest.raises(NotFoundError, match="no committed scores"):
        store.read(job.job_id)


@pytest.mark.parametrize(
    ("model", "source", "error", "message"),
    [
        ("nobody", "{file}", NotFoundError, "no model named 'nobody'"),
        ("penguins_logreg/9", "{file}", NotFoundError, "no version 9"),
        ("penguins_logreg", "missing.csv", ConfigError, "no file missing.csv"),
        ("penguins_logreg", "{folder}/birds.txt", ConfigError, "cannot score"),
        ("penguins_logreg", "{thin}", DataError, "lacks column"),
    ],
)
def test_wrong_inputs_fail_the_job_naming_the_thing(
    trained: tuple[Settings, ModelVersion, Path],
    stores: FeatureStores,
    tmp_path: Path,
    model: str,
    source: str,
    error: type[Exception],
    message: str,
) -> None:
    settings, _, _ = trained
    file = tmp_path / "birds.csv"
    penguins().to_csv(file, index=False)
    thin = tmp_path / "thin.csv"
    penguins().drop(columns=["island"]).to_csv(thin, index=False)
    (tmp_path / "birds.txt").write_text("x")
    job = new_job(model, source.format(file=file, folder=tmp_path, thin=thin))
    with pytest.raises(error, match=message):
        score(settings, stores, job)
    recorded = stores.metadata.score_jobs.get_job(job.job_id)
    assert recorded.state == "failed" and message.split("'", maxsplit=1)[0] in (
        recorded.error or ""
    )


def test_a_stopped_job_finishes_with_the_version_and_cut_it_began_with(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores, tmp_path: Path
) -> None:
    settings, version, _ = trained
    path = tmp_path / "birds.csv"
    penguins().to_csv(path, index=False)
    job = new_job("penguins_logreg@scoring", str(path))
    registry = stores.metadata.registry
    registry.set_alias(version.model, "scoring", version.version)
    first = score(settings, stores, job, rows=50)  # 7 partitions of 50 rows
    folder = Path(first.location or "")
    (folder / "_manifest.json").unlink()  # as if killed after 3 partitions
    for index in range(3, 7):
        (folder / f"part-{index:05d}.parquet").unlink()
    stores.metadata.score_jobs.save_job(replace(first, state="running", finished_at=None))
    # meanwhile the alias leaves the version, and the setting changes the cut
    registry.remove_alias(version.model, "scoring")
    executor = InlineExecutor()
    executor.open()
    again = run_score_job(
        replace(job, state="queued"), stores, build_score_store(settings), executor,
        partition_rows=100,
    )  # fmt: skip
    assert (again.state, again.version, again.partitions_total) == ("succeeded", 1, 7)
    rows = build_score_store(settings).read(job.job_id)["row"].to_pylist()
    assert sorted(rows) == list(range(344))  # every row once, none lost to a new cut


def _as_before_layout_2(part: Path) -> None:
    """Rewrite a partition as written before ADR 25: its stats without a layout."""
    table = pq.read_table(part)
    metadata = dict(table.schema.metadata or {})
    stats = json.loads(metadata[b"gristmill.partition"])
    del stats["layout"]
    metadata[b"gristmill.partition"] = json.dumps(stats).encode()
    pq.write_table(table.replace_schema_metadata(metadata), part)


def test_a_job_begun_in_the_old_layout_finishes_in_it(
    trained: tuple[Settings, ModelVersion, Path],
    stores: FeatureStores,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, _, _ = trained
    path = tmp_path / "birds.parquet"
    penguins().drop(columns=["species"]).to_parquet(path)
    job = new_job("penguins_logreg", str(path))
    with monkeypatch.context() as patched:
        patched.setattr("gristmill.stages.score_jobs.LAYOUT", 1)
        first = score(settings, stores, job)
    folder = Path(first.location or "")
    (folder / "_manifest.json").unlink()  # stopped after 3 partitions, before ADR 25
    for index in range(7):
        part = folder / f"part-{index:05d}.parquet"
        if index < 3:
            _as_before_layout_2(part)
        else:
            part.unlink()
    again = score(settings, stores, replace(job, state="queued"))
    assert (again.state, again.rows) == ("succeeded", 344)
    store = build_score_store(settings)
    assert store.manifest(job.job_id)["layout"] == 1  # type: ignore[index]
    shapes = {t.schema.remove_metadata() for t in store.partitions(job.job_id)}
    (schema,) = shapes  # one schema for the whole job: the old one
    assert "row_id" in schema.names and "input_id" not in schema.names
    assert schema.field("job_id").type == pa.string()
    table = store.read(job.job_id)
    assert table["row_id"].to_pylist() == [f"{path}:{i}" for i in range(344)]


def test_the_sink_is_given_each_partition_scored_in_order(
    trained: tuple[Settings, ModelVersion, Path], stores: FeatureStores, tmp_path: Path
) -> None:
    settings, _, _ = trained
    path = tmp_path / "birds.parquet"
    penguins().drop(columns=["species"]).to_parquet(path)
    job = new_job("penguins_logreg", str(path))
    stores.metadata.score_jobs.add_job(job)
    given: list[tuple[int, pa.Table]] = []
    executor = InlineExecutor()
    executor.open()
    store = build_score_store(settings)
    done = run_score_job(
        job, stores, store, executor, partition_rows=100,
        sink=lambda index, table: given.append((index, table)),
    )  # fmt: skip
    assert [i for i, _ in given] == [0, 1, 2, 3] == store.manifest(done.job_id)["partitions"]  # type: ignore[index]
    assert pa.concat_tables([t for _, t in given]).equals(store.read(done.job_id))
