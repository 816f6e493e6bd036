"""``score: {on: schedule}`` on real stores and a real bus, with a model trained the real way:
a scheduled job runs without a person and writes scores; a tick with nothing new is skipped
(a failed job, new data or no model at all say otherwise); schedulers racing for a tick
ask for one job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import SCORES_REQUESTED
from gristmill.ingestion import ingest
from gristmill.runtime.run_records import record_spec
from gristmill.runtime.scheduler import Scheduler
from gristmill.runtime.stages import build_workers
from gristmill.runtime.wiring import Services, build_score_store, open_services
from gristmill.stores.models import ModelVersion
from gristmill.stores.scores import ScoreJob
from gristmill.testing.registered import PENGUIN_SECTION, penguins, train_penguins

pytestmark = pytest.mark.slow

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ModelVersion, Path]:
    folder = tmp_path_factory.mktemp("scheduled")
    settings = load_settings(
        overrides={"home": str(folder / "home"), "executor": {"backend": "inline"}}
    )
    version = asyncio.run(train_penguins(settings, folder))
    return settings, version, folder


@pytest.fixture
async def services(trained: tuple[Settings, ModelVersion, Path]) -> AsyncIterator[Services]:
    async with open_services(trained[0]) as opened:
        yield opened


def scored_by_schedule(name: str, folder: Path, **score: Any) -> PipelineSpec:
    """A pipeline ``name`` scoring the penguins source with the trained model on a schedule."""
    return parse_spec(
        {
            "name": name,
            "sources": {"penguins": {"format": "csv", "path": str(folder / "penguins.csv")}},
            "score": {"model": "penguins_logreg", "source": "penguins", "on": "schedule"} | score,
        }
    )


async def until(condition: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s: {condition}")
        await asyncio.sleep(0.1)


async def test_a_scheduled_score_job_runs_without_a_person(
    services: Services, trained: tuple[Settings, ModelVersion, Path]
) -> None:
    settings, version, folder = trained
    record_spec(services.metadata, scored_by_schedule("every_second", folder, every="1s"))
    schedules = services.metadata.schedules
    newest = services.metadata.batches.latest_batch("penguins")
    assert newest is not None

    def job_done() -> ScoreJob | None:
        tick = schedules.latest_tick("every_second/score", outcome="fired")
        job = services.metadata.score_jobs.find_job(tick.ref) if tick and tick.ref else None
        return job if job is not None and job.state == "succeeded" else None

    stop = asyncio.Event()
    workers = build_workers(services, ("scheduler", "scoring"))
    running = [asyncio.create_task(w.run(stop, poll=0.1)) for w in workers]
    try:
        job = await until(job_done)
        skipped = await until(
            lambda: (
                (tick := schedules.latest_tick("every_second/score"))
                and tick.outcome == "skipped"
                and tick
            )
        )
    finally:
        stop.set()
        await asyncio.gather(*running)

    assert (job.model, job.version, job.input) == (
        f"penguins_logreg/{version.version}",
        version.version,
        f"batch:{newest.batch_id}",
    )
    assert job.rows == newest.row_count == 344 and job.bad_rows == 0
    scores = build_score_store(settings).read(job.job_id)
    assert scores.num_rows == 344
    assert skipped.detail.startswith(f"nothing new: batch:{newest.batch_id} with penguins_logreg")
    fired = schedules.latest_tick("every_second/score", outcome="fired")
    assert fired is not None and fired.ref == job.job_id  # scored once, then skipped


async def test_a_tick_with_nothing_new_is_skipped_until_something_changes(
    services: Services, trained: tuple[Settings, ModelVersion, Path]
) -> None:
    _, version, folder = trained
    record_spec(services.metadata, scored_by_schedule("hourly", folder, every="1h"), now=T0)
    scheduler = Scheduler(services.bus, services.feature_stores())
    hour = timedelta(hours=1)

    (first,) = await scheduler.fire_due(T0 + hour)
    assert first.outcome == "fired" and first.model == f"penguins_logreg/{version.version}"
    (second,) = await scheduler.fire_due(T0 + 2 * hour)
    assert second.outcome == "skipped" and second.ref is None and second.events == []
    assert second.detail.startswith(f"nothing new: {first.input} with {first.model} was scored")

    failed = ScoreJob(first.ref or "", first.model or "", first.input or "", "failed", T0)
    services.metadata.score_jobs.add_job(failed)  # the job it asked for failed: ask again
    (third,) = await scheduler.fire_due(T0 + 3 * hour)
    assert third.outcome == "fired" and third.input == first.input and third.ref != first.ref

    source = scored_by_schedule("hourly", folder, every="1h").sources["penguins"]
    fewer = source.model_copy(update={"path": _fewer_penguins(folder)})
    (written,) = ingest(fewer, services.raw, services.metadata)  # new data arrives
    (fourth,) = await scheduler.fire_due(T0 + 4 * hour)
    assert fourth.outcome == "fired" and fourth.input == f"batch:{written.batch.batch_id}"

    requested = await services.bus.consume("observer", SCORES_REQUESTED, "o", max_events=10)
    payloads = {d.event.payload["job_id"]: d.event.payload for d in requested}
    assert set(payloads) >= {first.ref, third.ref, fourth.ref}
    assert payloads[fourth.ref]["model"] == f"penguins_logreg/{version.version}"


async def test_no_model_to_score_with_is_a_skip_saying_so(
    services: Services, trained: tuple[Settings, ModelVersion, Path]
) -> None:
    spec = scored_by_schedule("nobody", trained[2], every="1h", model="nobody@champion")
    record_spec(services.metadata, spec, now=T0)
    (tick,) = await Scheduler(services.bus, services.feature_stores()).fire_due(
        T0 + timedelta(hours=1)
    )
    assert tick.outcome == "skipped"
    assert tick.detail.startswith("nothing to score with: no model named 'nobody' is registered")


async def test_schedulers_racing_for_a_tick_ask_for_one_job(
    services: Services, trained: tuple[Settings, ModelVersion, Path]
) -> None:
    settings, _, folder = trained
    record_spec(services.metadata, scored_by_schedule("raced", folder, cron="0 2 * * *"), now=T0)
    now = T0 + timedelta(hours=2, seconds=1)
    async with open_services(settings) as others:
        schedulers = [
            Scheduler(opened.bus, opened.feature_stores())
            for opened in (services, others, services, others)
        ]
        claimed = await asyncio.gather(*(s.fire_due(now) for s in schedulers))
    (tick,) = [tick for ticks in claimed for tick in ticks if tick.key == "raced/score"]
    requested = await services.bus.consume("racers", SCORES_REQUESTED, "o", max_events=50)
    asked = [d.event for d in requested if d.event.payload["job_id"] == tick.ref]
    assert len(asked) == 1 and tick.outcome == "fired"


def _fewer_penguins(folder: Path) -> str:
    path = folder / "fewer.csv"
    penguins().head(120).to_csv(path, index=False)
    return str(path)


async def test_a_feature_set_schedule_scores_the_newest_feature_set(
    services: Services, trained: tuple[Settings, ModelVersion, Path]
) -> None:
    folder = trained[2]
    spec = parse_spec(
        {
            "name": "by_features",
            "sources": {"penguins": {"format": "csv", "path": str(folder / "penguins.csv")}},
            "features": {"penguins_v1": {"from": ["penguins"], **PENGUIN_SECTION}},
            "score": {
                "model": "penguins_logreg@champion",
                "feature_set": "penguins_v1",
                "on": "schedule",
                "cron": "@daily",
            },
        }
    )
    record_spec(services.metadata, spec, now=T0)
    newest = services.metadata.feature_sets.latest_feature_set("penguins_v1")
    assert newest is not None
    (tick,) = [
        tick
        for tick in await Scheduler(services.bus, services.feature_stores()).fire_due(
            T0 + timedelta(days=1, minutes=5)
        )
        if tick.key == "by_features/score"
    ]
    assert (tick.outcome, tick.input) == ("fired", f"feature_set:{newest.feature_set_id}")
    assert tick.tick_at == T0 + timedelta(days=1) and tick.model == "penguins_logreg/1"
