"""The bus contract's part about long work: leases extended while it runs (``EventBus.extend``).

``EventBusContract`` inherits these tests, so every backend runs them. Besides the port's own
promise (an extended lease is kept, and lapses once no longer extended), one test runs the real
``StageWorker`` on three consumers of the bus, with work ten times longer than ``ack_wait``:
it must run once and be announced once. That needs a metadata store; the test makes an
embedded SQLite one in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.bus.port import Delivery, EventBus
from gristmill.core.events import Event
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import Announcement, StageOutcome

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
