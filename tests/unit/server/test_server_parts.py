"""The server's parts on their own, with a servable that counts its calls: micro-batching,
the prediction cache, the metrics text, the prediction log's tables, errors as HTTP."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.config.settings import ServeSettings
from gristmill.errors import DataError, NotFoundError
from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.server.batching import MicroBatcher
from gristmill.server.cache import PredictionCache
from gristmill.server.http import (
    NotReadyError,
    TooLargeError,
    UnsupportedMediaError,
    error_body,
    status_of,
)
from gristmill.server.metrics import Metrics, QuietMetrics
from gristmill.server.models import RegistryModels
from gristmill.server.port import NumericColumns
from gristmill.server.prediction_log import PredictionLog

MANIFEST = ServableManifest(
    model="m",
    version=3,
    kind="onnx",
    reason="",
    digest="sha256:abc",
    bundle="b",
    pipeline=None,
    task="classification",
    output="probabilities",
    inputs=(InputColumn("x", "float64", nullable=False), InputColumn("color", "string")),
    classes=("no", "yes"),
)


class Counting:
    """Answers ``yes`` when x > 0; refuses a NaN x naming the column; counts its calls."""

    manifest = MANIFEST

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, columns: Mapping[str, Any]) -> Predictions:
        x = np.asarray(columns["x"], dtype=np.float64)
        if np.isnan(x).any():
            raise DataError("column 'x' may not be missing", column="x")
        self.calls.append(len(x))
        yes = (x > 0).astype(np.float64)
        values = np.where(x > 0, "yes", "no").astype(object)
        return Predictions(values, np.column_stack([1 - yes, yes]))

    def predict_features(self, columns: Mapping[str, Any]) -> Predictions:
        return self.predict(columns)


async def test_concurrent_rows_share_one_call_and_a_bad_row_fails_alone() -> None:
    servable = Counting()
    sizes: list[int] = []
    batcher = MicroBatcher(8, 0.005, lambda model, version, size: sizes.append(size))
    futures = [batcher.submit(servable, {"x": [v], "color": ["red"]}) for v in (1, -1, 2)]
    answers = await asyncio.gather(*futures)
    assert [a.values[0] for a in answers] == ["yes", "no", "yes"]
    assert servable.calls == [3] and sizes == [3]

    futures = [batcher.submit(servable, {"x": [v], "color": ["b"]}) for v in (1, None, -3)]
    done = await asyncio.gather(*futures, return_exceptions=True)
    assert isinstance(done[1], DataError) and done[1].column == "x"
    assert done[0].values[0] == "yes" and done[2].values[0] == "no"  # type: ignore[union-attr]


async def test_numeric_blocks_are_joined_as_one_block_in_request_order() -> None:
    seen: list[Mapping[str, Any]] = []

    class Recording(Counting):
        def predict(self, columns: Mapping[str, Any]) -> Predictions:
            seen.append(columns)
            return super().predict(columns)

    names = ("x", "color")
    blocks = [NumericColumns.of_rows(names, np.array([[v, 0.5]])) for v in (1.0, -2.0, 3.0)]
    batcher, servable = MicroBatcher(8, 0.005), Recording()
    answers = await asyncio.gather(*(batcher.submit(servable, b) for b in blocks))
    assert [a.values[0] for a in answers] == ["yes", "no", "yes"]
    (joined,) = seen
    assert type(joined) is NumericColumns and joined.names == names
    assert joined.matrix.flags.c_contiguous
    assert joined.matrix.tolist() == [[1.0, 0.5], [-2.0, 0.5], [3.0, 0.5]]
    assert list(joined["x"]) == [1.0, -2.0, 3.0]


async def test_a_lone_request_does_not_wait_and_a_full_batch_goes_at_once() -> None:
    servable = Counting()
    batcher = MicroBatcher(2, 10.0)  # a wait far longer than the test may take
    alone = await asyncio.wait_for(batcher.submit(servable, {"x": [1], "color": ["r"]}), 1)
    assert alone.values[0] == "yes"
    pair = [batcher.submit(servable, {"x": [v], "color": ["r"]}) for v in (1, 2)]
    await asyncio.wait_for(asyncio.gather(*pair), 1)
    assert servable.calls == [1, 2]


async def test_the_only_request_in_flight_is_scored_at_once_others_share_a_turn() -> None:
    servable = Counting()
    batcher = MicroBatcher(8, 0.005)
    batcher.in_flight = 1  # as http.InFlight counts: this request alone
    alone = batcher.submit(servable, {"x": [1], "color": ["r"]})
    assert alone.done() and alone.result().values[0] == "yes"  # no turn of the loop waited
    batcher.in_flight = 3
    futures = [batcher.submit(servable, {"x": [v], "color": ["r"]}) for v in (1, -1, 2)]
    assert not any(f.done() for f in futures)  # they wait for the loop's next turn, together
    await asyncio.gather(*futures)
    assert servable.calls == [1, 3]


def test_the_cache_keys_by_digest_and_row_and_forgets_the_oldest() -> None:
    cache = PredictionCache(size=2, ttl=60)
    answer = Predictions(np.array(["yes"], dtype=object))
    first = cache.key(MANIFEST, {"x": [1.0], "color": ["red"], "extra": [0]})
    assert first is not None
    cache.put(first, answer)
    assert cache.get(cache.key(MANIFEST, {"color": ["red"], "x": np.array([1.0])})) is answer
    other = cache.key(MANIFEST, {"x": [2.0], "color": ["red"]})
    newer = ServableManifest(**{**MANIFEST.__dict__, "digest": "sha256:def"})
    assert cache.get(cache.key(newer, {"x": [1.0], "color": ["red"]})) is None
    cache.put(other, answer)
    cache.put(cache.key(MANIFEST, {"x": [3.0], "color": ["red"]}), answer)
    assert len(cache) == 2 and cache.get(first) is None
    assert cache.key(MANIFEST, {"x": [[1, 2]], "color": ["red"]}) is None  # unhashable
    assert cache.key(MANIFEST, {"x": [1.0]}) is None  # a column missing


def test_metrics_are_prometheus_text_with_model_labels() -> None:
    metrics = Metrics()
    metrics.answered("m", 3, rows=2, seconds=0.0007)
    metrics.answered("m", 3, rows=1, seconds=0.02)
    metrics.failed("m", 3, seconds=0.0001, status=400)
    metrics.batched("m", 3, 5)
    metrics.cache_hit("m", 3)
    text = metrics.render()
    labels = 'model_name="m",model_version="3"'
    assert f"gristmill_requests_total{{{labels}" in text
    assert "# TYPE gristmill_request_latency_seconds histogram" in text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    requests = next(v for k, v in lines.items() if k.startswith("gristmill_requests_total"))
    errors = next(v for k, v in lines.items() if k.startswith("gristmill_errors_total"))
    assert (requests, errors) == ("3", "1")
    assert f'gristmill_errors_total{{{labels},process="{os.getpid()}",status="400"}} 1' in text
    bucket = next(k for k in lines if 'le="0.001"' in k and "latency" in k)
    assert lines[bucket] == "2"  # 0.0007 and 0.0001; 0.02 is above
    assert next(v for k, v in lines.items() if "latency_seconds_count" in k) == "3"


def test_quiet_metrics_count_nothing() -> None:
    quiet = RegistryModels(ServeSettings(metrics=False)).metrics
    assert isinstance(quiet, QuietMetrics) and quiet.windows is None
    quiet.answered("m", 3, rows=2, seconds=0.0007)
    quiet.failed("m", 3, seconds=0.0001, status=500)
    quiet.fell_back("m", 3)
    quiet.budget_missed("m", 3)
    assert not [line for line in quiet.render().splitlines() if not line.startswith("#")]
    assert type(RegistryModels(ServeSettings()).metrics) is Metrics


async def test_the_log_writes_parquet_rows_and_announces_each_file(tmp_path: Path) -> None:
    announced: list[Any] = []

    async def publish(events: list[Any]) -> None:
        announced.extend(events)

    log = PredictionLog(tmp_path, publish=publish)
    servable = Counting()
    for index, values in enumerate(([1.0, -1.0], [2.0])):
        columns = {"x": values, "color": ["r"] * len(values), "ignored": [0] * len(values)}
        log.record(f"r{index}", "native", MANIFEST, 0.002, columns, servable.predict(columns))
    await log.flush()
    table = pq.read_table(next((tmp_path / "m" / "3").glob("*.parquet"))).to_pylist()
    assert [(r["request_id"], r["row"], r["prediction"]) for r in table] == [
        ("r0", 0, "yes"),
        ("r0", 1, "no"),
        ("r1", 0, "yes"),
    ]
    assert table[1]["inputs"] == {"x": -1.0, "color": "r"}
    assert table[1]["probabilities"] == {"no": 1.0, "yes": 0.0}
    assert [e.payload["records"] for e in announced] == [2]
    assert announced[0].type == "predictions.logged"


async def test_the_log_joins_numeric_blocks_and_keeps_other_requests_apart(
    tmp_path: Path,
) -> None:
    log = PredictionLog(tmp_path)
    names = ("x", "y")
    blocks = [np.array([[1.0], [2.0]]), np.array([[3.0, 5.0], [4.0, 6.0]])]  # names by rows
    for index, block in enumerate(blocks):
        columns = NumericColumns(names, block)
        assert columns["y"].tolist() == block[1].tolist()
        answer = Predictions(np.arange(block.shape[1], dtype=np.float64) + 10 * index)
        log.record(f"b{index}", "native", MANIFEST, 0.001, columns, answer)
    plain = {"x": [7.0], "y": [8.0]}
    log.record("p", "mlflow", MANIFEST, 0.001, plain, Predictions(np.array([9.0])))
    await log.flush()
    assert log.written == 3 and not log._pending
    rows = [
        row
        for path in sorted((tmp_path / "m" / "3").glob("*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    seen = sorted((r["request_id"], r["row"], r["inputs"]["x"], r["inputs"]["y"]) for r in rows)
    assert seen == [
        ("b0", 0, 1.0, 2.0),
        ("b1", 0, 3.0, 4.0),
        ("b1", 1, 5.0, 6.0),
        ("p", 0, 7.0, 8.0),
    ]
    assert sorted(r["prediction"] for r in rows) == [0.0, 9.0, 10.0, 11.0]


def test_the_log_samples(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path, sample=0.0)
    log.record("r", "native", MANIFEST, 0.0, {}, Predictions(np.zeros(1)))
    assert not log._pending


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("no model named 'fish'"), 404),
        (DataError("column 'x' needs numbers", column="x", row=2), 400),
        (TooLargeError("too many rows"), 413),
        (UnsupportedMediaError("text/csv"), 415),
        (NotReadyError("starting"), 503),
        (RuntimeError("secret detail"), 500),
    ],
)
def test_errors_map_to_statuses_and_bodies_name_the_field(error: Exception, status: int) -> None:
    assert status_of(error) == status
    body = error_body(error, "req-1")
    if status == 500:
        assert "secret" not in body["error"] and "req-1" in body["error"]
    else:
        assert body["error"] == str(error)
    if isinstance(error, DataError) and error.column:
        assert body["field"] == "x" and body["row"] == 2


def test_every_protocol_is_mounted_over_the_same_models() -> None:
    from gristmill.config.settings import ServeSettings
    from gristmill.server.app import protocol_routes
    from gristmill.server.models import RegistryModels

    models = RegistryModels(ServeSettings(models=["birds"]))
    paths = [getattr(r, "path", "") for r in protocol_routes(models)]
    for path in ("/v1/models/{ref}/predict", "/v2/models/{name}/infer", "/invocations"):
        assert path in paths


async def test_a_forgotten_servable_leaves_no_queue_behind() -> None:
    servable = Counting()
    batcher = MicroBatcher(8, 0.0)
    await batcher.submit(servable, {"x": [1], "color": ["r"]})
    assert len(batcher._queues) == 1
    batcher.forget(servable)
    assert not batcher._queues


NUMERIC = ServableManifest(
    **{
        **MANIFEST.__dict__,
        "inputs": (InputColumn("a", "float64", nullable=False), InputColumn("b", "int64")),
    }
)


def test_numeric_rows_become_float_columns_and_odd_rows_take_the_general_path() -> None:
    from gristmill.server.protocols.native import _numeric_rows, _parsed

    rows = [{"a": 1.5, "b": 2, "extra": "x"}, {"a": 1, "b": None}, {"a": 3.0, "b": 4}]
    assert _numeric_rows(rows, NUMERIC) is None  # a null: the general path reads it
    _, columns = _parsed({"rows": rows}, NUMERIC, 100)
    assert set(columns) == {"a", "b"}
    assert columns["a"].dtype == np.float64 and columns["a"].flags.c_contiguous
    assert columns["a"].tolist() == [1.5, 1.0, 3.0]
    assert np.isnan(columns["b"][1]) and columns["b"][[0, 2]].tolist() == [2.0, 4.0]
    with pytest.raises(DataError) as missing:
        _parsed({"rows": [{"a": 1, "b": 2}, {"a": 2}]}, NUMERIC, 100)
    assert (missing.value.column, missing.value.row) == ("b", 1)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "takes numbers"),  # numpy would read 1.0
        ("3", "takes numbers"),  # numpy would read 3.0; JSON text is not a number
        ("abc", "takes numbers"),
        ([1], "takes numbers"),
        ({"x": 1}, "takes numbers"),
        (float("inf"), "finite"),
        (-float("inf"), "finite"),
    ],
)
def test_a_value_that_is_not_a_finite_number_is_refused_naming_column_and_row(
    value: Any, words: str
) -> None:
    from gristmill.server.protocols.native import _numeric_rows, _parsed

    rows = [{"a": 1, "b": 2}, {"a": value, "b": 3}]
    assert _numeric_rows(rows, NUMERIC) is None  # never read as a number by the fast path
    for body in ({"rows": rows}, {"columns": {"a": [1, value], "b": [2, 3]}}):
        with pytest.raises(DataError) as refused:
            _parsed(body, NUMERIC, 100)
        assert (refused.value.column, refused.value.row) == ("a", 1)
        assert words in str(refused.value)


def test_request_ids_are_unique_and_new_in_a_forked_child() -> None:
    import os

    from gristmill.server.http import new_request_id

    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    theirs = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert theirs.split("-")[0] != next(iter(ids)).split("-")[0]


def test_the_log_joins_typed_columns_and_keeps_other_records(tmp_path: Path) -> None:
    from gristmill.server.log_tables import grouped, table

    matrix = np.ascontiguousarray(np.array([[1.0, 2.0], [3.0, np.nan]]).T)
    answer = Predictions(np.array([0.0, 1.0]))
    records: list[Any] = [
        ("r0", "native", NUMERIC, 0.0, 0.001, {"a": matrix[0], "b": matrix[1]}, answer, False),
        ("r1", "native", NUMERIC, 0.0, 0.001, {"a": [5.0, 6.0], "b": [7, None]}, answer, False),
        ("r2", "native", NUMERIC, 0.0, 0.001, {"a": [1.0], "b": [1.0]}, answer, False),  # 1 for 2
    ]
    groups = grouped(records)
    assert [len(v) for v in groups.values()] == [2, 1]
    rows = table(("a", "b"), groups[("m", 3, ("a", "b"), False)]).to_pylist()
    assert [r["inputs"] for r in rows] == [
        {"a": 1.0, "b": 2.0},
        {"a": 3.0, "b": None},
        {"a": 5.0, "b": 7.0},
        {"a": 6.0, "b": None},
    ]


async def test_the_log_writes_numbers_plain_and_text_with_a_dictionary(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    names = ("x", "y")
    for index in range(3):
        columns = NumericColumns.of_rows(names, np.array([[1.0 + index, 2.0]]))
        log.record(f"r{index}", "native", MANIFEST, 0.001, columns, Predictions(np.array([1.0])))
    await log.flush()
    meta = pq.ParquetFile(next((tmp_path / "m" / "3").glob("*.parquet"))).metadata
    encodings = {
        meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
        for i in range(meta.num_columns)
    }
    assert not any("DICTIONARY" in e for e in encodings["inputs.x"])
    assert any("DICTIONARY" in e for e in encodings["request_id"])


def test_json_answers_carry_length_type_and_the_given_headers() -> None:
    from starlette.responses import Response

    from gristmill.server.http import JSONResponse

    headers = {"x-request-id": "r-1", "X-Gristmill-Model-Version": "3"}
    answer = JSONResponse({"predictions": [1]}, headers=headers)
    starlette = Response(answer.body, media_type="application/json", headers=headers)
    assert sorted(answer.raw_headers) == sorted(starlette.raw_headers)
    assert (b"content-length", b"%d" % len(b'{"predictions":[1]}')) in answer.raw_headers
    typed = JSONResponse({}, headers={"Content-Type": "application/problem+json"})
    assert [v for k, v in typed.raw_headers if k == b"content-type"] == [
        b"application/problem+json"
    ]
