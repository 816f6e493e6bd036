"""What a run and its stage executions are doing now, read from their records.

One rule for every reader (``gristmill run``, ``ls runs``, ``show RUN``, ``gc``): an execution
is ``running`` while its lease holds, ``retrying`` while a failed attempt waits for its retry,
``stale`` once its lease expired long ago (its holder died with nobody to take the work over;
``gristmill gc`` sweeps it). A run is ``running`` while any of its work runs, ``stale`` while
work was left by a dead holder (or a run done in one process has lost its process), ``queued``
while work it announced waits for a worker, and otherwise as its work ended: ``succeeded`` only
when the last execution for each event it caused succeeded (or found the work done:
``skipped``), ``failed`` when all of it failed, ``partial`` when some did.

A run whose work travels on the bus (``gristmill run``, ``ingest``, ``ingest --queue``)
records the events it announced (``summary["announced"]``); its work is then followed event
by event: each announced event, and each event its executions announced that a stage
consumes, is handled once an execution for it exists. Nobody has to finish such a run for its
status to be true: until its record is closed (by ``gristmill run`` itself, or by ``gc``),
its status is read from its work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from gristmill.core.event_types import DATA_ANOMALOUS, STAGE_FAILED
from gristmill.stores.metadata import Run, RunStatus, StageExecution

ExecutionState = Literal["running", "retrying", "stale", "succeeded", "failed", "skipped"]
RunState = Literal["running", "queued", "stale", "succeeded", "failed", "partial"]

# A lease renewed every ack_wait / 3 that is this long past is not late: its holder is gone.
# At least a minute, so a failed attempt waiting out its back-off (at most 30 s) is not stale.
MIN_STALE_AFTER = timedelta(seconds=60)
FAILURES = (STAGE_FAILED, DATA_ANOMALOUS)
QUEUE_COMMAND = "ingest --queue"
LEGACY_QUEUE_COMMAND = "queue"  # how `ingest --queue` recorded its runs before
GC_CLOSER = "gristmill gc"  # who closed a run whose work ended without a command to close it


def stale_after(ack_wait: float) -> timedelta:
    """How long past its lease a ``running`` execution is shown as ``stale``."""
    return max(MIN_STALE_AFTER, timedelta(seconds=2 * ack_wait))


def execution_state(
    execution: StageExecution, now: datetime, *, stale: timedelta = MIN_STALE_AFTER
) -> ExecutionState:
    """The execution's status, with a ``running`` one told apart by its lease."""
    if execution.status != "running":
        return execution.status
    lease = execution.lease_expires_at or execution.started_at  # none: recorded before leases
    if lease >= now:
        return "running"
    if now - lease > stale:
        return "stale"
    # Released by a failed attempt (its error recorded), or a lease about to be taken over.
    return "retrying" if execution.error else "running"


def latest_per_event(executions: Iterable[StageExecution]) -> list[StageExecution]:
    """The newest execution of each stage for each input event (``executions`` oldest
    first): a retry or a take-over replaces the attempt before it; two stages consuming one
    event (preparation and a ``score:`` trigger both take ``raw.ingested``) keep one each."""
    newest: dict[tuple[str, str], StageExecution] = {}
    for execution in executions:
        newest[(execution.stage, execution.input_event_id or execution.execution_id)] = execution
    return list(newest.values())


def outcome(latest: Iterable[StageExecution]) -> RunStatus:
    """How settled work ended (``latest``: the last execution of each event).

    Failures are the failure events it announced (``stage.failed``, ``data.anomalous``), plus
    work whose last execution failed without announcing it (abandoned, swept by ``gc``) or has
    not finished; ``failed`` if nothing else happened, ``partial`` if other work succeeded.
    """
    latest = list(latest)
    announced = [o.get("type") for e in latest for o in e.outputs]
    unsaid = [
        e
        for e in latest
        if e.status not in ("succeeded", "skipped")
        and not any(o.get("type") == STAGE_FAILED for o in e.outputs)
    ]
    failed = sum(1 for t in announced if t in FAILURES) + len(unsaid)
    if failed == 0:
        return "succeeded"
    return "failed" if failed == len(announced) + len(unsaid) else "partial"


def follows_its_work(run: Run) -> bool:
    """Whether the run's work travels on the bus, followed through its executions (see the
    module docstring), rather than being done by the command that recorded it."""
    return "announced" in run.summary or run.summary.get("command") == LEGACY_QUEUE_COMMAND


