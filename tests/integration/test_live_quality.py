"""The feedback and live-quality stages on a real bus and metadata store (SQLite), as workers.

A classifier's answers are written by the real prediction log and announced; feedback comes
as ``feedback.received`` events: labels for known predictions, unknown request ids, the same
event twice, corrections (duplicates: the last received wins), labels received days late,
and labels sent before their predictions were written. The windows' figures must equal
scikit-learn's on the labels that won, and a handler that ran before its worker died (its
store writes committed, its delivery not acked) must not count anything twice when the
event comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.backends.sqlite.bus import SqliteBus
from gristmill.cli.monitor_quality import quality_table, read_quality
from gristmill.config.spec import parse_spec
from gristmill.core.events import FEEDBACK_RECEIVED, Event
from gristmill.runtime.worker import StageWorker
from gristmill.servables.port import Predictions, ServableManifest
from gristmill.server.prediction_log import PredictionLog
from gristmill.stages.feedback import FeedbackStage
from gristmill.stages.live_quality import LiveQualityStage
from gristmill.stages.quality_windows import Setups
from gristmill.stores.feedback import FeedbackCounts
from gristmill.testing.metadata_records import make_candidate

ROWS_PER_REQUEST = 4
SPEC = parse_spec(
    {
        "name": "churn",
        "sources": {"customers": {"format": "csv", "path": "customers.csv"}},
        "monitor": {"quality_window": "1d"},
    }
)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    bus = SqliteBus(str(tmp_path / "bus.db"), namespace="t", max_attempts=3, ack_wait=2.0)
    await bus.open()
    yield bus
    await bus.close()


def manifest() -> ServableManifest:
    return ServableManifest(
        model="churn",
        version=1,
        kind="native",
        reason="",
        digest="sha256:x",
        bundle="sha256:y",
        pipeline=None,
        task="classification",
        output="probabilities",
        inputs=(),
        classes=(0, 1),
    )


async def logged(folder: Path, requests: list[str], seed: int) -> tuple[list[Event], Any]:
    """``requests`` answered (``ROWS_PER_REQUEST`` rows each) and written by the prediction
    log; its ``predictions.logged`` events and every row's (request, row, class, p1)."""
    rng = np.random.default_rng(seed)
    events: list[Event] = []

    async def publish(batch: list[Event]) -> None:
        events.extend(batch)

    log = PredictionLog(folder, publish=publish)
    answers = {}
    for request in requests:
        p1 = rng.uniform(size=ROWS_PER_REQUEST)
        values = (p1 >= 0.5).astype(int)
        answer = Predictions(values, np.column_stack([1 - p1, p1]))
        log.record(request, "native", manifest(), 0.001, {"x": p1}, answer)
        for row in range(ROWS_PER_REQUEST):
            answers[(request, row)] = (int(values[row]), float(p1[row]))
    await log.flush()
    return events, answers


def feedback(outcomes: list[dict[str, Any]], *, days_late: float = 0) -> Event:
    at = datetime.now(UTC) + timedelta(days=days_late)
    return Event(type=FEEDBACK_RECEIVED, payload={"outcomes": outcomes}, occurred_at=at)


def label(request: str, row: int, actual: int) -> dict[str, Any]:
    return {"request_id": request, "row": row, "actual": actual}


