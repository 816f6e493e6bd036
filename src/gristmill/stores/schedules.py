"""The schedule store port: the pipelines' schedules, and each tick claimed once.

A ``Schedule`` is what a pipeline spec asks to happen on a clock: a source ingested again
(``sources.<name>.schedule``) or the newest input scored (``score: {on: schedule}``). The
schedules of a pipeline are those of the spec last given to gristmill for it (``run``,
``ingest``, ``train``, ``worker --spec``, …): recording a spec replaces them.

A ``Tick`` is one tick of one schedule, claimed by the scheduler that fires it. The claim is
an insert keyed by (schedule key, tick time): of any number of schedulers racing for a
tick, exactly one inserts it, so each tick fires once however many workers run. The tick
records what it did (``fired``: the events it published; ``skipped``: why not) and, as an
outbox, when its events were published: a scheduler that claimed a tick and died before
publishing leaves it for another to publish (the same events, the same ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gristmill.config.schedules import Timing

if TYPE_CHECKING:  # the spec models (YAML, sources) load with the first spec read
    from gristmill.config.spec import PipelineSpec

ScheduleAction = Literal["score", "ingest"]
TickOutcome = Literal["fired", "skipped"]


@dataclass(frozen=True)
class Schedule:
    """One schedule of a pipeline.

    ``key`` names it for good (``churn/score``, ``churn/ingest/customers``). ``action`` is
    ``ingest`` (``target``: the source) or ``score`` (``target``: ``source:NAME`` or
    ``feature_set:NAME``, whose newest input is scored with ``model``). ``timing`` is
    ``str(Timing)``; ``spec_digest`` the spec it comes from. Ticks before ``since`` (when the
    schedule was first recorded as it is) are not fired.
    """

    key: str
    pipeline: str
    action: ScheduleAction
    target: str
    timing: str
    spec_digest: str
    since: datetime
    model: str | None = None

    def when(self) -> Timing:
        return Timing.parse(self.timing)


@dataclass(frozen=True)
class Tick:
    """One tick of a schedule, as the scheduler that claimed it recorded it.

    ``outcome`` is ``fired`` (``events`` were published: a score job asked for, whose id is
    ``ref``, or a source announced in run ``ref``) or ``skipped`` (``detail`` says why).
    ``input`` and ``model`` are what a score tick chose (the model pinned to its version,
    ``churn/3``). ``published_at`` is the outbox mark, ``None`` while ``events`` wait.
    """

    key: str
    tick_at: datetime
    fired_at: datetime
    holder: str
    outcome: TickOutcome
    detail: str
    input: str | None = None
    model: str | None = None
    ref: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    published_at: datetime | None = None


class ScheduleStore(Protocol):
    def set_schedules(self, pipeline: str, schedules: list[Schedule]) -> list[Schedule]:
        """Make ``schedules`` all of ``pipeline``'s (the others are removed). A schedule whose
        action, target, model and timing are unchanged keeps its recorded ``since``; the
        recorded schedules are returned, by key. Atomic."""
        ...

    def list_schedules(self) -> list[Schedule]:
        """Every schedule, by key."""
        ...

    def claim_tick(self, tick: Tick) -> bool:
        """Record ``tick`` unless (``key``, ``tick_at``) is recorded; ``True`` if this call
        recorded it. Race-safe: of callers claiming one tick at once, exactly one wins."""
        ...

    def find_tick(self, key: str, tick_at: datetime) -> Tick | None: ...

    def latest_tick(self, key: str, *, outcome: TickOutcome | None = None) -> Tick | None:
        """The newest tick of ``key`` (by ``tick_at``), of ``outcome`` when given."""
        ...

    def mark_published(self, key: str, tick_at: datetime, at: datetime) -> None:
        """Set the tick's outbox mark (once; a tick marked already keeps its mark)."""
        ...

    def list_unpublished(self, fired_before: datetime) -> list[Tick]:
        """Ticks with events not yet published that were claimed before ``fired_before``,
        oldest first."""
        ...


def spec_schedules(spec: PipelineSpec, digest: str, since: datetime) -> list[Schedule]:
    """The schedules ``spec`` (recorded as ``digest``) asks for, by key."""
    found = [
        Schedule(
            key=f"{spec.name}/ingest/{name}",
            pipeline=spec.name,
            action="ingest",
            target=name,
            timing=str(Timing(cron=source.schedule)),
            spec_digest=digest,
            since=since,
        )
        for name, source in spec.sources.items()
        if source.schedule is not None
    ]
    score = spec.score
    timing = score.timing() if score is not None else None
    if score is not None and timing is not None:
        target = f"source:{score.source}" if score.source else f"feature_set:{score.feature_set}"
        found.append(
            Schedule(
                key=f"{spec.name}/score",
                pipeline=spec.name,
                action="score",
                target=target,
                timing=str(timing),
                spec_digest=digest,
                since=since,
                model=spec.scoring_model(),
            )
        )
    return sorted(found, key=lambda schedule: schedule.key)
