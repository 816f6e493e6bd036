"""Runs a stage as a long-lived, idempotent consumer of its event type.

Per delivery: a ``Selective`` stage is asked first whether it wants the event, and one it
does not want is acknowledged with nothing recorded. Else derive the idempotency key and
claim it in the execution store; if a succeeded
execution has that key, re-publish the events it recorded (same ids) instead of working again;
if another consumer runs it under a live lease, wait for that one (holding our delivery) and
then decide again; otherwise run the handler in a thread, record the execution *with* its
output events, publish them (retried with back-off while the bus is down), set the
execution's outbox mark, then ack. Recorded events whose publication never happened (the
worker stopped during an outage, the broker restarted empty) are published by the outbox
relay every worker runs on start and periodically (ADR 14, amended). While the handler
runs, a heartbeat extends both the bus lease of the delivery and the execution's lease, so
work of any length runs once; a holder that dies stops renewing, and after the lease (and a
margin) its work is taken over.
A crash at any point before the ack means redelivery, and redelivery means at most a
re-publication of the same events — never the work twice once it succeeded.

Work is *fenced* (ADR 14): the handler's writes to the metadata store, and the record of how
the execution ended, are committed only while the execution still holds the work. A holder
that stalled past its lease and was taken over has its writes refused and its results
discarded: it announces nothing and leaves its delivery alone (no ack, no nack).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from gristmill.bus.port import Delivery, EventBus
from gristmill.core.events import Event
from gristmill.core.ids import new_id
from gristmill.core.outages import OutageLog
from gristmill.errors import PERMANENT_ERRORS, BackendError, LeaseLostError
from gristmill.runtime.code_reload import CodeReload
from gristmill.stages.base import STAGE_FAILED, Selective, Stage, StageOutcome
from gristmill.stores.fencing import fenced
from gristmill.stores.metadata import ExecutionStore, StageExecution

log = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEATS_PER_LEASE = 3
"""Leases are renewed every ``ack_wait / 3``: two beats may be missed before one lapses."""
TAKEOVER_MARGIN = 0.5
"""A lapsed execution lease is taken over only ``TAKEOVER_MARGIN * ack_wait`` after it ended."""
RELAY_AFTER = 5.0
"""Seconds after an execution ended before a worker's outbox relay publishes its events."""
ANNOUNCE_RETRY_CAP = 10.0
"""At most this many seconds between attempts to announce recorded events while the bus is down."""


def _told(events: list[Event]) -> str:
    """``model.trained <id>, …`` (at most three named)."""
    named = ", ".join(f"{e.type} {e.id}" for e in events[:3])
    return named + (f" and {len(events) - 3} more" if len(events) > 3 else "")


def consumer_name(stage: str) -> str:
    """A consumer name unique to this process: ``<stage>@<host>:<pid>``."""
    return f"{stage}@{socket.gethostname()}:{os.getpid()}"


