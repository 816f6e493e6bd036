"""Streaming ingestion through the bus: records.appended -> micro-batches -> raw.ingested."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gristmill.bus.port import DEAD_LETTERED
from gristmill.config.settings import load_settings
from gristmill.core.events import RAW_INGESTED, Event
from gristmill.errors import ConfigError
from gristmill.runtime.stream import StreamIngestionWorker, records_event
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import retry_delay


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path), "bus": {"ack_wait": 2.0, "max_attempts": 2}}
    )
    async with open_services(settings) as opened:
        yield opened


async def run_for(worker: StreamIngestionWorker, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    await asyncio.sleep(seconds)
    stop.set()
    await task


async def run_until(
    worker: StreamIngestionWorker, done: Callable[[], Awaitable[bool]], deadline: float = 20.0
) -> None:
    """Run ``worker`` until ``done()`` holds (checked every 0.1 s), failing after ``deadline``."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    try:
        end = time.monotonic() + deadline
        while not await done():
            assert time.monotonic() < end, f"not done within {deadline}s"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task


async def drain(services: Services, event_type: str) -> list[Event]:
    deliveries = await services.bus.consume("observer", event_type, "o", max_events=100)
    for d in deliveries:
        await services.bus.ack(d)
    return [d.event for d in deliveries]


def clicks(start: int, count: int) -> list[dict[str, object]]:
    return [
        {"user": f"u{i % 7}", "page": f"/p/{i}", "ms": i * 1.5} for i in range(start, start + count)
    ]


async def test_size_bound_cuts_batches_and_everything_is_acked(services: Services) -> None:
    await services.bus.publish([records_event("clicks", clicks(i * 40, 40)) for i in range(5)])
    worker = StreamIngestionWorker(
        services.bus, services.raw, services.metadata, max_rows=100, max_seconds=0.5
    )
    await run_for(worker, 1.5)

    batches = services.raw.list(source="clicks")
    assert sum(b.row_count for b in batches) == 200
    assert max(b.row_count for b in batches) <= 100
    assert worker.handled == 5
    announced = await drain(services, RAW_INGESTED)
    assert {e.payload["batch_id"] for e in announced} == {b.batch_id for b in batches}
    # acked: nothing comes back after the lease would have expired
    await asyncio.sleep(2.2)
    assert (
        await services.bus.consume("stream-ingestion", "records.appended", "late", wait=0.2) == []
    )


async def test_time_bound_flushes_a_quiet_stream(services: Services) -> None:
    await services.bus.publish([records_event("clicks", clicks(0, 3))])
    worker = StreamIngestionWorker(
        services.bus, services.raw, services.metadata, max_rows=10_000, max_seconds=0.3
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, poll=0.05))
    await asyncio.sleep(1.0)
    assert [b.row_count for b in services.raw.list(source="clicks")] == [3]  # before stopping
    stop.set()
    await task


async def test_a_bad_message_is_dead_lettered_without_holding_up_the_rest(
    services: Services,
) -> None:
    bad = Event(type="records.appended", key="clicks", payload={"source": "clicks", "records": 5})
    await services.bus.publish([bad, records_event("clicks", clicks(0, 10))])
    worker = StreamIngestionWorker(
        services.bus, services.raw, services.metadata, max_rows=5, max_seconds=0.3
    )
    dead: list[Event] = []

    async def dead_lettered() -> bool:
        dead.extend(await drain(services, DEAD_LETTERED))
        return bool(dead)

    await run_until(worker, dead_lettered)  # the retry waits its back-off first
    assert sum(b.row_count for b in services.raw.list(source="clicks")) == 10
    assert [d.payload["event"]["id"] for d in dead] == [bad.id]
    assert "payload.records must be a list" in dead[0].payload["error"]


async def test_flush_window_must_fit_in_the_lease(services: Services) -> None:
    with pytest.raises(ConfigError, match="below the bus ack_wait"):
        StreamIngestionWorker(
            services.bus, services.raw, services.metadata, max_rows=10, max_seconds=5.0
        )


async def test_records_that_change_the_streams_schema_are_refused(services: Services) -> None:
    await services.bus.publish([records_event("clicks", clicks(0, 5))])
    worker = StreamIngestionWorker(
        services.bus, services.raw, services.metadata, max_rows=5, max_seconds=0.3
    )
    await run_for(worker, 0.6)
    changed = records_event("clicks", [{"user": 7, "page": "/x", "ms": "slow"}])
    widened = records_event("clicks", [{"user": "u9", "page": "/y", "ms": 3}])  # int fits float
    await services.bus.publish([changed, widened])
    dead: list[Event] = []

    async def dead_lettered() -> bool:
        dead.extend(await drain(services, DEAD_LETTERED))
        return bool(dead)

    await run_until(worker, dead_lettered)

    batches = services.raw.list(source="clicks")
    assert sum(b.row_count for b in batches) == 6
    assert {tuple(map(str, b.schema)) for b in batches} == {tuple(map(str, batches[0].schema))}
    assert [d.payload["event"]["id"] for d in dead] == [changed.id]
    assert "do not fit its schema" in dead[0].payload["error"]


async def test_a_bad_message_is_retried_with_back_off_not_in_a_tight_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        overrides={"home": str(tmp_path), "bus": {"ack_wait": 5.0, "max_attempts": 3}}
    )
    bad = Event(type="records.appended", key="clicks", payload={"source": "clicks", "records": 5})
    caplog.set_level(logging.WARNING, logger="gristmill.runtime.stream")
    async with open_services(settings) as services:
        await services.bus.publish([bad])
        worker = StreamIngestionWorker(
            services.bus, services.raw, services.metadata, max_rows=5, max_seconds=0.3
        )
        dead: list[Event] = []

        async def dead_lettered() -> bool:
            dead.extend(await drain(services, DEAD_LETTERED))
            return bool(dead)

        await run_until(worker, dead_lettered)

    # Each refusal is logged as it happens: the time between two is the back-off.
    times = [r.created for r in caplog.records if bad.id in r.getMessage()]
    assert len(times) == 3  # max_attempts
    for attempt, waited in enumerate(map(float.__sub__, times[1:], times), start=1):
        assert waited >= 0.9 * retry_delay(attempt), (
            f"attempt {attempt + 1} came {waited:.3f}s after attempt {attempt}"
        )
