"""Batch score jobs over HTTP: ``POST /v1/jobs`` answers a job id at once, ``GET`` follows
it to the end; run by the server itself or by a ``scoring`` worker over the bus; a webhook
is POSTed the summary and the bus hears ``scores.ready``; wrong requests are 4xx naming
the thing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import SCORES_READY, SCORES_REQUESTED
from gristmill.runtime.stages import scoring_stage
from gristmill.runtime.wiring import open_services
from gristmill.runtime.worker import StageWorker
from gristmill.server.app import create_app
from gristmill.stages.preparation import run_spec_resolver
from gristmill.stores.metadata import StageExecution
from gristmill.stores.scores import SCORING_STAGE, ScoreJob, job_key
from gristmill.testing.registered import penguins, train_penguins

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    folder = tmp_path_factory.mktemp("server_jobs")
    settings = load_settings(
        overrides={
            "home": str(folder / "home"),
            "executor": {"backend": "inline"},
            "serve": {"poll_seconds": 3600},
            "scoring": {"partition_rows": 100},
        }
    )
    asyncio.run(train_penguins(settings, folder))
    penguins().drop(columns=["species"]).to_csv(folder / "birds.csv", index=False)
    return settings, folder


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
            yield client


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP endpoint that records what is POSTed to it (it fails the first time)."""
    received: list[dict[str, Any]] = []
    calls = [0]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls[0] += 1
            body = self.rfile.read(int(self.headers["content-length"]))
            if calls[0] == 1:
                self.send_response(503)  # a webhook down at first: retried
            else:
                received.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


async def wait_for_end(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        answer = await client.get(f"/v1/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        if answer.json()["state"] in ("succeeded", "failed"):
            return dict(answer.json())
        await asyncio.sleep(0.05)
    pytest.fail(f"job {job_id} never ended")


async def test_the_server_runs_a_job_and_posts_its_webhook(
    trained: tuple[Settings, Path], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    settings, folder = trained
    scoring = settings.scoring.model_copy(update={"server_runs_jobs": True})
    settings = settings.model_copy(update={"scoring": scoring})
    url, received = webhook
    async with serving(settings) as client:
        body = {"model": "penguins_logreg", "input": str(folder / "birds.csv"), "webhook": url}
        answer = await client.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        assert answer.json()["url"] == f"/v1/jobs/{job_id}"
        job = await wait_for_end(client, job_id)
    assert (job["state"], job["rows"], job["bad_rows"]) == ("succeeded", 344, 0)
    assert job["progress"] == {"done": 4, "total": 4} and job["version"] == 1
    assert job["where"].endswith(job_id)
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.05)
    assert [(r["job_id"], r["state"], r["rows"]) for r in received] == [(job_id, "succeeded", 344)]
    async with open_services(settings) as services:
        ready = await services.bus.consume("observer", SCORES_READY, "o", max_events=10, wait=1)
        held = services.metadata.executions.find_execution(SCORING_STAGE, job_key(job_id))
    assert [d.event.payload["job_id"] for d in ready] == [job_id]
    assert held is not None and held.status == "succeeded"  # held as a worker holds it
    assert held.holder == f"serve@{socket.gethostname()}:{os.getpid()}"


async def test_a_job_whose_holder_died_is_answered_stopped(trained: tuple[Settings, Path]) -> None:
    settings, _ = trained
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = datetime.now(UTC)
    async with open_services(settings) as services:
        job = ScoreJob("job-dead", "penguins_logreg", "birds.csv", "running", now)
        services.metadata.score_jobs.save_job(job)
        services.metadata.executions.record_execution(
            StageExecution(
                "ex-dead", SCORING_STAGE, job_key(job.job_id), "running", now,
                lease_expires_at=now + timedelta(seconds=30),
                holder=f"scoring@{socket.gethostname()}:{dead.pid}",
            )
        )  # fmt: skip
    async with serving(settings) as client:
        answer = await client.get("/v1/jobs/job-dead")
    shown = answer.json()
    assert (shown["state"], shown["recorded_state"]) == ("stopped", "running")
    assert shown["stopped"] == f"its process scoring@{socket.gethostname()}:{dead.pid} is gone"
    assert shown["resume"] == "gristmill score penguins_logreg birds.csv --job job-dead"


async def test_a_job_asked_over_http_is_run_by_a_scoring_worker(
    trained: tuple[Settings, Path],
) -> None:
    settings, _folder = trained
    async with serving(settings) as client:
        answer = await client.post(
            "/v1/jobs", json={"model": "penguins_logreg@champion", "input": "source:penguins"}
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["job_id"]
        assert (await client.get(f"/v1/jobs/{job_id}")).json()["state"] == "queued"
        async with open_services(settings) as services:
            stage = scoring_stage("scoring", services, run_spec_resolver(services.metadata, None))
            worker = StageWorker(stage, services.bus, services.metadata.executions)
            (delivery,) = await services.bus.consume("scoring", SCORES_REQUESTED, "w", wait=1)
            assert delivery.event.payload["job_id"] == job_id
            await worker.process(delivery)
        job = await wait_for_end(client, job_id)
    assert (job["state"], job["input_kind"], job["rows"]) == ("succeeded", "batch", 344)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "nobody", "input": "source:penguins"}, 404, "no model named 'nobody'"),
        ({"model": "penguins_logreg", "input": "nowhere.csv"}, 400, "no file nowhere.csv"),
        ({"model": "penguins_logreg", "input": "source:fish"}, 404, "source 'fish'"),
        ({"model": "penguins_logreg"}, 400, "needs 'input'"),
        ({"model": "p", "input": "x", "colour": 1}, 400, "no field 'colour'"),
        ({"model": "p", "input": "x", "webhook": "ftp://x"}, 400, "http(s) URL"),
        ([1, 2], 400, "the body of /v1/jobs"),
    ],
)
async def test_wrong_requests_are_refused_naming_the_thing(
    trained: tuple[Settings, Path], body: Any, status: int, message: str
) -> None:
    settings, _ = trained
    async with serving(settings) as client:
        answer = await client.post("/v1/jobs", json=body)
        assert answer.status_code == status, answer.text
        assert message in answer.json()["error"]
        missing = await client.get("/v1/jobs/nope")
        assert missing.status_code == 404 and "gristmill jobs" in missing.json()["error"]


