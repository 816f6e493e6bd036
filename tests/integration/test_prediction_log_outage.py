"""The prediction log rides out bus outages: every file it wrote is announced, once it can be.

A real prediction server (in this process, its lifespan and all) on a broker this test runs
on its own port (Redis, NATS): the broker is killed while requests are served and started
again; then killed again and the *server* stopped during the outage, and a new server
started after it. Every row the servers logged must reach the monitoring stage's drift
windows and the live-quality stage's windows exactly once — also when a file is announced
twice. While the broker is away, the server says so in a line or two, not once a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from palmerpenguins import load_penguins

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import PREDICTIONS_LOGGED, Event
from gristmill.core.ids import new_id
from gristmill.runtime.stages import build_workers
from gristmill.runtime.wiring import open_services, open_stores
from gristmill.server.app import create_app
from gristmill.server.log_outbox import FOLDER, SCAN_AFTER
from gristmill.server.models import RegistryModels
from gristmill.testing.registered import PENGUIN_SECTION, train_and_register, write_csv
from gristmill.training.gate import promote

from .test_worker_outage import Broker, broker_of

pytestmark = pytest.mark.slow


def _penguins() -> Any:
    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    return frame


async def _train(settings: Settings, folder: Path) -> None:
    async with open_services(settings) as services:
        made = await train_and_register(
            services,
            write_csv(_penguins(), folder, "penguins"),
            model="penguins",
            section=PENGUIN_SECTION,
            candidates=[{"name": "logreg", "algorithm": "logistic_regression"}],
            metric="accuracy",
        )
        promote(services.metadata, made["logreg"].candidate_id, "birds")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with ``birds``/1 trained (on the embedded bus)."""
    folder = tmp_path_factory.mktemp("outage")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    asyncio.run(_train(settings, folder))
    return folder / "home"


@pytest.fixture(params=["redis", "nats"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    yield from broker_of(request.param, tmp_path)


def _settings(home: Path, broker: Broker, logs: Path) -> Settings:
    url = broker.url + ("/0" if broker.scheme == "redis" else "")
    return load_settings(
        overrides={
            "home": str(home),
            "executor": {"backend": "inline"},
            "bus": {"backend": broker.scheme, "url": url, "namespace": "logs", "ack_wait": 3.0},
            "serve": {"poll_seconds": 3600, "log_flush_seconds": 0.05, "log_url": str(logs)},
        }
    )


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, RegistryModels]]:
    models = RegistryModels(settings.serve)
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            yield client, models


ROWS = json.loads(_penguins().drop(columns=["species"]).iloc[:40].to_json(orient="records"))


async def _served(client: httpx.AsyncClient, models: RegistryModels, requests: int) -> int:
    """Send ``requests`` requests of 2 rows; wait until the log wrote them; the rows."""
    assert models.log is not None
    before = models.log.written
    for number in range(requests):
        rows = ROWS[(2 * number) % 40 : (2 * number) % 40 + 2]
        answer = await client.post("/v1/models/birds/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    while models.log.written < before + requests:
        assert time.monotonic() < deadline, "the log did not write the requests"
        await asyncio.sleep(0.05)
    return 2 * requests


def _markers(logs: Path) -> list[Path]:
    return sorted((logs / FOLDER).glob("*.json"))


async def _until(what: str, check: Any, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _counted(settings: Settings) -> tuple[int, int]:
    """Rows in the drift windows of birds, rows in its live-quality windows."""
    since = datetime.now(UTC) - timedelta(days=1)
    with open_stores(settings) as stores:
        drift = sum(w.rows for w in stores.metadata.drift.list_windows("birds", since=since))
        quality = sum(w.predictions for w in stores.metadata.feedback.list_windows("birds"))
    return drift, quality


async def _count_with_workers(settings: Settings, rows: int, extra: list[Event]) -> None:
    """Run the monitoring and live-quality workers until birds' windows hold ``rows`` rows
    more each (publishing ``extra`` first), then a little longer: they must hold no more."""
    before = _counted(settings)  # of the other broker's test, on the same home
    rows_after = (before[0] + rows, before[1] + rows)
    async with open_services(settings) as services:
        await services.bus.publish(extra)
        workers = build_workers(services, ("monitoring", "live-quality"))
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop, poll=0.05)) for w in workers]
        try:
            await _until(f"{rows} rows counted", lambda: _counted(settings) == rows_after, 120)
            await asyncio.sleep(3)  # duplicates, had they been counted, would show by now
        finally:
            stop.set()
            await asyncio.gather(*tasks)
    assert _counted(settings) == rows_after


async def test_files_logged_while_the_bus_is_away_are_announced_once_it_is_back(
    home: Path, broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    logs = tmp_path / "predictions"
    settings = _settings(home, broker, logs)
    caplog.set_level(logging.WARNING, logger="gristmill.server")
    rows = 0
    async with _serving(settings) as (client, models):
        rows += await _served(client, models, 3)
        broker.kill()
        rows += await _served(client, models, 4)  # written, not announced: kept in the outbox
        await asyncio.sleep(3)  # the server keeps trying to read promotions, and to announce
        assert _markers(logs), "no file waits in the outbox"
        broker.start()
        rows += await _served(client, models, 3)
        await _until("the outbox emptied on a later flush", lambda: not _markers(logs))

        broker.kill()  # again, and this time the server stops before the bus is back
        rows += await _served(client, models, 2)
    waiting = _markers(logs)
    assert waiting, "the stopped server left nothing in the outbox"
    await asyncio.sleep(SCAN_AFTER)  # another server announces markers this old
    broker.start()
    async with _serving(settings) as (client, models):
        await _until("the new server announced what the old one left", lambda: not _markers(logs))
        rows += await _served(client, models, 2)
        await _until("the last files announced", lambda: not _markers(logs))

    # the outage was said without flooding: a line or two per concern, no tracebacks
    reload = [r for r in caplog.records if r.name == "gristmill.server.reload"]
    assert 1 <= len(reload) <= 6, [r.getMessage() for r in reload]
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("gristmill.server"))
    told = [r.getMessage() for r in caplog.records if r.name == "gristmill.server.prediction_log"]
    assert any("could not announce" in m for m in told), told

    # every file was announced; one of them twice more (a relay racing its server)
    files = sorted(logs.glob("birds/1/*.parquet"))
    assert not list(logs.glob("birds/1/.*.tmp"))
    again = Event(
        type=PREDICTIONS_LOGGED,
        key="birds",
        payload={"model": "birds", "version": 1, "path": str(files[0]), "records": 1},
    )
    await _count_with_workers(settings, rows, [again, again.model_copy(update={"id": new_id()})])
