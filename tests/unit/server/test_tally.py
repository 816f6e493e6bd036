"""Answered requests counted and logged in bulk (``AnswerTally``): every reader sees every
request answered before it read (``/metrics``, the serving windows, the log's write), each
request in the minute it ended, a log row per scored row with its own id and time, the same
figures as counting one request at a time, and a fold that fails never fails a request.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from time import perf_counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.metrics import Metrics
from gristmill.server.port import NumericColumns
from gristmill.server.prediction_log import PredictionLog
from gristmill.server.stats_windows import StatsWindows
from gristmill.server.tally import FOLD_EVERY, AnswerTally
from gristmill.testing.prediction_logs import manifest_of

NAMES = ("f0", "f1")
MINUTE = 29_000_000  # minutes since the epoch


def _manifest(version: int = 1) -> ServableManifest:
    return manifest_of("m", version, dict.fromkeys(NAMES, "float64"), classes=(0, 1))


def _request(index: int, rows: int = 1) -> tuple[NumericColumns, Predictions]:
    matrix = np.arange(rows * len(NAMES), dtype=np.float64).reshape(rows, len(NAMES)) + index
    values = np.full(rows, index % 2)
    probabilities = np.tile([0.25, 0.75], (rows, 1))
    return NumericColumns.of_rows(NAMES, matrix), Predictions(values, probabilities)


def _tally(clock: float | None = None) -> tuple[AnswerTally, Metrics, StatsWindows]:
    windows = StatsWindows("host-1-aa", None if clock is None else (lambda: clock))
    metrics = Metrics(windows)
    return AnswerTally(metrics), metrics, windows


def _answer(tally: AnswerTally, manifest: ServableManifest, index: int, **kw: float) -> None:
    columns, answer = _request(index, int(kw.get("rows", 1)))
    started = kw.get("started", perf_counter() - 0.002)
    seconds = kw.get("seconds", 0.002)
    tally.answered(
        manifest, 0, columns.rows, started, seconds, f"r{index}", "native", columns, answer
    )


def _series(metrics: Metrics, name: str) -> dict[str, float]:
    return {
        line.split("{")[1].split(",")[1]: float(line.rsplit(" ", 1)[1])
        for line in metrics.render().splitlines()
        if line.startswith(name + "{")
    }


def test_readers_see_every_request_answered_before_they_read() -> None:
    tally, metrics, windows = _tally()
    manifest = _manifest()
    for index in range(FOLD_EVERY + 10):  # one fold on the way, ten requests held
        _answer(tally, manifest, index, rows=1 + index % 3)
    assert len(tally) == 10
    requests = _series(metrics, "gristmill_requests_total")
    assert requests == {'model_version="1"': FOLD_EVERY + 10}
    rows = sum(1 + index % 3 for index in range(FOLD_EVERY + 10))
    assert _series(metrics, "gristmill_rows_total") == {'model_version="1"': rows}
    assert len(tally) == 0
    _answer(tally, manifest, 999)
    (copy,) = [window for _, _, window in windows.pending()]
    assert (copy.requests, copy.rows) == (FOLD_EVERY + 11, rows + 1)


def test_the_same_figures_as_one_request_at_a_time() -> None:
    tally, bulk, bulk_windows = _tally(MINUTE * 60 + 30)
    one = Metrics(StatsWindows("host-1-aa", lambda: MINUTE * 60 + 30))
    manifest = _manifest()
    latencies = [0.0004, 0.002, 0.002, 0.03, 0.7, 12.0, 0.0001]
    for index, seconds in enumerate(latencies):
        _answer(tally, manifest, index, seconds=seconds, started=perf_counter() - seconds)
        one.answered("m", 1, 1, seconds)
    assert bulk.render() == one.render()
    ((_, _, mine),) = bulk_windows.pending()
    assert one.windows is not None
    ((_, _, theirs),) = one.windows.pending()
    assert (mine.latency_buckets, mine.latency_min, mine.latency_max) == (
        theirs.latency_buckets,
        theirs.latency_min,
        theirs.latency_max,
    )
    assert mine.latency_sum == pytest.approx(theirs.latency_sum)


def test_each_request_counts_in_the_minute_it_ended() -> None:
    tally, _, windows = _tally(MINUTE * 60 + 20)  # 20 s into a minute
    manifest = _manifest()
    now = perf_counter()
    for index in range(3):  # ended 30 s ago: the minute before
        _answer(tally, manifest, index, started=now - 30.5, seconds=0.5)
    for index in range(3, 5):  # ended 5 s ago: this minute
        _answer(tally, manifest, index, started=now - 5.5, seconds=0.5)
    counted = {key[2]: copy.requests for key, _, copy in windows.pending()}
    assert counted == {MINUTE - 1: 3, MINUTE: 2}


def test_versions_and_revisions_are_counted_apart() -> None:
    tally, metrics, windows = _tally()
    one, two = _manifest(1), _manifest(2)
    for index in range(9):
        columns, answer = _request(index)
        manifest, revision = (one, 0) if index % 3 else (two, 4)
        started = perf_counter()
        tally.answered(manifest, revision, 1, started, 0.001, f"r{index}", "oip", columns, answer)
    assert _series(metrics, "gristmill_requests_total") == {
        'model_version="1"': 6,
        'model_version="2"': 3,
    }
    counted = {(key[1], key[3]): copy.requests for key, _, copy in windows.pending()}
    assert counted == {(1, 0): 6, (2, 4): 3}


async def test_the_log_gets_every_row_with_its_own_id_and_time(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path)
    tally, _, _ = _tally()
    tally.log = log
    manifest = _manifest()
    before = time.time()
    for index in range(FOLD_EVERY + 3):
        _answer(tally, manifest, index, rows=1 + index % 2)
    columns, answer = _request(7, 2)  # a row a filter step rejected: kept the general way
    rejected = Predictions(answer.values, answer.probabilities, np.array([False, True]))
    tally.answered(manifest, 0, 2, perf_counter(), 0.001, "odd", "mlflow", columns, rejected)
    await log.flush()  # folds first
    read = [pq.read_table(p).to_pylist() for p in sorted((tmp_path / "m" / "1").glob("*.parquet"))]
    rows = [row for part in read for row in part]
    expected_rows = sum(1 + i % 2 for i in range(FOLD_EVERY + 3)) + 2
    assert len(rows) == expected_rows
    by_id: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_id.setdefault(str(row["request_id"]), []).append(row)
    assert by_id["r5"][1]["inputs"] == {"f0": 7.0, "f1": 8.0}  # request 5's second row
    assert [r["prediction"] for r in by_id["r5"]] == [1, 1]
    assert [r["protocol"] for r in by_id["odd"]] == ["mlflow", "mlflow"]
    stamps = [row["at"].timestamp() for row in rows]  # type: ignore[attr-defined]
    assert before - 1 <= min(stamps) <= max(stamps) <= time.time() + 1


def test_a_fold_that_fails_never_fails_the_request(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Metrics):
        def add(self, *args: object) -> None:
            raise RuntimeError("a bug in counting")

    metrics = Broken(StatsWindows("host-1-aa"))
    tally = AnswerTally(metrics)
    manifest = _manifest()
    for index in range(FOLD_EVERY + 1):  # the last of FOLD_EVERY folds: it must not raise
        _answer(tally, manifest, index)
    assert f"could not count or log {FOLD_EVERY} answered request(s)" in caplog.text
    assert len(tally) == 1  # what came after is kept, and counted when it can be
    metrics.add = Metrics.add.__get__(metrics)  # type: ignore[method-assign]
    assert _series(metrics, "gristmill_requests_total") == {'model_version="1"': 1}


def test_a_numeric_request_keeps_only_its_arrays_until_the_fold() -> None:
    """Its own objects go when it is answered (as with monitoring off): nothing kept is an
    object the garbage collector tracks, so keeping answers never makes it run more."""
    tally, metrics, _ = _tally()
    manifest = _manifest()
    columns, answer = _request(1)
    seen = weakref.ref(answer)
    tally.answered(manifest, 0, 1, perf_counter(), 0.001, "r1", "native", columns, answer)
    del answer
    assert seen() is None
    odd_columns, odd = _request(2, 2)
    odd = Predictions(odd.values, odd.probabilities, np.array([True, False]))
    kept = weakref.ref(odd)
    tally.answered(manifest, 0, 2, perf_counter(), 0.001, "r2", "native", odd_columns, odd)
    del odd
    assert kept() is not None  # a request with rejected rows is kept whole, for the log
    assert _series(metrics, "gristmill_requests_total") == {'model_version="1"': 2}
    assert kept() is None
