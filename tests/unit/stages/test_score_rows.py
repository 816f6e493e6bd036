"""A partition's rows in and out: number columns fed to the servable as one block read from
Arrow (the same answers as one array per column), anything else the general way, and the
scores written in the score store's layout (ADR 25)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from palmerpenguins import load_penguins

from gristmill.backends.parquet.scores import ParquetScoreStore
from gristmill.servables.onnx_servable import OnnxServable
from gristmill.servables.port import InputColumn, NumericColumns
from gristmill.stages.score_jobs import PartitionWork, score_partition
from gristmill.stages.score_rows import numeric_block
from gristmill.testing.servables import MEASUREMENTS, numeric_servable

X, N = InputColumn("x", "float64"), InputColumn("n", "int64")


def test_number_columns_become_one_row_major_block_across_chunks() -> None:
    x = pa.chunked_array([[0.5, 1.5], [2.5]], pa.float64())
    n = pa.chunked_array([[7], [8, 9]], pa.int32())
    table = pa.table({"x": x, "n": n, "key": ["a", "b", "c"]}).slice(1)  # an offset too
    block = numeric_block(table, [X, N])
    assert isinstance(block, NumericColumns) and block.names == ("x", "n")
    assert block.matrix.tolist() == [[1.5, 8.0], [2.5, 9.0]]
    assert block.matrix.flags.c_contiguous


@pytest.mark.parametrize(
    ("values", "declared"),
    [
        (pa.array([1.0, None]), X),  # a gap: the servable says whether it may be missing
        (pa.array([1.0, float("inf")]), X),  # named the general way
        (pa.array([1.0, float("nan")]), X),
        (pa.array(["1.0", "2.0"]), X),  # text that a CSV held
        (pa.array([True, False]), InputColumn("x", "bool")),
        (pa.array([1.0, 2.0]), InputColumn("x", "string")),
    ],
)
def test_anything_but_finite_numbers_goes_the_general_way(
    values: pa.Array, declared: InputColumn
) -> None:
    assert numeric_block(pa.table({"x": values}), [declared]) is None


@pytest.fixture(scope="module")
def servable() -> OnnxServable:
    return numeric_servable()


def _rows(servable: OnnxServable) -> pa.Table:
    frame = load_penguins().dropna(subset=MEASUREMENTS).reset_index(drop=True).head(40)
    names = [c.name for c in servable.manifest.inputs]
    table = pa.Table.from_pandas(frame[names], preserve_index=False)
    keys = pa.array([f"p{i:04d}" for i in range(len(frame))])
    return table.append_column("penguin_id", keys)


def _work(servable: OnnxServable, table: pa.Table, tmp_path: Path, index: int) -> PartitionWork:
    store = ParquetScoreStore(str(tmp_path / "scores"))
    return PartitionWork(
        "job", "m", 1, index, 100 * index, "in.parquet", table, "raw", ("penguin_id",),
        servable, store, 40, keep_scores=True,
    )  # fmt: skip


def test_a_block_and_columns_score_alike_and_write_layout_2(
    servable: OnnxServable, tmp_path: Path
) -> None:
    table = _rows(servable)
    names = [c.name for c in servable.manifest.inputs]
    assert numeric_block(table, servable.manifest.inputs) is not None
    by_block = score_partition(_work(servable, table, tmp_path, 0))
    loose = servable.predict({n: table.column(n).to_numpy() for n in names})
    assert by_block.written and by_block.table is not None
    scores = by_block.table.to_pandas()
    assert np.array_equal(
        scores[[f"p_{c}" for c in servable.manifest.classes or ()]], loose.probabilities
    )  # type: ignore[arg-type]
    assert scores["prediction"].tolist() == loose.values.tolist()
    written = pq.read_table(tmp_path / "scores" / "job" / "part-00000.parquet")
    assert written.column_names == [
        "job_id", "model", "version", "input_id", "row", "penguin_id", "prediction",
        *(f"p_{c}" for c in servable.manifest.classes or ()),
    ]  # fmt: skip
    for constant in ("job_id", "model", "input_id"):  # one value, stored once
        assert pa.types.is_dictionary(written.schema.field(constant).type)
    assert set(written.column("input_id").to_pylist()) == {"in.parquet"}
    assert written.column("row").to_pylist() == list(range(40))


def test_a_value_that_is_not_finite_is_a_bad_row_and_the_rest_is_scored(
    servable: OnnxServable, tmp_path: Path
) -> None:
    table = _rows(servable)
    name = servable.manifest.inputs[0].name
    values = table.column(name).to_numpy().copy()
    values[3] = np.inf
    table = table.set_column(table.column_names.index(name), name, pa.array(values))
    result = score_partition(_work(servable, table, tmp_path, 2))
    assert (result.rows, result.bad_rows) == (39, 1)
    assert result.bad[0]["row"] == 203 and result.bad[0]["key"] == "penguin_id=p0003"
    assert result.table is not None and 203 not in result.table.column("row").to_pylist()


NO_PANDAS = """
import sys
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

from gristmill.servables.port import InputColumn, Predictions
from gristmill.stages.score_rows import LAYOUT, numeric_block, scores_table

x = pa.Array.from_buffers(pa.float64(), 3, [None, pa.py_buffer(np.arange(3.0))])
table = pa.Table.from_arrays([x], names=["x"])
assert numeric_block(table, [InputColumn("x", "float64")]) is not None
manifest = SimpleNamespace(classes=(0, 1))
work = SimpleNamespace(job_id="j", model="m", version=1, input_id="in", first_row=0,
                       layout=LAYOUT, keys=("x",), table=table,
                       servable=SimpleNamespace(manifest=manifest))
answer = Predictions(np.array([0, 1, 1]), np.full((3, 2), 0.5), np.zeros(3, bool))
scores = scores_table(work, np.arange(3), [answer])
assert scores["p_1"].to_pylist() == [0.5] * 3 and scores["rejected"].to_pylist() == [False] * 3
print("pandas" in sys.modules)
"""


def test_numbers_in_and_scores_out_need_no_pandas() -> None:
    """pyarrow imports pandas for ``pa.array`` and ``to_numpy`` (a third of a second of a
    score job's start); a partition of numbers is read and written without them."""
    done = subprocess.run(
        [sys.executable, "-c", NO_PANDAS], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False", done.stderr
