"""The Parquet score store on any fsspec filesystem: a partition is committed once, a job is
seen only through its manifest, and the store pickles as its root (executor tasks carry it)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa
import pytest

from gristmill.backends.parquet.scores import ParquetScoreStore
from gristmill.core.ids import new_id
from gristmill.errors import NotFoundError


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ParquetScoreStore:
    root = str(tmp_path / "scores") if request.param == "file" else f"memory://{new_id()}"
    return ParquetScoreStore(root)


def part(start: int, rows: int = 3) -> pa.Table:
    return pa.table({"row": list(range(start, start + rows)), "prediction": ["a"] * rows})


def test_partitions_are_committed_once_with_their_stats(store: ParquetScoreStore) -> None:
    assert store.committed("job") == {}
    assert store.write_partition("job", 0, part(0), {"rows": 3, "bad_rows": 0})
    assert not store.write_partition("job", 0, part(100), {"rows": 3, "bad_rows": 9})
    assert store.write_partition("job", 1, part(3), {"rows": 3, "bad_rows": 1})
    assert store.committed("job") == {
        0: {"rows": 3, "bad_rows": 0},
        1: {"rows": 3, "bad_rows": 1},
    }


def test_a_job_is_read_only_once_its_manifest_is_written(store: ParquetScoreStore) -> None:
    store.write_partition("job", 1, part(3), {})
    store.write_partition("job", 0, part(0), {})
    with pytest.raises(NotFoundError, match="no committed scores"):
        store.read("job")
    assert store.manifest("job") is None
    where = store.commit("job", {"partitions": [0, 1], "rows": 6})
    assert where.endswith("job/_manifest.json")
    assert store.manifest("job") == {"partitions": [0, 1], "rows": 6}
    assert store.read("job")["row"].to_pylist() == list(range(6))


def test_the_store_pickles_as_its_root(store: ParquetScoreStore) -> None:
    store.committed("job")  # opens its filesystem
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == store.root and copy._fs is None
