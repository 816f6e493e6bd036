"""The scheduler on real stores and a real bus: a source's schedule ingests it in a run of its
own; schedulers racing for a tick fire it once (SQLite and PostgreSQL); a scheduler down
across ticks fires the newest once; ticks before a schedule was recorded are not fired; a
tick claimed but not published is published by another; a spec given again replaces its
pipeline's schedules. Clocks are injected: a test is a few seconds of real time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import RAW_INGESTED, SOURCE_AVAILABLE, Event
from gristmill.runtime.run_records import record_spec
from gristmill.runtime.schedule_views import schedule_views
from gristmill.runtime.scheduler import SCHEDULE_COMMAND, Scheduler
from gristmill.runtime.stages import build_workers
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.schedules import Tick
from gristmill.testing.data import numbers_table, write_csv

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> Iterator[Settings]:
    overrides: dict[str, Any] = {"home": str(tmp_path / "home")}
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        overrides["metadata"] = {"backend": "postgres", "url": url, "db_schema": namespace}
    yield load_settings(overrides=overrides)
    if request.param == "postgres":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
        engine.dispose()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        yield opened


def nightly_spec(folder: Path, *, cron: str | None = "0 2 * * *") -> PipelineSpec:
    write_csv(folder / "numbers.csv", numbers_table(50))
    source: dict[str, Any] = {"format": "csv", "path": str(folder / "numbers.csv")}
    if cron is not None:
        source["schedule"] = cron
    return parse_spec({"name": "nightly", "sources": {"numbers": source}})


async def until(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    """``condition()``'s first truthy value, asked every 50 ms; fails after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {condition}")
        await asyncio.sleep(0.05)


async def published(services: Services, event_type: str) -> list[Event]:
    """Every event of ``event_type`` on the bus so far (an observer group of its own)."""
    deliveries = await services.bus.consume("observer", event_type, "o", max_events=100, wait=0.5)
    for delivery in deliveries:
        await services.bus.ack(delivery)
    return [delivery.event for delivery in deliveries]


async def test_a_source_schedule_ingests_it_in_a_run_of_its_own(
    services: Services, tmp_path: Path
) -> None:
    spec = nightly_spec(tmp_path)
    stored = record_spec(services.metadata, spec, tmp_path, now=at())
    scheduler = Scheduler(
        services.bus, services.feature_stores(), clock=lambda: at(days=1, hours=3)
    )
    (ingestion,) = build_workers(services, ("ingestion",))
    stop = asyncio.Event()
    running = [
        asyncio.create_task(scheduler.run(stop, poll=0.05)),
        asyncio.create_task(ingestion.run(stop, poll=0.05)),
    ]
    try:
        batch = await until(lambda: services.metadata.batches.latest_batch("numbers"))
    finally:
        stop.set()
        await asyncio.gather(*running)

    tick = services.metadata.schedules.find_tick("nightly/ingest/numbers", at(days=1, hours=2))
    assert tick is not None and tick.outcome == "fired" and tick.published_at is not None
    assert scheduler.handled == 1  # the newest tick only: the one of day 0 is before `since`
    run = services.metadata.runs.get_run(tick.ref or "")
    assert (run.pipeline, run.spec_digest) == ("nightly", stored.digest)
    assert run.summary["command"] == SCHEDULE_COMMAND
    (execution,) = services.metadata.executions.list_executions(run.run_id)
    assert execution.stage == "ingestion" and execution.status == "succeeded"
    (announced,) = execution.outputs
    assert announced["type"] == RAW_INGESTED
    assert announced["payload"]["batch_id"] == batch.batch_id and batch.row_count == 50
    (view,) = schedule_views(services.metadata, at(days=1, hours=3))
    assert (view.state, view.batches, view.fired) == ("ingested", [batch.batch_id], tick)
    assert view.next_tick == at(days=2, hours=2)


async def test_racing_schedulers_fire_a_tick_once(
    settings: Settings, services: Services, tmp_path: Path
) -> None:
    record_spec(services.metadata, nightly_spec(tmp_path), now=at())
    now = at(hours=2, minutes=1)
    async with AsyncExitStack() as stack:  # schedulers of two processes' stores, three each
        others = await stack.enter_async_context(open_services(settings))
        schedulers = [
            Scheduler(opened.bus, opened.feature_stores(), clock=lambda: now)
            for opened in (services, others)
            for _ in range(3)
        ]
        claimed = await asyncio.gather(*(s.fire_due(now) for s in schedulers))

    assert sum(len(ticks) for ticks in claimed) == 1
    assert sum(s.handled for s in schedulers) == 1
    (event,) = await published(services, SOURCE_AVAILABLE)
    (tick,) = [tick for ticks in claimed for tick in ticks]
    assert event.correlation_id == tick.ref and event.key == "numbers"
    runs = [r for r in services.metadata.runs.list_runs() if r.summary.get("command") == "schedule"]
    assert [r.run_id for r in runs] == [tick.ref]


