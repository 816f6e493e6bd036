"""What one tick of a schedule does, decided from the stores as they are at the tick.

A *score* tick scores the newest input of its target (the newest raw batch of a source, or
the newest feature set of a name) with the version its model reference names at the tick,
pinned (``churn@champion`` → ``churn/7``): it asks for a score job (``scores.requested``).
It is *skipped* when there is nothing to score yet, no version to score with, or when the
last score tick that fired chose the same input and the same version, unless that job
failed (then it is asked for again). An *ingest* tick announces its source again
(``source.available``, as ``gristmill ingest --queue`` does) in a run of its own.

The ids a tick's events carry are derived from the schedule's key and the tick's time, so
every scheduler planning the same tick makes the same events: whichever claims the tick,
and whoever publishes its events again, the consumers see one job, one run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gristmill.config.sources import SourceSpec
from gristmill.core.events import SCORES_REQUESTED, SOURCE_AVAILABLE, Event
from gristmill.core.ids import derived_id
from gristmill.errors import NotFoundError
from gristmill.features.stores import FeatureStores
from gristmill.servables.loading import parse_ref, resolve_version
from gristmill.stores.schedules import Schedule, Tick, TickOutcome


@dataclass(frozen=True)
class TickPlan:
    """What a tick does: ``fired`` with ``events`` to publish, or ``skipped`` (``detail``
    says why). ``ref`` is the score job's id or the ingest run's id."""

    outcome: TickOutcome
    detail: str
    events: list[Event] = field(default_factory=list)
    input: str | None = None
    model: str | None = None
    ref: str | None = None


def tick_ids(schedule: Schedule, tick_at: datetime) -> tuple[str, str]:
    """The (event id, correlation id) of the tick of ``schedule`` at ``tick_at``."""
    return derived_id(tick_at, schedule.key, "event"), derived_id(tick_at, schedule.key, "run")


def plan_score_tick(stores: FeatureStores, schedule: Schedule, tick_at: datetime) -> TickPlan:
    """The score tick of ``schedule`` at ``tick_at`` (see the module docstring)."""
    wanted = _newest_input(stores, schedule.target)
    if wanted is None:
        return TickPlan("skipped", f"nothing to score: {_nothing_yet(schedule.target)}")
    reference = schedule.model or schedule.pipeline
    name, which = parse_ref(reference)
    try:
        version = resolve_version(stores, name, which)
    except NotFoundError as exc:
        return TickPlan("skipped", f"nothing to score with: {exc}", input=wanted)
    pinned = f"{name}/{version.version}"
    last = stores.metadata.schedules.latest_tick(schedule.key, outcome="fired")
    if (
        last is not None
        and (last.input, last.model) == (wanted, pinned)
        and not _failed(stores, last)
    ):
        return TickPlan(
            "skipped",
            f"nothing new: {wanted} with {pinned} was scored at the tick of "
            f"{last.tick_at:%Y-%m-%d %H:%M:%S} UTC (job {last.ref})",
            input=wanted,
            model=pinned,
        )
    event_id, correlation_id = tick_ids(schedule, tick_at)
    job_id = f"job-{event_id}"
    event = Event(
        id=event_id,
        type=SCORES_REQUESTED,
        key=name,
        payload={"job_id": job_id, "model": pinned, "input": wanted},
        correlation_id=correlation_id,
    )
    return TickPlan(
        "fired", f"scoring {wanted} with {pinned}", [event], input=wanted, model=pinned, ref=job_id
    )


def plan_ingest_tick(schedule: Schedule, source: SourceSpec, tick_at: datetime) -> TickPlan:
    """The ingest tick of ``schedule`` at ``tick_at``: ``source`` announced in run ``ref``."""
    event_id, run_id = tick_ids(schedule, tick_at)
    event = Event(
        id=event_id,
        type=SOURCE_AVAILABLE,
        key=source.name,
        payload={"source": source.model_dump(mode="json")},
        correlation_id=run_id,
    )
    return TickPlan("fired", f"ingesting {source.name} in run {run_id}", [event], ref=run_id)


def _newest_input(stores: FeatureStores, target: str) -> str | None:
    """``batch:ID`` / ``feature_set:ID`` of the newest input ``target`` names, if any."""
    kind, _, name = target.partition(":")
    metadata = stores.metadata
    if kind == "source":
        batch = metadata.batches.latest_batch(name)
        return None if batch is None else f"batch:{batch.batch_id}"
    feature_set = metadata.feature_sets.latest_feature_set(name)
    return None if feature_set is None else f"feature_set:{feature_set.feature_set_id}"


def _nothing_yet(target: str) -> str:
    kind, _, name = target.partition(":")
    if kind == "source":
        return f"source {name!r} has no raw batch yet"
    return f"no feature set named {name!r} yet"


def _failed(stores: FeatureStores, tick: Tick) -> bool:
    """Whether the job ``tick`` asked for failed (one not recorded yet is still queued)."""
    job = stores.metadata.score_jobs.find_job(tick.ref) if tick.ref else None
    return job is not None and job.state == "failed"