def closed_by_gc(run: Run) -> bool:
    """Whether ``gristmill gc`` closed the run (as abandoned, or as finished) rather than
    the command that did its work: a mark made on the evidence gc had, which later
    executions of its work override (ADR 12)."""
    if run.status == "running":
        return False
    summary = run.summary
    note = str(summary.get("note") or "")
    return (
        "abandoned" in summary
        or summary.get("closed_by") == GC_CLOSER
        or note.endswith(f"(closed by {GC_CLOSER})")  # closed before ``closed_by`` was kept
    )


def _newer_than_close(run: Run, executions: Iterable[StageExecution]) -> bool:
    """Whether any of the run's work started or ended after its record was closed."""
    closed = run.finished_at
    return closed is not None and any(
        e.started_at > closed or (e.finished_at is not None and e.finished_at > closed)
        for e in executions
    )


def pending_events(
    run: Run, executions: Iterable[StageExecution], consumes: Collection[str]
) -> list[str]:
    """Ids of the events of ``run`` that a stage consumes and no execution has taken up yet:
    the events it announced, and those its executions announced."""
    executions = list(executions)
    taken = {e.input_event_id for e in executions}
    candidates = [str(a["id"]) for a in run.summary.get("announced", []) if a.get("id")]
    candidates += [
        str(o["id"])
        for e in latest_per_event(executions)
        for o in e.outputs
        if o.get("type") in consumes and o.get("correlation_id") == run.run_id and o.get("id")
    ]
    return [event_id for event_id in dict.fromkeys(candidates) if event_id not in taken]


@dataclass(frozen=True)
class RunView:
    """A run as it stands: its ``status`` (a ``RunState``), the events still ``pending`` (a
    followed run's, waiting for a worker), and when its work ended (``finished_at``, once
    it has; the record's own time for a run a command closed)."""

    status: RunState
    followed: bool
    pending: list[str] = field(default_factory=list)
    finished_at: datetime | None = None

    @property
    def final(self) -> RunStatus | None:
        """The status its work ended with, or ``None`` while it has not ended."""
        match self.status:
            case "succeeded" | "failed" | "partial" as ended:
                return ended
        return None


def view_run(
    run: Run,
    executions: Iterable[StageExecution],
    now: datetime,
    *,
    stale: timedelta = MIN_STALE_AFTER,
    consumes: Collection[str] = (),
    process_gone: bool = False,
) -> RunView:
    """The run as it stands, by the rule in the module docstring.

    ``consumes`` are the event types the stages consume (the events a followed run's work
    goes on through). A closed run keeps its recorded status unless its work says otherwise:
    ``running``/``stale`` while work runs or was left, ``failed`` if it was recorded
    ``succeeded`` but work it caused failed since (a queued stage, a sweep by ``gc``). A
    followed run ``gc`` closed (as abandoned, or as finished with work it swept) is read from
    its work like an open one: gc cannot see the bus, and an event whose execution it swept
    may still be delivered (a retry, a take-over). Its closing status stands only until work
    started after the close says otherwise (``queued`` while that work's events wait).

    ``process_gone``: the process that recorded a run done in one process (``train``,
    ``evaluate``) is known to have exited without closing it, so the run is ``stale``.
    """
    executions = list(executions)
    latest = latest_per_event(executions)
    states = {execution_state(e, now, stale=stale) for e in latest}
    followed = follows_its_work(run)
    pending = pending_events(run, executions, consumes) if followed else []
    if states & {"running", "retrying"}:
        return RunView("running", followed, pending)
    if "stale" in states:
        return RunView("stale", followed, pending)
    newer = closed_by_gc(run) and _newer_than_close(run, executions)
    if followed and (run.status == "running" or "abandoned" in run.summary or newer):
        if pending or not latest:
            waits = run.status == "running" or newer
            return RunView("queued" if waits else run.status, followed, pending)
        ended = max((e.finished_at or e.started_at for e in latest), default=None)
        return RunView(outcome(latest), followed, [], ended)
    if run.status == "running" and process_gone:  # the command doing its work died
        return RunView("stale", followed, pending)
    if run.status == "succeeded" and "failed" in states:
        return RunView("failed", followed, pending, run.finished_at)
    return RunView(run.status, followed, pending, run.finished_at)


def run_status(
    run: Run,
    executions: Iterable[StageExecution],
    now: datetime,
    *,
    stale: timedelta = MIN_STALE_AFTER,
    consumes: Collection[str] = (),
) -> RunState:
    """The run's status as it stands (``view_run(...).status``)."""
    return view_run(run, executions, now, stale=stale, consumes=consumes).status
