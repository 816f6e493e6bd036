"""The scheduler: fires the ticks of the pipelines' schedules, each once across all workers.

Every ``poll`` seconds, for each schedule the metadata store holds (``stores.schedules``),
the scheduler takes the newest tick at or before now (``Timing.latest``). A tick before the
schedule's ``since`` or already claimed is left alone; otherwise the tick is planned
(``stages.schedule_ticks``: a score job asked for, a source announced in a run, or a skip
and why), *claimed* — an insert keyed by (schedule, tick time) that exactly one scheduler
wins however many race — and, by the winner only, its events published and the tick
marked published. An ingest tick's run is recorded before the claim: its id is derived
from the tick, so racing schedulers record the same run once.

Catch-up: only the newest tick is ever due. A scheduler (or all of them) down across
several ticks fires the most recent one once when it is back, never a burst of the missed
ones. A tick's events not published a while after its claim (its scheduler died between
the two, or the bus was down) are published by any scheduler's relay: the same events,
with the same ids, so consumers see them once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from gristmill.bus.port import EventBus
from gristmill.config.spec import PipelineSpec
from gristmill.core.events import Event
from gristmill.core.outages import OutageLog
from gristmill.errors import PERMANENT_ERRORS, BackendError, ConfigError, ConflictError
from gristmill.features.stores import FeatureStores
from gristmill.runtime.run_records import start_run
from gristmill.runtime.stage_names import SCHEDULER_STAGE
from gristmill.runtime.worker import consumer_name, serve_until
from gristmill.stages.schedule_ticks import TickPlan, plan_ingest_tick, plan_score_tick
from gristmill.stores.schedules import Schedule, Tick
from gristmill.stores.specs import restored_spec

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEDULE_COMMAND = "schedule"
"""The command a scheduled ingest run records (``gristmill runs`` shows it)."""
RELAY_AFTER = 10.0
"""Seconds after its claim before another scheduler publishes a tick's events."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Fires the due ticks of every recorded schedule (see the module docstring).

    Run by ``gristmill worker`` as the stage ``scheduler`` (``--all`` includes it); any
    number of them may run, on any hosts sharing the metadata store and the bus. ``clock``
    gives the time (tests pass their own); ``handled`` counts the ticks it claimed.
    """

    name = SCHEDULER_STAGE
    consumes = "the clock (schedule ticks)"

    def __init__(
        self,
        bus: EventBus,
        stores: FeatureStores,
        *,
        clock: Clock = utc_now,
        outages: OutageLog | None = None,
    ) -> None:
        self.bus = bus
        self.stores = stores
        self.clock = clock
        self.outages = outages if outages is not None else OutageLog()
        self.consumer = consumer_name(SCHEDULER_STAGE)
        self.handled = 0
        self._specs: dict[str, PipelineSpec] = {}
        self._failing: dict[str, str] = {}  # schedule key -> the error last said

    async def run(self, stop: asyncio.Event, *, poll: float = 1.0, concurrency: int = 1) -> None:
        """Fire due ticks every ``poll`` seconds and relay unpublished ones, until ``stop``
        (``concurrency`` is ignored: ticks are few and quick to plan)."""

        async def step() -> None:
            now = self.clock()
            await self.fire_due(now)
            await self.relay(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)

        await serve_until(stop, step, SCHEDULER_STAGE, self.outages)

    async def fire_due(self, now: datetime | None = None) -> list[Tick]:
        """Claim and fire the due tick of every schedule; the ticks this call claimed."""
        now = now or self.clock()
        schedules = await self._call(self.stores.metadata.schedules.list_schedules)
        claimed = []
        for schedule in schedules:
            try:
                tick = await self._fire(schedule, now)
            except BackendError:
                raise  # an outage: serve_until retries with back-off
            except Exception as exc:  # one broken schedule must not stop the others
                self._failed(schedule, exc)
                continue
            self._failing.pop(schedule.key, None)
            if tick is not None:
                claimed.append(tick)
        return claimed

    def _failed(self, schedule: Schedule, exc: Exception) -> None:
        """Say that ``schedule`` cannot fire, once per different error (it is tried again
        at every poll)."""
        said = repr(exc)
        if self._failing.get(schedule.key) != said:
            self._failing[schedule.key] = said
            log.warning(
                "schedule %s cannot fire: %s; will try again",
                schedule.key,
                said,
                extra={"stage": SCHEDULER_STAGE, "schedule": schedule.key},
            )

    async def relay(self, now: datetime | None = None) -> int:
        """Publish the events of ticks claimed over ``RELAY_AFTER`` seconds ago and still
        unpublished; how many ticks."""
        now = now or self.clock()
        schedules = self.stores.metadata.schedules
        waiting = await self._call(schedules.list_unpublished, now - timedelta(seconds=RELAY_AFTER))
        for tick in waiting:
            log.warning(
                "publishing the events of tick %s of %s (claimed by %s, not published)",
                _at(tick.tick_at),
                tick.key,
                tick.holder,
                extra={"stage": SCHEDULER_STAGE},
            )
            await self._publish(tick, [Event.model_validate(item) for item in tick.events], now)
        return len(waiting)

    async def _fire(self, schedule: Schedule, now: datetime) -> Tick | None:
        due = schedule.when().latest(now)
        schedules = self.stores.metadata.schedules
        if due < schedule.since:
            return None
        if await self._call(schedules.find_tick, schedule.key, due) is not None:
            return None
        plan = await self._call(self._plan, schedule, due, now)
        tick = Tick(
            key=schedule.key,
            tick_at=due,
            fired_at=now,
            holder=self.consumer,
            outcome=plan.outcome,
            detail=plan.detail,
            input=plan.input,
            model=plan.model,
            ref=plan.ref,
            events=[event.model_dump(mode="json") for event in plan.events],
            published_at=None if plan.events else now,
        )
        if not await self._call(schedules.claim_tick, tick):
            return None  # another scheduler fired it
        self.handled += 1
        log.info(
            "tick %s of %s %s: %s",
            _at(due),
            schedule.key,
            plan.outcome,
            plan.detail,
            extra={"stage": SCHEDULER_STAGE, "schedule": schedule.key},
        )
        if plan.events:
            await self._publish(tick, plan.events, now)
        return tick

    def _plan(self, schedule: Schedule, due: datetime, now: datetime) -> TickPlan:
        """What the tick does; a schedule that cannot be planned (its spec gone or no longer
        valid) is a skipped tick saying why, not an outage."""
        try:
            if schedule.action == "score":
                return plan_score_tick(self.stores, schedule, due)
            spec = self._spec(schedule.spec_digest)
            source = spec.sources.get(schedule.target)
            if source is None:
                raise ConfigError(f"the spec of {schedule.key} has no source {schedule.target!r}")
            plan = plan_ingest_tick(schedule, source, due)
            self._record_run(spec, plan, now)
            return plan
        except PERMANENT_ERRORS as exc:
            return TickPlan("skipped", f"cannot fire: {exc}")

    def _record_run(self, spec: PipelineSpec, plan: TickPlan, now: datetime) -> None:
        """Record the run an ingest tick announces its source in (once, whoever races)."""
        if plan.ref is None or self.stores.metadata.runs.find_run(plan.ref) is not None:
            return
        with contextlib.suppress(ConflictError):  # another scheduler recorded it first
            start_run(
                self.stores.metadata,
                spec,
                actor=SCHEDULER_STAGE,
                command=SCHEDULE_COMMAND,
                run_id=plan.ref,
                announced=plan.events,
                in_process=False,
                schedules=False,
                sources=[event.key for event in plan.events],
            )

    def _spec(self, digest: str) -> PipelineSpec:
        spec = self._specs.get(digest)
        if spec is None:
            spec = self._specs[digest] = restored_spec(self.stores.metadata.specs.get_spec(digest))
        return spec

    async def _publish(self, tick: Tick, events: list[Event], now: datetime) -> None:
        await self.bus.publish(events)
        schedules = self.stores.metadata.schedules
        await self._call(schedules.mark_published, tick.key, tick.tick_at, now)

    async def _call(self, call: Callable[..., T], *args: Any) -> T:
        """``call(*args)`` off the event loop (the stores are synchronous)."""
        return await asyncio.to_thread(call, *args)


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
