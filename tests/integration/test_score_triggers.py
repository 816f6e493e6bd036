"""The ``score:`` triggers that ``gristmill worker --all`` runs: the raw batches of a pipeline
whose spec does not score new data are acknowledged with nothing recorded; those of one that
does are handled (an execution recorded, a job asked for once a version exists)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import RAW_INGESTED, Event
from gristmill.runtime.stage_names import ALL_STAGES
from gristmill.runtime.stages import build_workers, scoring_stage
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.preparation import run_spec_resolver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )


def pipeline(**score: Any) -> PipelineSpec:
    data: dict[str, Any] = {
        "name": "birds",
        "sources": {"birds": {"format": "csv", "path": "/data/birds.csv"}},
    }
    return parse_spec(data | ({"score": score} if score else {}))


async def until(condition: Callable[[], bool], stop: asyncio.Event, timeout: float = 30) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), timeout)
    finally:
        stop.set()


async def trigger_once(services: Services, spec: PipelineSpec) -> tuple[StageWorker, Event]:
    """A ``scoring-batches`` worker following ``spec`` meets one new raw batch of ``birds``."""
    stage = scoring_stage("scoring-batches", services, run_spec_resolver(services.metadata, spec))
    worker = StageWorker(stage, services.bus, services.metadata.executions)
    event = Event(type=RAW_INGESTED, key="birds", payload={"source": "birds", "batch_id": "b1"})
    await services.bus.publish([event])
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop, poll=0.05))
    await until(lambda: worker.handled + worker.passed > 0, stop)
    await running
    return worker, event


async def test_a_spec_without_score_is_passed_over_with_nothing_recorded(
    settings: Settings,
) -> None:
    async with open_services(settings) as services:
        worker, event = await trigger_once(services, pipeline())
        assert (worker.passed, worker.handled) == (1, 0)
        assert services.metadata.executions.list_executions(event.correlation_id) == []


async def test_a_spec_that_scores_new_batches_is_handled(settings: Settings) -> None:
    async with open_services(settings) as services:
        worker, event = await trigger_once(services, pipeline(source="birds"))
        assert (worker.passed, worker.handled) == (0, 1)
        (execution,) = services.metadata.executions.list_executions(event.correlation_id)
        assert (execution.stage, execution.status) == ("scoring-batches", "succeeded")
        assert execution.outputs == []  # no version of birds yet: nothing to score


async def test_a_scheduled_score_section_is_not_scoring_on_new_data(settings: Settings) -> None:
    async with open_services(settings) as services:
        worker, event = await trigger_once(
            services, pipeline(source="birds", on="schedule", every="1h")
        )
        assert worker.passed == 1
        assert services.metadata.executions.list_executions(event.correlation_id) == []


async def test_worker_all_runs_the_score_triggers(settings: Settings) -> None:
    async with open_services(settings) as services:
        consumers = {w.consumer.split("@")[0] for w in build_workers(services, ALL_STAGES)}
    assert {"scoring", "scoring-batches", "scoring-features", "scheduler"} <= consumers