async def until(check: Any, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_feedback_joins_counts_and_measures_once_whatever_comes(
    tmp_path: Path, bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    metadata.candidates.save_candidate(make_candidate("mc_1", split_id="none"))
    metadata.registry.register_version("churn", metadata.candidates.get_candidate("mc_1"))
    setups = Setups(metadata, SPEC)
    feedback_stage = FeedbackStage(metadata, setups)
    quality_stage = LiveQualityStage(metadata, setups)
    workers = [
        StageWorker(feedback_stage, bus, metadata.executions),
        StageWorker(quality_stage, bus, metadata.executions),
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop, poll=0.05)) for w in workers]
    try:
        first = [f"a-{i}" for i in range(25)]
        announced, answers = await logged(tmp_path / "log", first, seed=1)
        await bus.publish(announced)
        rng = np.random.default_rng(2)
        truth = {key: int(rng.uniform() < p1) for key, (_, p1) in answers.items()}

        # labels for 60 of the 100 rows, and 5 request ids nobody answered; sent twice
        keys = sorted(truth)[:60]
        labels = feedback([label(r, w, truth[(r, w)]) for r, w in keys])
        unknown = feedback([label(f"nope-{i}", 0, 1) for i in range(5)])
        await bus.publish([labels, unknown, labels])
        # corrections of 10 of them, received later: they win
        corrected = keys[:10]
        for key in corrected:
            truth[key] = 1 - truth[key]
        await bus.publish([feedback([label(r, w, truth[(r, w)]) for r, w in corrected])])
        # 20 more labels, received three days after their predictions' window
        late = sorted(truth)[60:80]
        await bus.publish([feedback([label(r, w, truth[(r, w)]) for r, w in late], days_late=3)])
        # labels sent before their predictions were written
        second = [f"b-{i}" for i in range(5)]
        early_rows = [(r, w) for r in second for w in range(ROWS_PER_REQUEST)]
        early = feedback([label(r, w, 1) for r, w in early_rows])
        await bus.publish([early])
        await until(lambda: metadata.feedback.counts().received == 60 + 5 + 10 + 20 + 20)
        announced, more = await logged(tmp_path / "log", second, seed=3)
        answers.update(more)
        truth.update(dict.fromkeys(early_rows, 1))
        await bus.publish(announced)
        expected = FeedbackCounts(received=115, joined=110, waiting=5)
        await until(lambda: metadata.feedback.counts() == expected)
        await until(lambda: metadata.feedback.unmeasured() == [])

        # a worker that joined an event and died before its ack: the event comes back
        again = feedback([label("a-24", 3, truth[("a-24", 3)])])
        feedback_stage.handle(again)
        await bus.publish([again])
        await until(lambda: workers[0].handled >= 7)
    finally:
        stop.set()
        await asyncio.gather(*running)

    assert metadata.feedback.counts() == FeedbackCounts(116, 111, 5)
    [window] = metadata.feedback.list_windows("churn")
    labelled = [*keys, *late, *early_rows, ("a-24", 3)]
    assert window.window_seconds == 86400
    assert (window.predictions, window.labelled) == (120, len(set(labelled)))
    assert (window.duplicates, window.late, window.unusable) == (11, 20, 0)  # a-24 twice
    assert window.measured_revision == window.revision
    y_true = [truth[k] for k in sorted(set(labelled))]
    y_pred = [answers[k][0] for k in sorted(set(labelled))]
    p1 = [answers[k][1] for k in sorted(set(labelled))]
    assert window.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert window.metrics["f1"] == pytest.approx(skm.f1_score(y_true, y_pred))
    assert window.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, p1))
    assert set(window.estimate_error) == {"accuracy", "f1", "roc_auc"}
    assert window.estimate["rows"] == 120

    quality = read_quality(metadata, "churn")
    [row] = quality.rows
    assert row.estimated["accuracy"] == pytest.approx(
        np.mean([max(p, 1 - p) for _, p in answers.values()])
    )
    table = quality_table(quality)
    assert table.row_count == 1 and "of every model, 5 waiting" in str(table.caption)


async def test_bad_feedback_and_a_missing_log_file_fail_naming_what(
    tmp_path: Path, bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    setups = Setups(metadata, SPEC)
    workers = [
        StageWorker(FeedbackStage(metadata, setups), bus, metadata.executions),
        StageWorker(LiveQualityStage(metadata, setups), bus, metadata.executions),
    ]
    bad = Event(type=FEEDBACK_RECEIVED, payload={"outcomes": [{"request_id": "r", "row": -1}]})
    gone = Event(
        type="predictions.logged",
        payload={"model": "churn", "version": 1, "path": str(tmp_path / "gone.parquet")},
    )
    await bus.publish([bad, gone])
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run(stop, poll=0.05)) for w in workers]
    try:
        await until(lambda: all(w.handled == 1 for w in workers))
    finally:
        stop.set()
        await asyncio.gather(*running)
    failed = await bus.consume("probe", "stage.failed", "p", max_events=10, wait=0.2)
    errors = {d.event.payload["stage"]: d.event.payload["error"] for d in failed}
    assert "outcomes[0].row" in errors["feedback"]
    assert "gone.parquet cannot be read" in errors["live-quality"]
    assert metadata.feedback.counts() == FeedbackCounts()
