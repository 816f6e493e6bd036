"""What a run and its stage executions are doing now, read from their records.

One rule for every reader (``gristmill run``, ``ls runs``, ``show RUN``): an execution is
``running`` while its lease holds, ``retrying`` while a failed attempt waits for its retry,
``stale`` once its lease expired long ago (its holder died with nobody to take the work over;
``gristmill gc`` sweeps it); a run is ``succeeded`` only when the last execution for each
event it caused succeeded (or found the work done: ``skipped``) and nothing is still running.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from gristmill.stores.metadata import Run, StageExecution

ExecutionState = Literal["running", "retrying", "stale", "succeeded", "failed", "skipped"]

# A lease renewed every ack_wait / 3 that is this long past is not late: its holder is gone.
# At least a minute, so a failed attempt waiting out its back-off (at most 30 s) is not stale.
MIN_STALE_AFTER = timedelta(seconds=60)


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
    """The newest execution for each input event (``executions`` oldest first): a retry or
    a take-over replaces the attempt before it."""
    newest: dict[str, StageExecution] = {}
    for execution in executions:
        newest[execution.input_event_id or execution.execution_id] = execution
    return list(newest.values())


def run_status(
    run: Run,
    executions: Iterable[StageExecution],
    now: datetime,
    *,
    stale: timedelta = MIN_STALE_AFTER,
) -> str:
    """The run's status as it stands: its recorded one, unless its executions say otherwise.

    ``running`` while any of its work runs (or waits for a retry); else ``stale`` if work was
    left running by a holder that died; else ``failed`` if it was recorded ``succeeded`` but
    work it caused failed since (a queued stage, a duplicate, a sweep by ``gc``).
    """
    states = {execution_state(e, now, stale=stale) for e in latest_per_event(executions)}
    if states & {"running", "retrying"}:
        return "running"
    if "stale" in states:
        return "stale"
    if run.status == "succeeded" and "failed" in states:
        return "failed"
    return run.status
