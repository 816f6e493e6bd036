"""How the recorded schedules stand: their next tick, their last tick and what it made.

Every reader of schedules (``gristmill schedules``) goes through here: the store gives the
schedules and their ticks, and this adds what a fired tick led to — the score job's state,
or the batches its ingest run wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gristmill.core.events import RAW_INGESTED
from gristmill.runtime.job_views import view_job
from gristmill.stores.metadata import MetadataStore
from gristmill.stores.run_status import MIN_STALE_AFTER
from gristmill.stores.schedules import Schedule, Tick


@dataclass(frozen=True)
class ScheduleView:
    """A schedule with its ``next_tick``, its ``last`` tick (fired or skipped), its last
    ``fired`` one, and what that made: ``state`` (the score job's; the ingest run's
    ``queued``, ``ingested`` or ``failed``) and ``batches`` (the batches it announced)."""

    schedule: Schedule
    next_tick: datetime
    last: Tick | None = None
    fired: Tick | None = None
    state: str | None = None
    batches: list[str] = field(default_factory=list)


def schedule_views(
    metadata: MetadataStore, now: datetime, stale: timedelta = MIN_STALE_AFTER
) -> list[ScheduleView]:
    """Every recorded schedule as it stands at ``now``, by key (a score job whose holder
    is gone is ``stopped``: ``runtime.job_views``, with ``stale``)."""
    schedules = metadata.schedules.list_schedules()
    return [_view(metadata, schedule, now, stale) for schedule in schedules]


def _view(
    metadata: MetadataStore, schedule: Schedule, now: datetime, stale: timedelta
) -> ScheduleView:
    timing = schedule.when()
    upcoming = timing.following(now)
    while upcoming < schedule.since:  # ticks before it was recorded are not fired
        upcoming = timing.following(upcoming)
    last = metadata.schedules.latest_tick(schedule.key)
    fired = last if last is None or last.outcome == "fired" else None
    if last is not None and fired is None:
        fired = metadata.schedules.latest_tick(schedule.key, outcome="fired")
    state, batches = _made(metadata, schedule, fired, now, stale)
    return ScheduleView(schedule, upcoming, last, fired, state, batches)


def _made(
    metadata: MetadataStore, schedule: Schedule, fired: Tick | None, now: datetime, stale: timedelta
) -> tuple[str | None, list[str]]:
    """What ``fired`` made: (the job's state, []) or (the run's state, its batch ids)."""
    if fired is None or fired.ref is None:
        return None, []
    if schedule.action == "score":
        job = metadata.score_jobs.find_job(fired.ref)
        if job is None:
            return "queued", []
        return view_job(metadata, job, now=now, stale=stale).status, []
    ingestions = [
        e for e in metadata.executions.list_executions(fired.ref) if e.stage == "ingestion"
    ]
    batches = [
        str(output["payload"]["batch_id"])
        for execution in ingestions
        for output in execution.outputs
        if output.get("type") == RAW_INGESTED and "batch_id" in output.get("payload", {})
    ]
    ended = {execution.status for execution in ingestions}
    state = "ingested" if "succeeded" in ended else "failed" if "failed" in ended else "queued"
    return state, batches