async def test_the_jobs_are_in_the_openapi_document(trained: tuple[Settings, Path]) -> None:
    settings, _ = trained
    async with serving(settings) as client:
        document = (await client.get("/openapi.json")).json()
    start = document["paths"]["/v1/jobs"]["post"]
    assert start["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobRequest"
    }
    assert {"202", "400", "404"} <= set(start["responses"]) and "200" not in start["responses"]
    show = document["paths"]["/v1/jobs/{job_id}"]["get"]
    assert [p["name"] for p in show["parameters"]] == ["job_id"]
    assert {"JobRequest", "JobAccepted", "Job"} <= set(document["components"]["schemas"])


async def test_a_failed_job_posts_its_webhook_too(
    trained: tuple[Settings, Path], webhook: tuple[str, list[dict[str, Any]]]
) -> None:
    settings, folder = trained
    scoring = settings.scoring.model_copy(update={"server_runs_jobs": True})
    settings = settings.model_copy(update={"scoring": scoring})
    thin = folder / "thin.csv"
    penguins().drop(columns=["island"]).to_csv(thin, index=False)
    url, received = webhook
    async with serving(settings) as client:
        body = {"model": "penguins_logreg", "input": str(thin), "webhook": url}
        answer = await client.post("/v1/jobs", json=body)
        assert answer.status_code == 202, answer.text
        job = await wait_for_end(client, answer.json()["job_id"])
    assert job["state"] == "failed" and "lacks column(s) island" in job["error"]
    for _ in range(100):
        if received:
            break
        await asyncio.sleep(0.05)
    assert [(r["job_id"], r["state"]) for r in received] == [(job["job_id"], "failed")]