def retry_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential back-off before delivery ``attempt + 1``."""
    return float(min(cap, base * 2 ** (attempt - 1)))


async def serve_until(
    stop: asyncio.Event,
    step: Callable[[], Awaitable[None]],
    name: str,
    outages: OutageLog | None = None,
    *,
    loop: int = 0,
) -> None:
    """Call ``step`` until ``stop`` is set, riding out backend outages with back-off.

    A broker or store that goes away (a restart, a network blip) raises ``BackendError``;
    the worker keeps serving and retries, at most 10 s apart. An event in hand is
    redelivered after its lease. The outage is logged without flooding: its first failure,
    reminders at growing intervals (10 s, then doubling up to a minute) and its end, once
    each — once for all the loops sharing ``outages`` (a worker process's stages; ``loop``
    tells apart the loops of one stage).
    """
    outages = outages if outages is not None else OutageLog()
    extra = {"stage": name}
    who = f"{name}#{loop}"
    attempt = 0
    while not stop.is_set():
        try:
            await step()
        except BackendError as exc:
            attempt += 1
            delay = retry_delay(attempt, cap=10.0)
            said = outages.failed(who)
            if said == "started":
                log.warning("%s; retrying in %.1fs, then less often", exc, delay, extra=extra)
            elif said == "still":
                log.warning(
                    "still failing after %.0fs: %s; retrying every %.0fs",
                    outages.lasted,
                    exc,
                    delay,
                    extra=extra,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        else:
            attempt = 0
            lasted = outages.recovered(who)
            if lasted is not None:
                log.warning("serving again after %.0fs of failures", lasted, extra=extra)


class StageWorker:
    """Consumes ``stage.consumes`` for the group ``stage.name`` until ``stop`` is set."""

    def __init__(
        self,
        stage: Stage,
        bus: EventBus,
        executions: ExecutionStore,
        *,
        outages: OutageLog | None = None,
        code: CodeReload | None = None,
    ) -> None:
        self.stage = stage
        self.bus = bus
        self.executions = executions
        self.consumer = consumer_name(stage.name)
        self.consumes = stage.consumes
        self.handled = 0
        self.passed = 0  # events a ``Selective`` stage did not want: acked, nothing recorded
        self.outages = outages if outages is not None else OutageLog()
        self.code = code  # custom modules changed on disk are read again before each event
        self._stop: asyncio.Event | None = None
        # the execution store's calls, off the event loop (a busy SQLite file makes a write
        # wait for its lock) and apart from the handlers' threads (they may run for hours)
        self._store_calls = ThreadPoolExecutor(4, thread_name_prefix=f"gristmill-{stage.name}")

    async def run(
        self,
        stop: asyncio.Event,
        *,
        poll: float = 0.5,
        concurrency: int = 1,
        relay_every: float | None = None,
    ) -> None:
        """Handle deliveries until ``stop`` is set; deliveries in hand are finished first.

        ``concurrency`` loops consume side by side, so that many events (several sources,
        say) are handled at once, each in its own thread. Beside them, the outbox relay
        publishes this stage's recorded but unpublished events on start and every
        ``relay_every`` seconds (default: ``RELAY_AFTER`` or the bus's ``ack_wait``).
        """
        self._stop = stop
        loops = range(max(1, concurrency))
        every = relay_every if relay_every is not None else max(RELAY_AFTER, self.bus.ack_wait)
        await asyncio.gather(
            self._relay_loop(stop, every), *(self._loop(stop, poll, loop) for loop in loops)
        )

    async def _loop(self, stop: asyncio.Event, poll: float, loop: int) -> None:
        async def step() -> None:
            deliveries = await self.bus.consume(
                self.stage.name, self.stage.consumes, self.consumer, max_events=1, wait=poll
            )
            for delivery in deliveries:
                await self.process(delivery)

        await serve_until(stop, step, self.stage.name, self.outages, loop=loop)

    async def process(self, delivery: Delivery) -> None:
        event = delivery.event
        if not await self._wanted(event):
            await self.bus.ack(delivery)  # not this stage's concern: nothing recorded
            self.passed += 1
            return
        key = self.stage.idempotency_key(event)
        published_by = ""
        while True:
            execution = self._running(event, key)
            holder = await self._store(
                self.executions.claim_execution, execution, margin=self._margin
            )
            if holder is None:
                outputs_or_none = await self._execute(delivery, execution)
                if outputs_or_none is None:
                    return
                outputs, published_by = outputs_or_none, execution.execution_id
                break
            if holder.status == "succeeded":
                outputs, published_by = await self._replay(holder, event), holder.execution_id
                break
            if not await self._wait_for(delivery, holder):
                return  # stopping: the delivery is not acked, it comes back after its lease
        if outputs and not await self._announce(outputs, published_by):
            return  # stopping: the outbox relay of the next worker publishes them
        await self.bus.ack(delivery)
        self.handled += 1

    async def _wanted(self, event: Event) -> bool:
        """``Selective.wants`` on the store threads (it may read the metadata store); a
        stage that is not selective wants everything. An error other than an outage counts
        as wanted: the handler meets it and it is recorded as usual."""
        if not isinstance(self.stage, Selective):
            return True
        try:
            return await self._store(self.stage.wants, event)
        except BackendError:
            raise
        except Exception:
            log.debug("wants() failed; handling the event", exc_info=True)
            return True

    async def _announce(self, outputs: list[Event], execution_id: str) -> bool:
        """Publish the events ``execution_id`` recorded, retrying with back-off while the bus
        is down, then set its outbox mark; ``False`` if the worker stopped first (the events
        stay in the outbox: a worker's relay publishes them, ADR 14)."""
        extra = {"stage": self.stage.name, "execution_id": execution_id}
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                await self.bus.publish(outputs)
                break
            except BackendError as exc:
                attempt += 1
                if attempt == 1:
                    log.warning(
                        "could not announce %s of execution %s: %s; will retry until the bus "
                        "is back",
                        _told(outputs),
                        execution_id,
                        exc,
                        extra=extra,
                    )
                if self._stop is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._stop.wait(), retry_delay(attempt, cap=ANNOUNCE_RETRY_CAP)
                        )
                    if self._stop.is_set():
                        log.warning(
                            "stopping before %s of execution %s could be announced; the next "
                            "worker of %s announces them",
                            _told(outputs),
                            execution_id,
                            self.stage.name,
                            extra=extra,
                        )
                        return False
                else:
                    await asyncio.sleep(retry_delay(attempt, cap=ANNOUNCE_RETRY_CAP))
        if attempt:
            log.warning(
                "announced %s of execution %s after %.0fs",
                _told(outputs),
                execution_id,
                time.monotonic() - started,
                extra=extra,
            )
        await self._mark_published(execution_id)
        return True

    async def _mark_published(self, execution_id: str) -> None:
        """Set the outbox mark; if the store is away, the relay publishes them again later
        (the same ids: a harmless duplicate)."""
        try:
            await self._store(self.executions.mark_published, execution_id, datetime.now(UTC))
        except BackendError as exc:
            log.warning(
                "could not mark the events of execution %s published: %s; they may be "
                "announced again (same ids)",
                execution_id,
                exc,
                extra={"stage": self.stage.name},
            )

    async def relay(self) -> int:
        """Publish the outputs of this stage's ended executions left unpublished (their worker
        met a bus outage and stopped, or the bus restarted empty); how many executions.

        Only executions ended more than ``RELAY_AFTER`` seconds ago: the worker that recorded
        one is normally still publishing it. Several workers may relay the same execution at
        once; the events keep their ids, so a duplicate is deduped by consumers' idempotency.
        """
        before = datetime.now(UTC) - timedelta(seconds=RELAY_AFTER)
        waiting = await self._store(self.executions.list_unpublished, self.stage.name, before)
        for execution in waiting:
            outputs = [Event.model_validate(item) for item in execution.outputs]
            if outputs:
                await self.bus.publish(outputs)
                ended = execution.finished_at or execution.started_at
                log.warning(
                    "announced %s of execution %s after %.0fs (it was recorded but not published)",
                    _told(outputs),
                    execution.execution_id,
                    (datetime.now(UTC) - ended).total_seconds(),
                    extra={"stage": self.stage.name, "execution_id": execution.execution_id},
                )
            await self._mark_published(execution.execution_id)
        return len(waiting)

    async def _relay_loop(self, stop: asyncio.Event, every: float) -> None:
        """``relay`` on start and every ``every`` seconds until ``stop``; an outage is said
        once and retried at the next tick."""
        down = OutageLog()
        while not stop.is_set():
            try:
                await self.relay()
            except Exception as exc:  # an outage (or a bad row): said once, tried again later
                if down.failed() == "started":
                    log.warning(
                        "could not relay unpublished events: %s; will retry",
                        exc,
                        extra={"stage": self.stage.name},
                        exc_info=not isinstance(exc, BackendError),
                    )
            else:
                down.recovered()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    async def _store(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` on the worker's store threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._store_calls, partial(call, *args, **kwargs))

    @property
    def _margin(self) -> timedelta:
        return timedelta(seconds=self.bus.ack_wait * TAKEOVER_MARGIN)

    def _running(self, event: Event, key: str) -> StageExecution:
        now = datetime.now(UTC)
        return StageExecution(
            execution_id=new_id(),
            stage=self.stage.name,
            idempotency_key=key,
            status="running",
            started_at=now,
            run_id=event.correlation_id,
            input_event_id=event.id,
            lease_expires_at=now + timedelta(seconds=self.bus.ack_wait),
            holder=self.consumer,
        )

    async def _wait_for(self, delivery: Delivery, holder: StageExecution) -> bool:
        """Hold ``delivery`` while ``holder`` runs the same work under a live lease.

        Returns ``True`` once it is no longer so (finished, failed, or its lease expired:
        claim again), ``False`` if the worker is stopping. The delivery's lease is extended
        meanwhile, so waiting never spends an attempt of the retry budget.
        """
        log.info(
            "the same work is running under %s; waiting for it",
            holder.holder or holder.execution_id,
            extra={"stage": self.stage.name, "event_id": delivery.event.id},
        )
        beat = self.bus.ack_wait / HEARTBEATS_PER_LEASE
        extended = asyncio.get_running_loop().time()
        while self._stop is None or not self._stop.is_set():
            await asyncio.sleep(min(beat, 1.0))
            if asyncio.get_running_loop().time() - extended >= beat:
                await self.bus.extend(delivery)
                extended = asyncio.get_running_loop().time()
            current = await self._store(
                self.executions.find_execution, self.stage.name, holder.idempotency_key
            )
            if (
                current is None
                or current.execution_id != holder.execution_id
                or current.status != "running"
                or current.lease_expires_at is None
                or current.lease_expires_at < datetime.now(UTC) - self._margin
            ):
                return True
        return False

    async def _handle(self, delivery: Delivery, execution: StageExecution) -> StageOutcome:
        """The handler's outcome, run in a thread under the execution's fence; both leases
        are renewed while it runs."""
        if self.code is not None:
            self.code.before()
        started = time.time()
        fence = self.executions.fence(execution.execution_id)

        def handle() -> StageOutcome:
            with fenced(fence):  # in the handler's thread only (to_thread copies the context)
                return self.stage.handle(delivery.event)

        try:
            async with self._heartbeat(delivery, execution):
                return await asyncio.to_thread(handle)
        finally:
            if self.code is not None:
                self.code.after(started)

    @contextlib.asynccontextmanager
    async def _heartbeat(
        self, delivery: Delivery, execution: StageExecution
    ) -> AsyncIterator[None]:
        """Every ``ack_wait / 3`` while the block runs: renew the execution's lease, on a
        thread of its own (so neither a busy event loop nor a slow store delays it), and
        extend the delivery's lease on the event loop."""
        keeper = _LeaseKeeper(self, delivery, execution.execution_id)
        keeper.start()
        extending = asyncio.create_task(self._extend_delivery(delivery, keeper.lost))
        try:
            yield
        finally:
            extending.cancel()
            keeper.stop.set()
            await asyncio.gather(extending, return_exceptions=True)
            # a renewal still in flight must land before the execution's end is recorded
            await asyncio.to_thread(keeper.join)

    async def _extend_delivery(self, delivery: Delivery, lost: threading.Event) -> None:
        """Extend the delivery's bus lease every ``ack_wait / 3`` until the work is lost."""
        extra = {"stage": self.stage.name, "event_id": delivery.event.id}
        bus_down = OutageLog()  # each failure said once, then at growing intervals
        while not lost.is_set():
            await asyncio.sleep(self.bus.ack_wait / HEARTBEATS_PER_LEASE)
            # the bus and the metadata store may fail apart: a broker outage must not let
            # the execution's lease lapse, nor a database blip the delivery's
            try:
                await self.bus.extend(delivery)
            except BackendError as exc:  # an outage: keep trying, the lease may still hold
                if bus_down.failed():
                    log.warning("could not extend the delivery: %s", exc, extra=extra)
            else:
                bus_down.recovered()

    async def _replay(self, done: StageExecution, event: Event) -> list[Event]:
        """The events a succeeded execution recorded, to publish again (same ids).

        When another event with the same key meets the work done, its own execution is
        recorded as ``skipped`` with those outputs, so its run sees it settled.
        """
        log.info(
            "work already done; re-announcing its events",
            extra={"stage": self.stage.name, "event_id": event.id, "key": done.idempotency_key},
        )
        outputs = [Event.model_validate(item) for item in done.outputs]
        if done.input_event_id != event.id:
            now = datetime.now(UTC)
            await self._store(
                self.executions.record_execution,
                replace(
                    done,
                    execution_id=new_id(),
                    status="skipped",
                    started_at=now,
                    finished_at=now,
                    run_id=event.correlation_id,
                    input_event_id=event.id,
                    lease_expires_at=None,
                    holder=self.consumer,
                    published_at=now,  # the outbox is the done execution's
                ),
            )
        return outputs

    async def _execute(self, delivery: Delivery, execution: StageExecution) -> list[Event] | None:
        """Run the handler and record how it ended: the events to announce, or ``None`` when
        the delivery was settled here (a retry scheduled) or must be left alone (the work
        was lost to another holder: nothing is announced, acked or nacked)."""
        event = delivery.event
        try:
            outcome = await self._handle(delivery, execution)
        except PERMANENT_ERRORS as exc:
            failed = event.caused(
                STAGE_FAILED,
                {"stage": self.stage.name, "error": str(exc), "error_type": type(exc).__name__},
            )
            if not await self._finish(execution, "failed", [failed], error=str(exc)):
                return None
            log.warning("%s failed: %s", self.stage.name, exc, extra={"stage": self.stage.name})
            return [failed]
        except LeaseLostError:  # a write of the handler was refused: the work is elsewhere
            await self._discarded(execution)
            return None
        except Exception as exc:
            final = delivery.attempt >= self.bus.max_attempts
            gave_up = []
            if final:  # announce the give-up, so the run (and anyone watching) learns of it
                gave_up = [
                    event.caused(
                        STAGE_FAILED,
                        {
                            "stage": self.stage.name,
                            "error": f"gave up after {delivery.attempt} attempts: {exc!r}",
                            "error_type": type(exc).__name__,
                        },
                    )
                ]
            status = "failed" if final else "running"
            if not await self._finish(execution, status, gave_up, error=repr(exc)):
                return None
            if gave_up and not await self._announce(gave_up, execution.execution_id):
                return None
            log.warning(
                "%s failed on attempt %d of %d: %r",
                self.stage.name,
                delivery.attempt,
                self.bus.max_attempts,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            await self.bus.nack(delivery, error=repr(exc), delay=retry_delay(delivery.attempt))
            return None
        outputs = [event.caused(a.type, a.payload, key=a.key) for a in outcome.announcements]
        if not await self._finish(execution, "succeeded", outputs):
            return None
        return outputs

    async def _finish(
        self,
        execution: StageExecution,
        status: str,
        outputs: list[Event],
        *,
        error: str | None = None,
    ) -> bool:
        """Record how the execution ended if it still holds the work (the fenced commit);
        ``False`` if it lost it: its results are discarded, the loss logged once."""
        now = datetime.now(UTC)
        finished = replace(
            execution,
            status=status,  # type: ignore[arg-type]
            finished_at=now,
            lease_expires_at=now,  # released: a retry (still "running") may claim it at once
            outputs=[e.model_dump(mode="json") for e in outputs],
            error=error,
            published_at=None if outputs else now,  # nothing to publish: out of the outbox
        )
        if await self._store(self.executions.finish_execution, finished):
            return True
        await self._discarded(execution)
        return False

    async def _discarded(self, execution: StageExecution) -> None:
        """Say once that ``execution`` lost its work, naming who holds it now."""
        try:
            now = await self._store(
                self.executions.find_execution, self.stage.name, execution.idempotency_key
            )
        except BackendError:
            now = None
        if now is None or now.execution_id == execution.execution_id:
            to = "another worker (or gristmill gc)"
        else:
            to = f"worker {now.holder or '?'} (execution {now.execution_id})"
        log.warning(
            "execution %s lost its lease to %s; its results were discarded",
            execution.execution_id,
            to,
            extra={"stage": self.stage.name, "event_id": execution.input_event_id},
        )


class _LeaseKeeper(threading.Thread):
    """Renews an execution's lease every ``ack_wait / 3`` on its own thread until ``stop``;
    sets ``lost`` (and ends) once the execution no longer runs (it was taken over)."""

    def __init__(self, worker: StageWorker, delivery: Delivery, execution_id: str) -> None:
        super().__init__(name=f"gristmill-lease-{execution_id}", daemon=True)
        self.executions = worker.executions
        self.execution_id = execution_id
        self.ack_wait = worker.bus.ack_wait
        self.extra = {"stage": worker.stage.name, "event_id": delivery.event.id}
        self.stop = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        lease = timedelta(seconds=self.ack_wait)
        store_down = OutageLog()  # each failure said once, then at growing intervals
        while not self.stop.wait(self.ack_wait / HEARTBEATS_PER_LEASE):
            until = datetime.now(UTC) + lease
            try:
                renewed = self.executions.renew_lease(self.execution_id, until)
            except BackendError as exc:  # an outage: keep trying, the lease may still hold
                if store_down.failed():
                    log.warning(
                        "could not renew the lease of %s: %s",
                        self.execution_id,
                        exc,
                        extra=self.extra,
                    )
                continue
            store_down.recovered()
            if not renewed:
                log.info(
                    "execution %s was taken over while it ran (it renewed its lease too late)",
                    self.execution_id,
                    extra=self.extra,
                )
                self.lost.set()
                return
