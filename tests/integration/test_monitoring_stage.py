"""The monitoring stage on the embedded bus and stores: prediction log files with shifting
distributions counted into drift windows, each crossing alerted once (bus, log, webhook)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import MODEL_ROLLED_BACK, MONITOR_ALERT, STAGE_FAILED, Event
from gristmill.runtime.drift_views import drift_windows
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.monitoring import MonitoringStage
from gristmill.stores.models import TrafficPolicy
from gristmill.stores.rollback_rules import RollbackRule
from gristmill.testing.prediction_logs import CHURN, customers, register_with_reference, write_log
from gristmill.testing.serving import free_port
from gristmill.training.rollback import ROLLBACK_JUDGE

HOUR = 3600
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
W1 = T0 + timedelta(hours=1)
COLUMNS = ["age", "plan", "prediction"]


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={
            "home": str(tmp_path / "home"),
            "executor": {"backend": "inline"},
            "bus": {"ack_wait": 2.0},
        }
    )
    async with open_services(settings) as opened:
        register_with_reference(opened.feature_stores())
        yield opened


class Hook(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    handler = type("Handler", (Hook,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", bodies
    server.shutdown()
    server.server_close()


def churn_spec(webhook: str | None, **drift: Any) -> PipelineSpec:
    monitor: dict[str, Any] = {"window": "1h", "drift": {"min_rows": 500, **drift}}
    if webhook:
        monitor["webhook"] = webhook
    return parse_spec(
        {
            "name": "churn",
            "sources": {"customers": {"format": "csv", "path": "customers.csv"}},
            "monitor": monitor,
        }
    )


def logged(folder: Path, name: str, rows: int, at: datetime, **shape: Any) -> Event:
    columns, prediction = customers(rows, seed=hash(name) % 1000, **shape)
    return write_log(folder, CHURN, columns, prediction, at, name=name)


async def handled(worker: StageWorker, count: int, timeout: float = 120) -> None:
    """Run ``worker`` until it handled ``count`` deliveries."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    deadline = time.monotonic() + timeout
    while worker.handled < count and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert worker.handled >= count, f"handled {worker.handled} of {count}"


async def announced(services: Services, kind: str = MONITOR_ALERT) -> list[Event]:
    deliveries = await services.bus.consume("observer", kind, "o", max_events=500, wait=0.5)
    for delivery in deliveries:
        await services.bus.ack(delivery)
    return [d.event for d in deliveries]


