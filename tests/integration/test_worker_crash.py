"""A worker SIGKILLed while handling an event: the event comes back, its effect happens once.

Runs on every bus backend. The child process is a real ``StageWorker`` around the real
ingestion stage; it dies either right after the work is done (the batch written, nothing
recorded, published or acked — the case that would duplicate a batch) or at a random moment
during the work.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.config.sources import SourceSpec
from gristmill.core.events import RAW_INGESTED, SOURCE_AVAILABLE, Event
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.ingestion import IngestionStage
from gristmill.testing.data import numbers_table, write_csv

CHILD = """
import asyncio, json, os, random, signal, sys, threading
from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.ingestion import IngestionStage

settings = load_settings(overrides=json.loads(sys.argv[1]))
mode = sys.argv[2]

class DiesAfterTheWork(IngestionStage):
    def handle(self, event):
        outcome = super().handle(event)
        os.kill(os.getpid(), signal.SIGKILL)
        return outcome

class DiesDuringTheWork(IngestionStage):
    def handle(self, event):
        delay = random.uniform(0.0, 0.3)
        threading.Timer(delay, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
        outcome = super().handle(event)
        os.kill(os.getpid(), signal.SIGKILL)
        return outcome

async def main():
    async with open_services(settings) as services:
        cls = DiesAfterTheWork if mode == "after" else DiesDuringTheWork
        worker = StageWorker(cls(services.raw, services.metadata), services.bus,
                             services.metadata.executions)
        while True:
            for delivery in await services.bus.consume(
                "ingestion", "source.available", worker.consumer, wait=1.0
            ):
                print("handling", delivery.event.id, flush=True)
                await worker.process(delivery)

asyncio.run(main())
"""


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
    settings: Settings = load_settings(overrides=overrides)
    async with open_services(settings) as opened:
        yield opened
        purge = getattr(opened.bus, "purge", None)
        if purge is not None:
            await purge()


def kill_child(overrides: dict[str, Any], mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(overrides), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def handle_redelivery(services: Services, event: Event) -> int:
    """Consume until ``event`` comes back, handle it with a fresh worker; its attempt."""
    worker = StageWorker(
        IngestionStage(services.raw, services.metadata),
        services.bus,
        services.metadata.executions,
    )
    for _ in range(20):
        for delivery in await services.bus.consume(
            "ingestion", SOURCE_AVAILABLE, "survivor", wait=1.0
        ):
            assert delivery.event == event
            await worker.process(delivery)
            return delivery.attempt
    pytest.fail("the event was never redelivered")


async def announced(services: Services) -> list[Event]:
    found: list[Event] = []
    for _ in range(5):
        deliveries = await services.bus.consume("observer", RAW_INGESTED, "o", max_events=50)
        found += [d.event for d in deliveries]
        for d in deliveries:
            await services.bus.ack(d)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["after", "during"])
async def test_killed_worker_event_is_redelivered_and_its_effect_happens_once(
    services: Services, overrides: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    path = write_csv(tmp_path / "numbers.csv", numbers_table(200_000))
    source = SourceSpec(name="numbers", format="csv", path=str(path), partition_rows=20_000)
    event = Event(
        type=SOURCE_AVAILABLE, key="numbers", payload={"source": source.model_dump(mode="json")}
    )
    await services.bus.publish([event])

    child = await asyncio.to_thread(kill_child, overrides, mode)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert f"handling {event.id}" in child.stdout
    if mode == "after":
        assert len(services.raw.list()) == 1  # the effect happened before the kill

    attempt = await handle_redelivery(services, event)
    assert attempt >= 2

    (batch,) = services.raw.list()
    assert batch.row_count == 200_000
    assert services.raw.read(batch.batch_id).num_rows == 200_000
    ingested = await announced(services)
    assert {e.payload["batch_id"] for e in ingested} == {batch.batch_id}
    assert all(e.causation_id == event.id for e in ingested)
