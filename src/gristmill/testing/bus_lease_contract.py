"""The bus contract's part about long work: leases extended while it runs (``EventBus.extend``).

``EventBusContract`` inherits these tests, so every backend runs them. Besides the port's own
promise (an extended lease is kept, and lapses once no longer extended), one test runs the real
``StageWorker`` on three consumers of the bus, with work ten times longer than ``ack_wait``:
it must run once and be announced once. Another stalls a holder's heartbeat on purpose, so
that its work is taken over by a second consumer while it still runs: both handlers finish,
and only the second one's result is recorded and announced (fencing, ADR 14). Those need a
metadata store; the tests make an embedded SQLite one in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.bus.port import Delivery, EventBus
from gristmill.core.events import Event
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Announcement, StageOutcome
from gristmill.stores.metadata import ExecutionStore, LineageEdge, LineageStore, StageExecution

LONG_WORK = "contract.long_work"
WORK_DONE = "contract.work_done"
ACK_WAIT = 0.5


class SlowStage:
    """A stage whose work takes ``seconds``; counts how often it started."""

    name = "lease-contract"
    consumes = LONG_WORK

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0
        self._lock = threading.Lock()

    def idempotency_key(self, event: Event) -> str:
        return event.id

    def handle(self, event: Event) -> StageOutcome:
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        return StageOutcome([Announcement(WORK_DONE, dict(event.payload))])


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.02)


class TakenOverStage(SlowStage):
    """Its first handler stalls until a second consumer has taken the work over; each
    handler records its result in the metadata store (as stages do) and announces it.

    ``stale_first``: the stale handler finishes while the new holder still runs; otherwise
    once the new holder's success is recorded.
    """

    def __init__(
        self, results: LineageStore, executions: ExecutionStore, *, stale_first: bool
    ) -> None:
        super().__init__(0.0)
        self.results, self.executions, self.stale_first = results, executions, stale_first
        self.taken_over = threading.Event()
        self.stale_done = threading.Event()

    def handle(self, event: Event) -> StageOutcome:
        with self._lock:
            self.calls += 1
            who = "stale" if self.calls == 1 else "new"
        if who == "stale":
            try:
                _wait(self.taken_over.is_set, "a second consumer to take the work over")
                if not self.stale_first:
                    _wait(lambda: self._status(event) == "succeeded", "the new holder's success")
                self._record(event, who)
            finally:
                self.stale_done.set()
        else:
            self.taken_over.set()
            if self.stale_first:
                _wait(self.stale_done.is_set, "the stale handler to finish")
            self._record(event, who)
        return StageOutcome([Announcement(WORK_DONE, {"by": who})])

    def _record(self, event: Event, who: str) -> None:
        self.results.add_edges([LineageEdge(event.id, "event", who, "result")])

    def _status(self, event: Event) -> str | None:
        newest = self.executions.find_execution(self.name, event.id)
        return None if newest is None else newest.status


class StalledWorker(StageWorker):
    """A worker whose heartbeat stalls (as under CPU load): it renews neither lease."""

    @contextlib.asynccontextmanager
    async def _heartbeat(
        self, delivery: Delivery, execution: StageExecution
    ) -> AsyncIterator[None]:
        yield


async def drain(
    bus: EventBus, group: str, event_type: str, seconds: float, *, settle: float | None = None
) -> list[Delivery]:
    """Everything ``group`` gets of ``event_type`` within ``seconds`` (each acked); with
    ``settle``, only until ``settle`` seconds after the first came (to see no second one)."""
    got: list[Delivery] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        for delivery in await bus.consume(group, event_type, "watcher", wait=min(remaining, 0.5)):
            await bus.ack(delivery)
            if not got and settle is not None:
                deadline = min(deadline, time.monotonic() + settle)
            got.append(delivery)
    return got


class LeaseContract:
    """Work of any length keeps its lease; see ``EventBus.extend``."""

    __test__ = False

    def opened(
        self, *, max_attempts: int = 3, ack_wait: float = 30.0
    ) -> AbstractAsyncContextManager[EventBus]:
        raise NotImplementedError  # EventBusContract gives it

    async def test_extended_lease_is_kept_for_ten_ack_waits(self) -> None:
        event = Event(type=LONG_WORK, key="k", payload={"n": 1})
        async with (
            self.opened(ack_wait=ACK_WAIT) as holder,
            self.opened(ack_wait=ACK_WAIT) as second,
            self.opened(ack_wait=ACK_WAIT) as third,
        ):
            await holder.publish([event])
            held: list[Delivery] = []
            while not held:
                held = await holder.consume("g", LONG_WORK, "holder", wait=5.0)
            leased = time.monotonic()

            async def keep_extending() -> None:
                while time.monotonic() - leased < 10 * ACK_WAIT:
                    await holder.extend(held[0])
                    await asyncio.sleep(ACK_WAIT / 3)

            async def steal(bus: EventBus, consumer: str) -> list[Delivery]:
                got: list[Delivery] = []
                while time.monotonic() - leased < 10 * ACK_WAIT:
                    got += await bus.consume("g", LONG_WORK, consumer, wait=0.2)
                return got

            _, stolen, also_stolen = await asyncio.gather(
                keep_extending(), steal(second, "second"), steal(third, "third")
            )
            assert stolen == also_stolen == [], "an extended lease was handed to another consumer"
            # No longer extended, the lease lapses: the event moves on, one delivery later.
            again: list[Delivery] = []
            while not again and time.monotonic() - leased < 10 * ACK_WAIT + 5.0:
                again = await second.consume("g", LONG_WORK, "second", wait=0.5)
            assert [(d.event, d.attempt) for d in again] == [(event, 2)]
            await second.ack(again[0])
            await holder.extend(held[0])  # a lost lease: no error, and the event stays done
            assert await third.consume("g", LONG_WORK, "third", wait=2 * ACK_WAIT) == []

    async def test_work_ten_times_longer_than_the_lease_runs_once(self, tmp_path: Path) -> None:
        stage = SlowStage(10 * ACK_WAIT)
        event = Event(type=LONG_WORK, key="k", payload={"n": 1})
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'lease-contract.db'}") as metadata:
            async with (
                self.opened(ack_wait=ACK_WAIT) as one,
                self.opened(ack_wait=ACK_WAIT) as two,
                self.opened(ack_wait=ACK_WAIT) as three,
            ):
                await drain(one, "observer", WORK_DONE, 0.01)  # the observer's group exists
                await one.publish([event])
                stop = asyncio.Event()
                buses = (one, two, three)
                workers = [StageWorker(stage, bus, metadata.executions) for bus in buses]
                for index, worker in enumerate(workers):
                    worker.consumer = f"consumer-{index}"  # three consumers, as three processes
                tasks = [asyncio.create_task(w.run(stop, poll=0.05)) for w in workers]
                try:
                    announced = await drain(
                        one, "observer", WORK_DONE, 20 * ACK_WAIT, settle=3 * ACK_WAIT
                    )
                finally:
                    stop.set()
                    await asyncio.gather(*tasks)
            executions = metadata.executions.list_executions(event.correlation_id)
        assert stage.calls == 1, f"work longer than its lease ran {stage.calls} times"
        assert [d.event.payload for d in announced] == [{"n": 1}], "announced more than once"
        assert [e.status for e in executions] == ["succeeded"]
        assert sum(w.handled for w in workers) == 1

    @pytest.mark.parametrize("stale_first", [True, False], ids=["stale-first", "stale-last"])
    async def test_a_holder_that_lost_its_lease_records_and_announces_nothing(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture, stale_first: bool
    ) -> None:
        caplog.set_level(logging.WARNING, logger="gristmill.runtime.worker")
        event = Event(type=LONG_WORK, key="k", payload={"n": 1})
        with SqlMetadataStore(f"sqlite:///{tmp_path / 'fence-contract.db'}") as metadata:
            stage = TakenOverStage(metadata.lineage, metadata.executions, stale_first=stale_first)
            async with (
                self.opened(ack_wait=ACK_WAIT) as one,
                self.opened(ack_wait=ACK_WAIT) as two,
            ):
                await drain(one, "observer", WORK_DONE, 0.01)  # the observer's group exists
                await one.publish([event])
                stale = StalledWorker(stage, one, metadata.executions)
                new = StageWorker(stage, two, metadata.executions)
                stale.consumer, new.consumer = "consumer-stalled", "consumer-new"
                stop = asyncio.Event()
                tasks = [asyncio.create_task(stale.run(stop, poll=0.05))]
                while stage.calls == 0:  # the stalled one holds the work first
                    await asyncio.sleep(0.02)
                tasks.append(asyncio.create_task(new.run(stop, poll=0.05)))
                try:
                    announced = await drain(
                        one, "observer", WORK_DONE, 30 * ACK_WAIT, settle=4 * ACK_WAIT
                    )
                    while not stage.stale_done.is_set():
                        await asyncio.sleep(0.02)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks)
            executions = metadata.executions.list_executions(event.correlation_id)
            results = [edge.child_id for edge in metadata.lineage.children(event.id)]
        assert stage.calls == 2, "the stalled holder's work was not taken over"
        assert results == ["new"], f"results recorded: {results}"
        assert [d.event.payload for d in announced] == [{"by": "new"}], "announced twice"
        assert [(e.holder, e.status) for e in executions] == [
            ("consumer-stalled", "failed"),
            ("consumer-new", "succeeded"),
        ]
        assert (stale.handled, new.handled) == (0, 1)
        assert "lost its lease to worker consumer-new" in caplog.text
        assert "its results were discarded" in caplog.text