async def test_each_crossing_is_alerted_once_on_the_bus_the_log_and_the_webhook(
    services: Services,
    tmp_path: Path,
    webhook: tuple[str, list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, bodies = webhook
    stage = MonitoringStage(services.feature_stores(), churn_spec(url))
    worker = StageWorker(stage, services.bus, services.metadata.executions)
    folder = tmp_path / "predictions"
    events = [
        logged(folder, "a", 1000, T0 + timedelta(minutes=1)),  # as in training: stable
        logged(folder, "b", 1000, T0 + timedelta(minutes=2)),
        logged(folder, "c", 3000, T0 + timedelta(minutes=3), shift=1.0, plans=(0.1, 0.9)),
        logged(folder, "d", 2000, T0 + timedelta(minutes=4), shift=1.0, plans=(0.1, 0.9)),
        logged(folder, "e", 1000, W1 + timedelta(minutes=1), shift=1.0, plans=(0.1, 0.9)),
    ]
    with caplog.at_level(logging.WARNING, logger="gristmill.stages.monitoring"):
        for event in events[:2]:
            await services.bus.publish([event])
        await handled(worker, 2)
        assert await announced(services) == []  # nothing drifted yet
        for event in events[2:]:
            await services.bus.publish([event])
        await services.bus.publish([events[2].model_copy(update={"id": "again-c"})])
        await handled(worker, 6)

    alerts = await announced(services)
    crossed = {(e.payload["window_start"], e.payload["column"]) for e in alerts}
    assert crossed == {(w.isoformat(), c) for w in (T0, W1) for c in COLUMNS}
    assert len({e.payload["alert_id"] for e in alerts}) == len(crossed) == 6
    by_id: dict[str, set[str]] = {}
    for event in alerts:  # a replay repeats an announcement with its id, never a new one
        by_id.setdefault(event.payload["alert_id"], set()).add(event.id)
    assert all(len(ids) == 1 for ids in by_id.values())
    raised_by = {e.payload["window_start"]: e.payload["file"] for e in alerts}
    assert raised_by == {
        T0.isoformat(): events[2].payload["path"],
        W1.isoformat(): events[4].payload["path"],
    }
    assert {e.key for e in alerts} == {"churn"}

    [first, second] = drift_windows(services.metadata, "churn", 1, since=T0)
    assert (first.rows, first.files, second.rows, second.files) == (7000, 4, 1000, 1)
    assert first.drifted == second.drifted == COLUMNS
    age = next(c for c in first.columns if c.column == "age")
    assert age.method == "psi" and age.statistic is not None and age.statistic > 0.2
    assert [a.column for a in first.alerts] == sorted(COLUMNS)

    posted = [alert for body in bodies for alert in body["alerts"]]
    assert sorted(a["alert_id"] for a in posted) == sorted(by_id)
    stored = services.metadata.drift.list_alerts("churn")
    assert all(a.notified_at is not None for a in stored)
    lines = [r.getMessage() for r in caplog.records if "drifted" in r.getMessage()]
    assert len(lines) == 6 and any("churn/1 column age drifted: psi" in line for line in lines)


async def test_a_file_taken_before_its_execution_was_recorded_announces_its_alerts(
    services: Services, tmp_path: Path
) -> None:
    # a worker killed after the file's commit, before its execution ended: the redelivered
    # event finds the file taken; it is not counted again, and its alerts are not lost
    stage = MonitoringStage(services.feature_stores(), churn_spec(None))
    event = logged(tmp_path, "shifted", 2000, T0, shift=1.0, plans=(0.1, 0.9))
    first = stage.handle(event)  # the attempt that died after its commit
    assert len(first.announcements) == 3
    await services.bus.publish([event])
    await handled(StageWorker(stage, services.bus, services.metadata.executions), 1)

    alerts = await announced(services)
    assert [a.payload for a in alerts] == [a.payload for a in first.announcements]
    [window] = drift_windows(services.metadata, "churn", since=T0)
    assert (window.rows, window.files) == (2000, 1)


async def test_a_webhook_that_is_down_is_given_up_without_failing_the_stage(
    services: Services, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/alerts"  # nothing listens
    stage = MonitoringStage(
        services.feature_stores(), churn_spec(url), webhook_attempts=2, webhook_timeout=1.0
    )
    started = time.monotonic()
    outcome = stage.handle(logged(tmp_path, "f", 1000, T0, shift=1.0, plans=(0.1, 0.9)))
    assert time.monotonic() - started < 10
    assert len(outcome.announcements) == 3
    assert all(a.notified_at is None for a in services.metadata.drift.list_alerts("churn"))


async def test_a_missing_file_or_an_unknown_version_fails_once_naming_it(
    services: Services, tmp_path: Path
) -> None:
    worker = StageWorker(
        MonitoringStage(services.feature_stores(), churn_spec(None)),
        services.bus,
        services.metadata.executions,
    )
    gone = logged(tmp_path, "gone", 100, T0)
    Path(gone.payload["path"]).unlink()
    unknown = gone.model_copy(update={"id": "unknown", "payload": {**gone.payload, "version": 9}})
    await services.bus.publish([gone, unknown])
    await handled(worker, 2)
    errors = {e.causation_id: e.payload["error"] for e in await announced(services, STAGE_FAILED)}
    assert "does not exist" in errors[gone.id] and gone.payload["path"] in errors[gone.id]
    assert "no version 9 of model 'churn'" in errors["unknown"]


async def test_few_rows_are_counted_but_not_judged(services: Services, tmp_path: Path) -> None:
    stage = MonitoringStage(services.feature_stores(), churn_spec(None, min_rows=5000))
    outcome = stage.handle(logged(tmp_path, "few", 1000, T0, shift=2.0))
    assert outcome.announcements == []
    [window] = drift_windows(services.metadata, "churn", since=T0)
    assert window.rows == 1000 and window.drifted == []
    assert not any(c.judged for c in window.columns)


async def test_drift_demotes_a_live_version_whose_rule_says_on_drift_once(
    services: Services, tmp_path: Path
) -> None:
    """churn/2 serves with churn/1 behind it and a rule ``on_drift``: its first drifted
    window rolls the policy back to 1 (model.rolled_back, an audit entry), and only once."""
    stores = services.feature_stores()
    second = dataclasses.replace(CHURN, version=2)
    register_with_reference(stores, second)
    registry = services.metadata.registry
    registry.set_policy(
        TrafficPolicy("churn", primary=2, fallback=(1,), rollback_rule=RollbackRule(on_drift=True))
    )
    stage = MonitoringStage(stores, churn_spec(None))
    columns, prediction = customers(2000, seed=5, shift=1.0, plans=(0.1, 0.9))
    event = write_log(tmp_path, second, columns, prediction, T0, name="shifted")
    outcome = stage.handle(event)
    kinds = [a.type for a in outcome.announcements]
    assert kinds.count(MODEL_ROLLED_BACK) == 1, kinds
    policy = registry.get_policy("churn")
    assert policy is not None and policy.primary == 1 and policy.changed_by == ROLLBACK_JUDGE
    assert "drift in churn/2" in policy.reason
    # a later drifted window of the demoted version, and the same file again: nothing more
    later = write_log(tmp_path, second, columns, prediction, W1, name="later")
    for again in (later, event):
        assert MODEL_ROLLED_BACK not in [a.type for a in stage.handle(again).announcements]
    assert registry.get_policy("churn").revision == policy.revision  # type: ignore[union-attr]
    # a rule without on_drift leaves a drifting version where it is
    register_with_reference(stores, dataclasses.replace(CHURN, version=3))
    registry.set_policy(
        TrafficPolicy(
            "churn", primary=3, fallback=(1,), rollback_rule=RollbackRule(max_error_rate=0.1)
        )
    )
    third = dataclasses.replace(CHURN, version=3)
    drifted = write_log(tmp_path, third, columns, prediction, T0, name="third")
    assert MODEL_ROLLED_BACK not in [a.type for a in stage.handle(drifted).announcements]
    assert registry.get_policy("churn").primary == 3  # type: ignore[union-attr]
