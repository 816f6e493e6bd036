"""A scoring worker SIGKILLed mid-partition: the request is redelivered, another worker
takes the job over after the lease, and every row is scored exactly once. Runs on every bus
backend (SQLite, Redis Streams, NATS JetStream).

The child process is a real ``StageWorker`` around the real ``ScoringStage``; it dies in
the middle of its eighth partition (scored, not yet written), after seven were committed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import SCORES_READY, SCORES_REQUESTED, Event
from gristmill.runtime.stages import scoring_stage
from gristmill.runtime.wiring import Services, build_score_store, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.preparation import run_spec_resolver
from gristmill.testing.registered import penguins, train_penguins

pytestmark = pytest.mark.slow
PARTITION_ROWS = 50
DIES_IN = 7

CHILD = """
import asyncio, json, os, signal, sys
from gristmill.config.settings import load_settings
from gristmill.runtime.stages import scoring_stage
from gristmill.runtime.wiring import open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages import score_jobs
from gristmill.stages.preparation import run_spec_resolver

settings = load_settings(overrides=json.loads(sys.argv[1]))
dies_in = int(sys.argv[2])
real = score_jobs.score_partition

class Dying:
    def __init__(self, store):
        self.store = store
    def write_partition(self, job_id, index, table, stats):
        if index == dies_in:  # scored, about to be written: the worst moment
            os.kill(os.getpid(), signal.SIGKILL)
        return self.store.write_partition(job_id, index, table, stats)

def dying_partition(work):
    from dataclasses import replace
    return real(replace(work, store=Dying(work.store)))

score_jobs.score_partition = dying_partition

async def main():
    async with open_services(settings) as services:
        stage = scoring_stage("scoring", services, run_spec_resolver(services.metadata, None))
        worker = StageWorker(stage, services.bus, services.metadata.executions)
        while True:
            for delivery in await services.bus.consume(
                "scoring", "scores.requested", worker.consumer, wait=1.0
            ):
                print("handling", delivery.event.id, flush=True)
                await worker.process(delivery)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("scoring_crash")
    overrides = {
        "home": str(folder / "home"),
        "executor": {"backend": "inline"},
        "bus": {"ack_wait": 1.0},
        "scoring": {"partition_rows": PARTITION_ROWS},
    }
    asyncio.run(train_penguins(load_settings(overrides=overrides), folder))
    return overrides, folder


@pytest.fixture(params=["sqlite", "redis", "nats"])
def overrides(
    request: pytest.FixtureRequest, trained: tuple[dict[str, Any], Path], namespace: str
) -> dict[str, Any]:
    """The trained home, on each bus backend (a namespace of its own)."""
    backend = request.param
    url = None if backend == "sqlite" else request.getfixturevalue(f"{backend}_url")
    bus = {"backend": backend, "url": url, "namespace": namespace, "ack_wait": 1.0}
    return {**trained[0], "bus": bus}


@pytest.fixture
async def services(overrides: dict[str, Any]) -> AsyncIterator[Services]:
    settings: Settings = load_settings(overrides=overrides)
    async with open_services(settings) as opened:
        yield opened
        purge = getattr(opened.bus, "purge", None)
        if purge is not None:
            await purge()


async def test_a_scoring_worker_killed_mid_partition_leaves_every_row_scored_once(
    services: Services, trained: tuple[dict[str, Any], Path], overrides: dict[str, Any]
) -> None:
    folder = trained[1]
    frame = pd.concat([penguins()] * 3, ignore_index=True).drop(columns=["species"])
    path = folder / "many_birds.csv"
    frame.to_csv(path, index=False)
    job_id = f"job-{overrides['bus']['backend']}"
    request = Event(
        type=SCORES_REQUESTED,
        key="penguins_logreg",
        payload={"job_id": job_id, "model": "penguins_logreg", "input": str(path)},
    )
    await services.bus.publish([request])

    child = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CHILD, json.dumps(overrides), str(DIES_IN)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    store = build_score_store(services.settings)
    halfway = services.metadata.score_jobs.get_job(job_id)
    # progress is recorded as results are collected, a partition or two behind the writes
    assert halfway.state == "running" and 0 < halfway.partitions_done <= DIES_IN
    assert store.manifest(job_id) is None  # nothing visible yet
    written = {p: p.stat().st_mtime_ns for p in Path(halfway.location or "").glob("part-*")}
    assert len(written) == DIES_IN

    stage = scoring_stage("scoring", services, run_spec_resolver(services.metadata, None))
    worker = StageWorker(stage, services.bus, services.metadata.executions)
    attempt = 0
    for _ in range(30):
        for delivery in await services.bus.consume("scoring", SCORES_REQUESTED, "survivor", wait=1):
            assert delivery.event == request
            await worker.process(delivery)
            attempt = delivery.attempt
        if attempt:
            break
    assert attempt >= 2, "the request was never redelivered"

    job = services.metadata.score_jobs.get_job(job_id)
    total = -(-len(frame) // PARTITION_ROWS)
    assert (job.state, job.partitions_done, job.partitions_total) == ("succeeded", total, total)
    assert (job.rows, job.bad_rows) == (len(frame), 0)
    scores = store.read(job_id).to_pandas()
    assert sorted(scores["row"]) == list(range(len(frame)))  # every row, exactly once
    assert not scores.duplicated(["input_id", "row"]).any()  # what names a row (ADR 25)
    for part, modified in written.items():
        assert part.stat().st_mtime_ns == modified  # committed once, never rewritten
    ready = await services.bus.consume("observer", SCORES_READY, "o", max_events=10, wait=1)
    assert [d.event.payload["job_id"] for d in ready] == [job_id]
    assert ready[0].event.payload["rows"] == len(frame)
