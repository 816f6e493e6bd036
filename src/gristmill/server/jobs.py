"""Batch score jobs over HTTP: ``POST /v1/jobs`` starts one, ``GET /v1/jobs/{id}`` follows it.

``POST`` checks the request at once — the model names a registered version (else 404), the
input names something to score (else 400 or 404) — records the job ``queued`` and answers
``202`` with its id. Who runs it is a setting (``[scoring] server_runs_jobs``):

* ``false`` (the default): the server publishes ``scores.requested`` and a ``scoring`` worker
  (``gristmill worker --stage scoring``) runs it — the server stays a thin, fast front, the
  job survives a server restart, and a worker that dies mid-job is taken over (its lease);
* ``true``: this server runs it in a thread on its executor (one process, no workers); a
  server asked to stop lets the jobs it runs finish first.

Either way, at the end the job's webhook (if any) is POSTed its summary, retried, and
``scores.ready`` is announced on the bus. ``GET`` answers the job's state, progress, rows,
bad rows and errors, and where the scores are.

The scoring stage's modules (pandas, the learners) are imported by the routes that use
them, not with the server: a worker process must start fast (``cli.serving``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gristmill.config.settings import Settings
from gristmill.core.events import SCORES_READY, SCORES_REQUESTED, Event
from gristmill.core.ids import new_id
from gristmill.errors import DataError, GristmillError
from gristmill.runtime.wiring import Services, build_score_store
from gristmill.servables.loading import parse_ref, resolve_version
from gristmill.server.http import (
    JSONResponse,
    NotReadyError,
    check_token,
    error_response,
    json_of,
    prediction_token,
    request_id,
)
from gristmill.server.openapi import documented, operation, parameter
from gristmill.stores.scores import ScoreJob

if TYPE_CHECKING:
    from gristmill.runtime.job_views import JobView

logger = logging.getLogger(__name__)
JOB_ID = parameter("job_id", "The job's id, as POST /v1/jobs answered it")


class ScoreJobs:
    """The job routes' state: the services, attached when the server's lifespan opens them,
    and the jobs this server runs itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services: Services | None = None
        self._running: set[asyncio.Task[None]] = set()

    def attach(self, services: Services) -> None:
        self.services = services

    def _opened(self) -> Services:
        if self.services is None:
            raise NotReadyError("the server is starting; ask again in a moment")
        return self.services

    async def submit(self, body: object) -> ScoreJob:
        """Check and record the job ``body`` asks for, then hand it to whoever runs it."""
        services = self._opened()
        if not isinstance(body, dict):
            raise DataError('the body of /v1/jobs is {"model": ..., "input": ..., "webhook"?}')
        job = _requested(body)
        stores = services.feature_stores()

        def check_and_record() -> ScoreJob:
            from gristmill.stages.score_inputs import resolve_input

            name, which = parse_ref(job.model)
            resolve_version(stores, name, which)
            resolve_input(stores, job.input)
            return stores.metadata.score_jobs.add_job(job)

        job = await asyncio.to_thread(check_and_record)
        if self.settings.scoring.server_runs_jobs:
            task = asyncio.create_task(self._run(job), name=f"score-job-{job.job_id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        else:
            payload = {"job_id": job.job_id, "model": job.model, "input": job.input}
            if job.webhook:
                payload["webhook"] = job.webhook
            name, _ = parse_ref(job.model)
            await services.bus.publish([Event(type=SCORES_REQUESTED, key=name, payload=payload)])
        return job

    async def _run(self, job: ScoreJob) -> None:
        from gristmill.core.webhooks import notify
        from gristmill.stages.score_jobs import ready_payload, run_score_job
        from gristmill.stores.scores import job_summary

        services = self._opened()
        scoring = self.settings.scoring

        def held() -> ScoreJob:  # held as a worker holds it: a dead server's job shows stopped
            from gristmill.runtime.job_leases import holding_job
            from gristmill.runtime.worker import consumer_name

            executions, holder = services.metadata.executions, consumer_name("serve")
            ack_wait = self.settings.bus.ack_wait
            with holding_job(executions, job.job_id, holder=holder, ack_wait=ack_wait):
                return run_score_job(
                    job,
                    services.feature_stores(),
                    build_score_store(self.settings),
                    services.executor(),
                    partition_rows=scoring.partition_rows,
                )

        try:
            done = await asyncio.to_thread(held)
        except Exception as exc:  # recorded as the job's error, shown by GET
            if isinstance(exc, GristmillError):
                logger.warning("score job %s failed: %s", job.job_id, exc)
            else:
                logger.exception("score job %s failed", job.job_id)
            failed = await asyncio.to_thread(services.metadata.score_jobs.find_job, job.job_id)
            if failed is not None and failed.webhook:
                summary = job_summary(failed)
                attempts = scoring.webhook_attempts
                await asyncio.to_thread(notify, failed.webhook, summary, attempts=attempts)
            return
        if done.webhook:
            summary = job_summary(done)
            attempts = scoring.webhook_attempts
            await asyncio.to_thread(notify, done.webhook, summary, attempts=attempts)
        name, _ = parse_ref(done.model)
        ready = Event(type=SCORES_READY, key=name, payload=ready_payload(done))
        await services.bus.publish([ready])

    async def find(self, job_id: str) -> JobView:
        """The job as it stands (a job whose holder is gone is ``stopped``)."""
        from gristmill.runtime.job_views import view_job
        from gristmill.stores.run_status import stale_after

        metadata = self._opened().metadata
        stale = stale_after(self.settings.bus.ack_wait)

        def look() -> JobView:
            job = metadata.score_jobs.get_job(job_id)
            return view_job(metadata, job, now=datetime.now(UTC), stale=stale)

        return await asyncio.to_thread(look)

    async def close(self) -> None:
        """Wait for the jobs this server runs (a server stopping lets them finish)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def _requested(body: dict[Any, Any]) -> ScoreJob:
    unknown = sorted(str(k) for k in body if k not in ("model", "input", "webhook"))
    if unknown:
        raise DataError(
            f"the body of /v1/jobs has no field {unknown[0]!r}; it takes model, input, webhook",
            column=unknown[0],
        )
    from gristmill.stages.scoring import requested_job

    try:
        job = requested_job(body, new_id())
    except GristmillError as exc:
        field = next((f for f in ("model", "input", "webhook") if repr(f) in str(exc)), None)
        raise DataError(str(exc), column=field) from exc
    return ScoreJob(
        job.job_id, job.model, job.input, "queued", datetime.now(UTC), webhook=job.webhook
    )


def routes(jobs: ScoreJobs) -> list[BaseRoute]:
    """``POST /v1/jobs`` and ``GET /v1/jobs/{job_id}``."""
    serve = jobs.settings.serve

    async def start(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, prediction_token(serve))
            job = await jobs.submit(await json_of(request, serve.max_body_bytes))
        except Exception as exc:
            return error_response(exc, rid)
        answer = {"job_id": job.job_id, "state": job.state, "url": f"/v1/jobs/{job.job_id}"}
        return JSONResponse(answer, 202)

    async def show(request: Request) -> Response:
        rid = request_id(request)
        try:
            check_token(request, prediction_token(serve))
            view = await jobs.find(request.path_params["job_id"])
        except Exception as exc:
            return error_response(exc, rid)
        from gristmill.runtime.job_views import shown_summary

        return JSONResponse(shown_summary(view))

    return [
        Route(
            "/v1/jobs",
            documented(
                start,
                operation(
                    "Start a batch score job (answered at once with its id)",
                    body="JobRequest",
                    answer="JobAccepted",
                    status=202,
                    errors=(400, 401, 404, 413, 415, 503),
                ),
            ),
            methods=["POST"],
        ),
        Route(
            "/v1/jobs/{job_id}",
            documented(
                show,
                operation(
                    "A batch score job: state, progress, rows, errors, where its scores are",
                    parameters=(JOB_ID,),
                    answer="Job",
                    errors=(401, 404, 503),
                ),
            ),
        ),
    ]
