"""Numeric requests kept as columns make the very table the general way makes of them.

``BlockColumns.table`` against ``log_tables.table`` over the same requests (one row and
many, classes as numbers and as text, shadows, a buffer that grows), and the prediction
log writing both kinds of request of one version to files whose rows read back the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.server.log_columns import BlockColumns, NumericAnswers
from gristmill.server.log_tables import table
from gristmill.server.port import NumericColumns
from gristmill.server.prediction_log import PredictionLog

NAMES = ("f0", "f1", "f2")


def _manifest(classes: tuple[object, ...] | None) -> ServableManifest:
    return ServableManifest(
        model="m",
        version=2,
        kind="onnx",
        reason="converted",
        digest="sha256:abc",
        bundle="b",
        pipeline=None,
        task="classification" if classes else "regression",
        output="class" if classes else "number",
        inputs=tuple(InputColumn(n, "float64") for n in NAMES),
        classes=classes,
    )


def _requests(classes: tuple[object, ...] | None, count: int) -> list[tuple]:  # type: ignore[type-arg]
    """``count`` requests of 1 to 4 rows: id, protocol, seconds, block, answer, shadow."""
    rng = np.random.default_rng(7)
    made = []
    for index in range(count):
        rows = 1 + index % 4
        block = rng.normal(size=(len(NAMES), rows))
        if classes is None:
            answer = Predictions(rng.normal(size=rows))
        else:
            picked = rng.integers(0, len(classes), size=rows)
            values = np.array([classes[i] for i in picked])
            probabilities = rng.dirichlet(np.ones(len(classes)), size=rows)
            answer = Predictions(values, probabilities)
        made.append(
            (
                f"r{index}",
                "native" if index % 3 else "oip",
                0.001 * index,
                block,
                answer,
                index % 5 == 0,
            )
        )
    return made


@pytest.mark.parametrize("classes", [(0, 1), ("Adelie", "Chinstrap", "Gentoo"), None])
def test_columns_make_the_general_table(classes: tuple[object, ...] | None) -> None:
    manifest = _manifest(classes)
    kept = BlockColumns(manifest, NAMES)
    records = []
    for rid, protocol, seconds, block, answer, shadow in _requests(classes, 300):  # grows
        assert kept.add(rid, protocol, seconds, block, answer, shadow)
        records.append(
            (rid, protocol, manifest, 0.0, seconds, NumericColumns(NAMES, block), answer, shadow)
        )
    made = kept.table()
    general = table(NAMES, records)
    assert made.schema == general.schema
    # the times are taken when each request is kept: all but ``at`` equal
    assert made.drop_columns(["at"]).equals(general.drop_columns(["at"]))
    assert made.num_rows == sum(1 + i % 4 for i in range(300))


def test_what_does_not_fit_is_refused_and_nothing_kept() -> None:
    manifest = _manifest((0, 1))
    kept = BlockColumns(manifest, NAMES)
    block = np.ones((len(NAMES), 2))
    good = Predictions(np.array([0, 1]), np.array([[0.5, 0.5], [0.1, 0.9]]))
    assert kept.add("a", "native", 0.1, block, good, False)
    rejected = Predictions(np.array([0, 1]), good.probabilities, rejected=np.array([False, True]))
    without = Predictions(np.array([0, 1]))
    text = Predictions(np.array(["0", "1"]), good.probabilities)
    for answer in (rejected, without, text):
        assert not kept.add("b", "native", 0.1, block, answer, False)
    assert (kept.requests, kept.rows, kept.ids) == (1, 2, ["a"])


async def test_the_log_writes_kept_columns_and_general_records_alike(tmp_path: Path) -> None:
    manifest = _manifest((0, 1))
    log = PredictionLog(tmp_path)
    block = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    answer = Predictions(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    log.record("kept", "native", manifest, 0.002, NumericColumns(NAMES, block), answer)
    rejected = Predictions(answer.values, answer.probabilities, rejected=np.array([False, True]))
    log.record("general", "native", manifest, 0.002, NumericColumns(NAMES, block), rejected)
    await log.flush()
    assert log.written == 2
    files = sorted((tmp_path / "m" / "2").glob("*.parquet"))
    assert len(files) == 2  # one per kind of record, same columns
    read = [pq.read_table(path) for path in files]
    assert read[0].schema == read[1].schema
    rows = sorted(
        (r["request_id"], r["row"], r["inputs"]["f1"], r["prediction"])
        for t in read
        for r in t.to_pylist()
    )
    assert rows == [
        ("general", 0, 3.0, 0),
        ("general", 1, 4.0, 1),
        ("kept", 0, 3.0, 0),
        ("kept", 1, 4.0, 1),
    ]


def test_many_requests_are_kept_all_or_none() -> None:
    manifest = _manifest((0, 1))
    kept = BlockColumns(manifest, NAMES)
    requests = _requests((0, 1), 40)
    ids, protocols, seconds, blocks, answers, _ = zip(*requests, strict=True)
    at = np.full(len(ids), 1.7e9)
    latency = np.asarray(seconds)
    values = [answer.values for answer in answers]
    probabilities = [answer.probabilities for answer in answers]
    odd = list(probabilities)
    odd[17] = None  # one answer without probabilities
    broken = NumericAnswers(ids, protocols, at, latency, blocks, values, odd)
    assert not kept.add_many(broken, 0.0, False)
    assert (kept.requests, kept.rows) == (0, 0)
    whole = NumericAnswers(ids, protocols, at, latency, blocks, values, probabilities)
    assert kept.add_many(whole, 0.0, False)
    one_by_one = BlockColumns(manifest, NAMES)
    for rid, protocol, took, block, answer, _ in requests:
        assert one_by_one.add(rid, protocol, took, block, answer, False)
    made, expected = kept.table(), one_by_one.table()
    assert made.drop_columns(["at"]).equals(expected.drop_columns(["at"]))
