"""How score jobs stand now: a job recorded ``running`` runs only while its holder does.

Whoever runs a job — a ``scoring`` worker, ``gristmill score``, a server — holds it as the
``scoring`` stage's execution of ``job_key(job_id)``, under a lease renewed while it runs
(ADR 23). So a job recorded ``running`` (or ``queued`` once claimed) is shown ``stopped``
when that execution says its holder is gone: the holder's process is known dead (same
host), its lease lapsed long ago (``stale``, the rule of ``stores.run_status``), or the
execution was swept by ``gristmill gc`` or taken over and failed. Every reader (``jobs``,
``GET /v1/jobs/{id}``, ``gristmill schedules``, ``gc``) goes through here; readers do not
write. ``gristmill gc`` records the stopped ones ``failed``, as abandoned (``close_job``),
at any age: ``gristmill score … --job ID`` finishes them, and a holder that resumes one
records ``running`` again.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from gristmill.runtime.run_views import holder_alive
from gristmill.stores.metadata import MetadataStore, StageExecution
from gristmill.stores.run_status import GC_CLOSER, execution_state
from gristmill.stores.scores import SCORING_STAGE, ScoreJob, job_key, job_summary

JobStatus = Literal["queued", "running", "succeeded", "failed", "stopped"]


@dataclass(frozen=True)
class JobView:
    """``job`` as it stands: its ``status`` and, for a stopped one, ``why``."""

    job: ScoreJob
    status: JobStatus
    why: str = ""

    @property
    def resume(self) -> str:
        """The command that finishes the job where it stopped."""
        job = self.job
        words = ("gristmill", "score", job.model, job.input, "--job", job.job_id)
        return shlex.join(words)


def view_job(metadata: MetadataStore, job: ScoreJob, *, now: datetime, stale: timedelta) -> JobView:
    """``job`` as it stands (see the module docstring)."""
    if job.state not in ("queued", "running"):
        return JobView(job, job.state)
    held = metadata.executions.find_execution(SCORING_STAGE, job_key(job.job_id))
    if held is None:  # queued, not claimed yet (or run before holders were kept)
        return JobView(job, job.state)
    why = _gone(held, now, stale)
    return JobView(job, "stopped", why) if why else JobView(job, job.state)


def view_jobs(
    metadata: MetadataStore, jobs: Sequence[ScoreJob], *, now: datetime, stale: timedelta
) -> list[JobView]:
    return [view_job(metadata, job, now=now, stale=stale) for job in jobs]


def _gone(held: StageExecution, now: datetime, stale: timedelta) -> str:
    """Why the holder of ``held`` is gone ('' while it holds the job)."""
    holder = held.holder or "its holder"
    if held.status == "failed":  # swept by gc, or taken over and failed
        return (held.error or f"{holder} failed").removeprefix("abandoned: ")
    if held.status != "running":
        return ""
    if holder_alive(held.holder) is False:
        return f"its process {holder} is gone"
    if execution_state(held, now, stale=stale) == "stale":
        lease = held.lease_expires_at or held.started_at
        return f"{holder} stopped renewing its lease, which expired {lease:%Y-%m-%d %H:%M:%S} UTC"
    return ""


def closed_job(view: JobView, now: datetime) -> ScoreJob:
    """A stopped job as ``gristmill gc`` records it: ``failed``, saying why and how to
    finish it (a holder that resumes it records ``running`` again)."""
    error = f"abandoned: {view.why} (closed by {GC_CLOSER})"
    return replace(view.job, state="failed", finished_at=now, error=error)


def shown_summary(view: JobView) -> dict[str, Any]:
    """``job_summary`` of the job with its state as it stands; a stopped job also says why
    (``stopped``) and how to finish it (``resume``)."""
    body = job_summary(view.job) | {"state": view.status}
    if view.status == "stopped":
        body |= {"recorded_state": view.job.state, "stopped": view.why, "resume": view.resume}
    elif view.status == "failed":
        body["resume"] = view.resume
    return body


def stopped_jobs(
    metadata: MetadataStore, now: datetime, stale: timedelta, *, limit: int = 1000
) -> list[JobView]:
    """The score jobs (of the newest ``limit``) recorded queued or running whose holder is
    gone."""
    jobs = [j for j in metadata.score_jobs.list_jobs(limit=limit) if not j.ended]
    return [v for v in view_jobs(metadata, jobs, now=now, stale=stale) if v.status == "stopped"]


def close_job(metadata: MetadataStore, view: JobView, now: datetime) -> bool:
    """Record the stopped job failed (``closed_job``), unless it ended or moved on
    meanwhile (a holder took it over); whether it was."""
    current = metadata.score_jobs.find_job(view.job.job_id)
    if current is None or current != view.job:
        return False
    metadata.score_jobs.save_job(closed_job(view, now))
    return True
