"""Long work keeps its lease, never runs twice at once, and is taken over when its holder dies.

The SIGKILL test runs on every bus backend; the others on the SQLite bus (what they prove is
the worker's and the execution store's part; the bus's part is in the bus contract).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.backends.sqlite.bus import SqliteBus
from gristmill.bus.port import DEAD_LETTERED
from gristmill.config.settings import load_settings
from gristmill.core.events import Event
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stores.metadata import StageExecution
from gristmill.testing.bus_lease_contract import LONG_WORK, WORK_DONE, SlowStage, drain

CHILD = """
import asyncio, json, sys
from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stores.metadata import StageExecution
from gristmill.testing.bus_lease_contract import SlowStage

class Says(SlowStage):
    def handle(self, event):
        print("handling", event.id, flush=True)
        return super().handle(event)

async def main():
    async with open_services(load_settings(overrides=json.loads(sys.argv[1]))) as services:
        worker = StageWorker(Says(600), services.bus, services.metadata.executions)
        await worker.run(asyncio.Event(), poll=0.05)

asyncio.run(main())
"""


class SameWork(SlowStage):
    """Every event names the same work (as a source re-queued unchanged does)."""

    def idempotency_key(self, event: Event) -> str:
        return "the-same-work"


@pytest.fixture(params=["sqlite", "redis", "nats"])
def overrides(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> Iterator[dict[str, Any]]:
    backend = request.param
    url = None if backend == "sqlite" else request.getfixturevalue(f"{backend}_url")
    yield {
        "home": str(tmp_path / "home"),
        "bus": {"backend": backend, "url": url, "namespace": namespace, "ack_wait": 1.0},
    }


@pytest.fixture
async def services(overrides: dict[str, Any]) -> AsyncIterator[Services]:
    async with open_services(load_settings(overrides=overrides)) as opened:
        yield opened
        purge = getattr(opened.bus, "purge", None)
        if purge is not None:
            await purge()


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[SqliteBus]:
    bus = SqliteBus(str(tmp_path / "bus.db"), namespace="t", max_attempts=1, ack_wait=0.5)
    await bus.open()
    yield bus
    await bus.close()


async def until(condition: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_a_killed_holders_work_is_taken_over_after_its_lease(
    services: Services, overrides: dict[str, Any]
) -> None:
    event = Event(type=LONG_WORK, key="k", payload={"n": 1})
    await drain(services.bus, "observer", WORK_DONE, 0.01)
    await services.bus.publish([event])
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, json.dumps(overrides), stdout=asyncio.subprocess.PIPE
    )
    executions = services.metadata.executions
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 30.0)
        assert line.decode().split() == ["handling", event.id]

        def renewed() -> bool:  # the holder's heartbeat has moved its lease on at least once
            held = executions.find_execution("lease-contract", event.id)
            assert held is not None and held.lease_expires_at is not None
            return held.lease_expires_at > held.started_at + timedelta(seconds=1.2)

        await until(renewed)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()

    survivor = SlowStage(0.2)
    worker = StageWorker(survivor, services.bus, executions)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    try:
        announced = await drain(services.bus, "observer", WORK_DONE, 20.0, settle=2.0)
    finally:
        stop.set()
        await task
    assert survivor.calls == 1
    assert [d.event.payload for d in announced] == [{"n": 1}]
    dead, alive = executions.list_executions(event.correlation_id)
    assert (dead.status, alive.status) == ("failed", "succeeded")
    assert dead.holder != alive.holder
    assert dead.error is not None and dead.error.startswith("taken over: ")
    assert f"its holder {dead.holder} stopped renewing its lease" in dead.error
    assert f"execution {alive.execution_id} ({alive.holder}) took the work over" in dead.error
    assert "retried" not in dead.error


class FlakyStage(SlowStage):
    """Fails its first attempt with a transient error, then works."""

    def handle(self, event: Event) -> Any:
        if self.calls == 0:
            self.calls += 1
            raise RuntimeError("flaky: the disk was busy")
        return super().handle(event)


async def test_a_retry_is_recorded_as_a_retry_not_a_take_over(
    tmp_path: Path, metadata: SqlMetadataStore
) -> None:
    bus = SqliteBus(str(tmp_path / "bus.db"), namespace="t", max_attempts=3, ack_wait=0.5)
    await bus.open()
    stage, event = FlakyStage(0.0), Event(type=LONG_WORK, payload={"n": 1})
    await bus.publish([event])
    stop = asyncio.Event()
    task = asyncio.create_task(StageWorker(stage, bus, metadata.executions).run(stop, poll=0.05))
    try:
        assert len(await drain(bus, "observer", WORK_DONE, 20.0, settle=1.0)) == 1
    finally:
        stop.set()
        await task
        await bus.close()
    failed, retried = metadata.executions.list_executions(event.correlation_id)
    assert (failed.status, retried.status, stage.calls) == ("failed", "succeeded", 2)
    assert failed.error == (
        "RuntimeError('flaky: the disk was busy'); "
        f"retried as execution {retried.execution_id} ({retried.holder})"
    )
    assert failed.finished_at is not None and failed.finished_at <= retried.started_at


async def test_the_same_work_running_elsewhere_is_waited_for_not_run_again(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    # max_attempts=1: a wait that spent a delivery attempt would dead-letter the second event.
    stage = SameWork(6 * bus.ack_wait)
    first = Event(type=LONG_WORK, payload={"n": 1})
    second = Event(type=LONG_WORK, payload={"n": 1})
    workers = [StageWorker(stage, bus, metadata.executions) for _ in range(2)]
    await bus.publish([first])
    stop = asyncio.Event()
    tasks = [asyncio.create_task(workers[0].run(stop, poll=0.05))]
    await until(lambda: stage.calls == 1)
    await bus.publish([second])
    tasks.append(asyncio.create_task(workers[1].run(stop, poll=0.05)))
    try:
        announced = await drain(bus, "observer", WORK_DONE, 10.0, settle=3 * bus.ack_wait)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert stage.calls == 1
    assert [d.event.causation_id for d in announced] == [first.id, first.id]  # re-announced
    assert await drain(bus, "audit", DEAD_LETTERED, 0.3) == []
    (replayed,) = metadata.executions.list_executions(second.correlation_id)
    assert (replayed.status, replayed.input_event_id) == ("skipped", second.id)


async def test_a_three_second_handler_on_a_half_second_lease_runs_once(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    # As reported: concurrency 3, ack_wait 0.5 s, a 3 s handler ran 3 times, announced 3 times.
    stage = SlowStage(3.0)
    event = Event(type=LONG_WORK, payload={"n": 7})
    await bus.publish([event])
    stop = asyncio.Event()
    worker = StageWorker(stage, bus, metadata.executions)
    task = asyncio.create_task(worker.run(stop, poll=0.05, concurrency=3))
    try:
        announced = await drain(bus, "observer", WORK_DONE, 10.0, settle=3 * bus.ack_wait)
    finally:
        stop.set()
        await task
    assert stage.calls == 1
    assert [d.event.payload for d in announced] == [{"n": 7}]


async def test_the_execution_lease_is_renewed_while_the_event_loop_is_stalled(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    # Under CPU load the event loop may not run for a while: the execution's lease (the one
    # that decides take-overs) is renewed on a thread of its own, so the work stays held.
    stage = SlowStage(8 * bus.ack_wait)
    event = Event(type=LONG_WORK, payload={"n": 3})
    await bus.publish([event])
    stop = asyncio.Event()
    task = asyncio.create_task(StageWorker(stage, bus, metadata.executions).run(stop, poll=0.05))
    try:
        await until(lambda: stage.calls == 1)
        stalled = time.monotonic()
        time.sleep(4 * bus.ack_wait)  # the loop is stalled: no coroutine of the worker runs
        held = metadata.executions.find_execution(stage.name, event.id)
        assert held is not None and held.lease_expires_at is not None
        assert held.status == "running"
        assert held.lease_expires_at > datetime.now(UTC), (
            f"the lease lapsed while the event loop was stalled {time.monotonic() - stalled:.1f}s"
        )
        announced = await drain(bus, "observer", WORK_DONE, 10.0, settle=3 * bus.ack_wait)
    finally:
        stop.set()
        await task
    assert stage.calls == 1
    assert [d.event.payload for d in announced] == [{"n": 3}]


async def test_a_worker_waiting_for_work_elsewhere_stops_when_told(
    bus: SqliteBus, metadata: SqlMetadataStore
) -> None:
    stage = SameWork(0.1)
    now = datetime.now(UTC)
    elsewhere = StageExecution(
        "ex-elsewhere",
        stage.name,
        "the-same-work",
        "running",
        now,
        lease_expires_at=now + timedelta(hours=1),
        holder="lease-contract@elsewhere:1",
    )
    assert metadata.executions.claim_execution(elsewhere) is None
    await bus.publish([Event(type=LONG_WORK, payload={"n": 1})])
    worker = StageWorker(stage, bus, metadata.executions)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    await asyncio.sleep(3 * bus.ack_wait)  # it holds the delivery (extending it) meanwhile
    assert (stage.calls, worker.handled) == (0, 0)
    stop.set()
    await asyncio.wait_for(task, 2.0)
    assert (stage.calls, worker.handled) == (0, 0)