async def test_a_scheduler_down_across_ticks_fires_the_newest_once(
    services: Services, tmp_path: Path
) -> None:
    record_spec(services.metadata, nightly_spec(tmp_path, cron="0 * * * *"), now=at())
    scheduler = Scheduler(services.bus, services.feature_stores())
    (tick,) = await scheduler.fire_due(at(hours=5, minutes=30))
    assert tick.tick_at == at(hours=5)
    assert await scheduler.fire_due(at(hours=5, minutes=59)) == []
    schedules = services.metadata.schedules
    missed = [schedules.find_tick(tick.key, at(hours=h)) for h in range(5)]
    assert missed == [None] * 5  # not fired late, not recorded: no burst
    assert len(await published(services, SOURCE_AVAILABLE)) == 1


async def test_ticks_before_a_schedule_was_recorded_are_not_fired(
    services: Services, tmp_path: Path
) -> None:
    record_spec(services.metadata, nightly_spec(tmp_path, cron="0 * * * *"), now=at(minutes=30))
    scheduler = Scheduler(services.bus, services.feature_stores())
    assert await scheduler.fire_due(at(minutes=59)) == []
    (tick,) = await scheduler.fire_due(at(hours=1, seconds=1))
    assert tick.tick_at == at(hours=1)
    # given again unchanged (another `run` of it), it keeps its start and fires no more
    record_spec(services.metadata, nightly_spec(tmp_path, cron="0 * * * *"), now=at(hours=1.5))
    (schedule,) = services.metadata.schedules.list_schedules()
    assert schedule.since == at(minutes=30)


async def test_a_tick_claimed_but_not_published_is_published_by_another(
    services: Services, tmp_path: Path
) -> None:
    record_spec(services.metadata, nightly_spec(tmp_path), now=at())
    first = Scheduler(services.bus, services.feature_stores())
    (tick,) = await first.fire_due(at(hours=2))
    await published(services, SOURCE_AVAILABLE)  # the first announcement, taken
    # as if its scheduler had died between the claim and the publication
    lost = replace(tick, key="nightly/ingest/lost", published_at=None)
    assert services.metadata.schedules.claim_tick(lost)
    other = Scheduler(services.bus, services.feature_stores())
    assert await other.relay(at(hours=2, seconds=5)) == 0  # its scheduler may still publish
    assert await other.relay(at(hours=2, seconds=30)) == 1
    (again,) = await published(services, SOURCE_AVAILABLE)
    assert again.id == tick.events[0]["id"]  # the same event, the same id
    marked = services.metadata.schedules.find_tick(lost.key, lost.tick_at)
    assert marked is not None and marked.published_at == at(hours=2, seconds=30)
    assert await other.relay(at(hours=3)) == 0


async def test_a_spec_given_again_replaces_its_pipelines_schedules(
    services: Services, tmp_path: Path
) -> None:
    record_spec(services.metadata, nightly_spec(tmp_path), now=at())
    (schedule,) = services.metadata.schedules.list_schedules()
    assert (schedule.key, schedule.timing) == ("nightly/ingest/numbers", "cron 0 2 * * *")
    record_spec(services.metadata, nightly_spec(tmp_path, cron=None), now=at(hours=1))
    assert services.metadata.schedules.list_schedules() == []


async def test_a_schedule_whose_spec_is_gone_is_skipped_saying_why(services: Services) -> None:
    spec = parse_spec({"name": "gone", "sources": {"s": {"format": "csv", "path": "/no.csv"}}})
    from gristmill.stores.schedules import Schedule

    schedule = Schedule(
        key="gone/ingest/s",
        pipeline=spec.name,
        action="ingest",
        target="s",
        timing="every 1h",
        spec_digest="sha256:nope",
        since=at(),
    )
    services.metadata.schedules.set_schedules("gone", [schedule])
    (tick,) = await Scheduler(services.bus, services.feature_stores()).fire_due(at(hours=1))
    assert tick.outcome == "skipped" and tick.events == [] and tick.published_at is not None
    assert "cannot fire: no pipeline spec with digest 'sha256:nope'" in tick.detail
    assert isinstance(tick, Tick)


async def test_a_broken_schedule_is_said_once_and_stops_no_other(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gristmill.stores.schedules import Schedule

    record_spec(services.metadata, nightly_spec(tmp_path, cron="0 * * * *"), now=at())
    broken = Schedule(
        key="broken/score",
        pipeline="broken",
        action="score",
        target="source:numbers",
        timing="every soon",  # no spec makes this: a row edited by hand
        spec_digest="sha256:x",
        since=at(),
    )
    services.metadata.schedules.set_schedules("broken", [broken])
    scheduler = Scheduler(services.bus, services.feature_stores())
    (tick,) = await scheduler.fire_due(at(hours=1))
    assert tick.key == "nightly/ingest/numbers"
    assert await scheduler.fire_due(at(hours=1, seconds=1)) == []
    said = [r.getMessage() for r in caplog.records if "cannot fire" in r.getMessage()]
    assert said == [
        "schedule broken/score cannot fire: ValueError(\"'soon' is not a duration; "
        'write e.g. 90s, 15m, 12h, 1d or 2w"); will try again'
    ]
