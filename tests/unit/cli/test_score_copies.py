"""``gristmill score --out``: the copy streamed as partitions are scored and put in place at
the end, or made from the committed job when it cannot be streamed; never a half file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gristmill.backends.parquet.scores import ParquetScoreStore
from gristmill.cli.score_copies import ScoresCopy
from gristmill.stores.scores import ScoreJob


def part(start: int, rows: int = 3) -> pa.Table:
    return pa.table({"row": list(range(start, start + rows)), "p_a": [0.5] * rows})


def committed(tmp_path: Path, partitions: int) -> tuple[ParquetScoreStore, ScoreJob]:
    store = ParquetScoreStore(str(tmp_path / "scores"))
    for index in range(partitions):
        store.write_partition("job", index, part(3 * index), {})
    store.commit("job", {"partitions": list(range(partitions))})
    job = ScoreJob(
        "job", "m", "in.csv", "succeeded", datetime.now(UTC), partitions_total=partitions
    )
    return store, job


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_partitions_taken_in_order_are_the_copy(tmp_path: Path, suffix: str) -> None:
    store, job = committed(tmp_path, 2)
    out = tmp_path / f"scores{suffix}"
    copy = ScoresCopy(str(out))
    copy.take(0, part(0))
    copy.take(1, part(3))
    assert not out.exists()  # in place only once the job is committed
    (Path(store.root) / "job" / "part-00000.parquet").unlink()  # never read back
    copy.finish(store, job)
    if suffix == ".parquet":
        assert pq.read_table(out)["row"].to_pylist() == list(range(6))
    else:
        assert len(out.read_text().splitlines()) == 6 + (suffix == ".csv")
    assert leftovers(tmp_path) == []


def test_a_gap_or_another_shape_is_copied_from_the_committed_job(tmp_path: Path) -> None:
    store, job = committed(tmp_path, 3)
    gap = ScoresCopy(str(tmp_path / "gap.parquet"))
    gap.take(1, part(3))  # partition 0 was committed by an earlier run
    gap.take(2, part(6))
    gap.finish(store, job)
    assert pq.read_table(tmp_path / "gap.parquet")["row"].to_pylist() == list(range(9))
    shaped = ScoresCopy(str(tmp_path / "shaped.parquet"))
    shaped.take(0, part(0))
    shaped.take(1, pa.table({"row": pa.array([], pa.int64())}))  # every row of it bad
    shaped.finish(store, job)
    assert pq.read_table(tmp_path / "shaped.parquet")["row"].to_pylist() == list(range(9))
    assert leftovers(tmp_path) == []


def test_a_job_that_fails_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "scores.parquet"
    copy = ScoresCopy(str(out))
    copy.take(0, part(0))
    assert leftovers(tmp_path)
    copy.discard()
    assert not out.exists() and leftovers(tmp_path) == []
