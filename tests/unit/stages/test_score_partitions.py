"""A partition sent to another process carries its own rows, not the whole input."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest

from gristmill.execution.inline import InlineExecutor
from gristmill.execution.local import LocalExecutor
from gristmill.stages.score_jobs import _partition


def _input(rows: int, chunk: int) -> pa.Table:
    whole = pa.table({"x": pa.array(range(rows), pa.float64()), "k": [str(i) for i in range(rows)]})
    return pa.Table.from_batches(whole.to_batches(max_chunksize=chunk))


@pytest.mark.parametrize("chunk", [100_000, 30_000])
def test_a_partition_for_other_processes_pickles_only_its_rows(chunk: int) -> None:
    table = _input(100_000, chunk)
    whole = len(pickle.dumps(table))
    for index in range(4):  # inside one chunk, across two, the short last one
        part = _partition(table, index, 25_000, LocalExecutor(2))
        assert part.equals(table.slice(index * 25_000, 25_000))
        assert len(pickle.dumps(part)) < whole * 0.4  # a quarter of the rows, not all


def test_a_partition_scored_in_this_process_is_not_copied() -> None:
    table = _input(1_000, 300)
    part = _partition(table, 1, 400, InlineExecutor())
    assert part.equals(table.slice(400, 400))
    values = part.column("x").chunk(0).buffers()[1]
    assert values.address == table.column("x").chunk(1).buffers()[1].address  # a view
