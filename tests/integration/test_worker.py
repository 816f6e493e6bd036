"""The stage worker: idempotent handling, permanent vs transient failures, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.backends.sqlite.bus import SqliteBus
from gristmill.bus.port import DEAD_LETTERED
from gristmill.core.events import Event
from gristmill.core.ids import digest_json
from gristmill.errors import DataError
from gristmill.runtime.worker import StageWorker, retry_delay
from gristmill.stages.base import STAGE_FAILED, Announcement, StageOutcome


class Doubler:
    """A real stage: doubles ``payload.n``; fails as told by ``payload.fail``."""

    name = "doubler"
    consumes = "number.arrived"

    def __init__(self) -> None:
        self.calls = 0

    def idempotency_key(self, event: Event) -> str:
        return digest_json({"event": event.id})

    def handle(self, event: Event) -> StageOutcome:
        self.calls += 1
        fail = event.payload.get("fail")
        if fail == "data":
            raise DataError("row 3, column n: not a number", file="in.csv", row=3, column="n")
        if fail == "always" or (fail == "once" and self.calls == 1):
            raise RuntimeError("flaky dependency")
        return StageOutcome([Announcement("number.doubled", {"n": event.payload["n"] * 2})])


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    bus = SqliteBus(str(tmp_path / "bus.db"), namespace="t", max_attempts=3, ack_wait=1.0)
    await bus.open()
    yield bus
    await bus.close()


async def events_of(bus: SqliteBus, event_type: str) -> list[Event]:
    deliveries = await bus.consume("observer", event_type, "o", max_events=100, wait=0.2)
    for d in deliveries:
        await bus.ack(d)
    return [d.event for d in deliveries]


async def work(worker: StageWorker, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def test_the_same_event_twice_does_the_work_once(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    stage = Doubler()
    worker = StageWorker(stage, bus, metadata.executions)
    event = Event(type="number.arrived", payload={"n": 21})
    await bus.publish([event])
    await bus.publish([event])  # a producer retrying: the very same envelope
    await work(worker, 0.5)

    assert stage.calls == 1
    doubled = await events_of(bus, "number.doubled")
    assert [e.payload for e in doubled] == [{"n": 42}, {"n": 42}]
    assert doubled[0].id == doubled[1].id  # re-announced, not recomputed
    assert doubled[0].causation_id == event.id
    assert doubled[0].correlation_id == event.correlation_id


async def test_a_data_error_is_announced_not_retried(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    stage = Doubler()
    event = Event(type="number.arrived", payload={"n": 1, "fail": "data"})
    await bus.publish([event])
    await work(StageWorker(stage, bus, metadata.executions), 1.5)

    assert stage.calls == 1
    (failed,) = await events_of(bus, STAGE_FAILED)
    assert failed.payload["stage"] == "doubler"
    assert "row 3, column n" in failed.payload["error"]
    (execution,) = metadata.executions.list_executions(event.correlation_id)
    assert execution.status == "failed"


async def test_a_transient_failure_is_retried_with_back_off(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    stage = Doubler()
    await bus.publish([Event(type="number.arrived", payload={"n": 5, "fail": "once"})])
    await work(StageWorker(stage, bus, metadata.executions), 0.3)
    assert stage.calls == 1  # back-off: not retried at once
    await work(StageWorker(stage, bus, metadata.executions), 1.0)
    assert stage.calls == 2
    assert [e.payload for e in await events_of(bus, "number.doubled")] == [{"n": 10}]


async def test_a_failure_that_persists_is_dead_lettered(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    stage = Doubler()
    event = Event(type="number.arrived", payload={"n": 5, "fail": "always"})
    await bus.publish([event])
    await work(StageWorker(stage, bus, metadata.executions), 3.0)  # 0.5 s + 1 s back-off

    assert stage.calls == 3
    (dead,) = await events_of(bus, DEAD_LETTERED)
    assert dead.payload["event"]["id"] == event.id
    assert "flaky dependency" in dead.payload["error"]
    statuses = [e.status for e in metadata.executions.list_executions(event.correlation_id)]
    assert statuses[-1] == "failed"
    (gave_up,) = await events_of(bus, STAGE_FAILED)
    assert "gave up after 3 attempts" in gave_up.payload["error"]


def test_back_off_doubles_up_to_a_cap() -> None:
    assert [retry_delay(a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retry_delay(30) == 30.0
