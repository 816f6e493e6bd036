"""What ``gristmill gc`` does to the metadata store: sweep stale executions, close runs.

Each kind of leftover has its own evidence. A stage execution is stale once its lease is
long past (``stores.run_status.stale_after``): no holder that lives goes that long without
renewing, so it is swept however young it is. A run still recorded ``running`` is closed with
the status its work shows once that work has finished (a queued run nobody closes); it is
closed as *abandoned* (``failed``) only when none of its work runs, its process is gone
(or cannot be seen from here), its work is unfinished and it is older than the caller's
cutoff (``--older-than``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from gristmill.runtime.run_views import process_alive, run_view
from gristmill.stores.metadata import MetadataStore, Run, RunStatus, StageExecution
from gristmill.stores.run_status import GC_CLOSER, execution_state, latest_per_event

GC = GC_CLOSER


@dataclass(frozen=True)
class SweptExecution:
    """A stale execution, and the reason recorded with it when it is marked ``failed``."""

    execution: StageExecution
    reason: str


@dataclass(frozen=True)
class RunDecision:
    """What ``gc`` does with a run still recorded ``running``: ``status`` is what it is
    closed with (``None``: it is left open), ``why`` says why, for the operator."""

    run: Run
    status: RunStatus | None
    why: str
    abandoned: bool = False
    seconds: float | None = None  # from its start to when its work ended, if it did


def stale_executions(
    metadata: MetadataStore, now: datetime, stale: timedelta
) -> list[SweptExecution]:
    """``running`` executions whose lease is more than ``stale`` past, with their reasons."""
    found = metadata.executions.list_stale_executions(now - stale)
    return [SweptExecution(e, _reason(e)) for e in found]


def _reason(execution: StageExecution) -> str:
    lease = execution.lease_expires_at
    held = f"held by {execution.holder}" if execution.holder else "recorded before leases"
    if lease is None:
        return f"abandoned: it never had a lease ({held}); marked failed by {GC}"
    when = f"{lease:%Y-%m-%d %H:%M:%S} UTC"
    if execution.error:  # its attempt failed and released the work for a retry
        return (
            f"abandoned: its attempt failed and was released for a retry at {when} ({held}), "
            f"and no worker retried it; marked failed by {GC}"
        )
    return (
        f"abandoned: its lease expired {when} ({held}) and no worker took the work over; "
        f"marked failed by {GC}"
    )


def sweep_executions(
    metadata: MetadataStore, swept: Sequence[SweptExecution], now: datetime, stale: timedelta
) -> list[SweptExecution]:
    """Mark ``swept`` failed (each only if still stale); those that were."""
    return [
        s
        for s in swept
        if metadata.executions.abandon_execution(
            s.execution.execution_id, reason=s.reason, expired_before=now - stale
        )
    ]


def decide_runs(
    metadata: MetadataStore,
    *,
    now: datetime,
    stale: timedelta,
    cutoff: datetime,
    swept: Sequence[SweptExecution] = (),
    limit: int = 1000,
) -> list[RunDecision]:
    """What to do with each run still recorded ``running`` (of the newest ``limit``).

    ``swept``: executions counted as ``failed`` though not marked yet (a dry run).
    """
    failed = {s.execution.execution_id: s for s in swept}
    decisions = []
    open_runs = [r for r in metadata.runs.list_runs(limit=limit) if r.status == "running"]
    listed = metadata.executions.list_executions_of_runs([r.run_id for r in open_runs])
    for run in open_runs:
        executions = [
            replace(e, status="failed") if e.execution_id in failed else e
            for e in listed[run.run_id]
        ]
        decisions.append(_decide(metadata, run, executions, now, stale, cutoff))
    return decisions


def _decide(
    metadata: MetadataStore,
    run: Run,
    executions: list[StageExecution],
    now: datetime,
    stale: timedelta,
    cutoff: datetime,
) -> RunDecision:
    view = run_view(metadata, run, now=now, stale=stale, executions=executions)
    states = {execution_state(e, now, stale=stale) for e in latest_per_event(executions)}
    alive = process_alive(run)
    if states & {"running", "retrying"}:
        return RunDecision(run, None, "its work is running")
    if alive:
        return RunDecision(run, None, f"its process {run.summary['process']['pid']} is alive")
    if view.final:
        ended = view.finished_at or now
        seconds = round((ended - run.started_at).total_seconds(), 3)
        return RunDecision(run, view.final, "all its work has ended", seconds=seconds)
    if run.started_at >= cutoff:
        return RunDecision(run, None, "unfinished, but younger than --older-than")
    reasons = []
    if alive is False:
        reasons.append(f"its process {run.summary['process']['pid']} is gone")
    if view.pending:
        reasons.append(f"{len(view.pending)} event(s) of its work were never taken up by a worker")
    why = ", ".join(reasons) or "recorded running, with none of its work running"
    return RunDecision(run, "failed", why, abandoned=True)


def close_run(metadata: MetadataStore, decision: RunDecision) -> bool:
    """Close the run as ``decision`` says, unless it was closed meanwhile; whether it was."""
    current = metadata.runs.get_run(decision.run.run_id)
    if current.status != "running" or decision.status is None:
        return False
    kind = "abandoned" if decision.abandoned else "finished"
    summary: dict[str, Any] = {
        **current.summary,
        "note": f"{kind}: {decision.why} (closed by {GC})",
        "closed_by": GC,  # later evidence of its work overrides this close (ADR 12)
    }
    if decision.seconds is not None:
        summary.setdefault("seconds", decision.seconds)
    if decision.abandoned:
        summary["abandoned"] = decision.why
    metadata.runs.finish_run(current.run_id, decision.status, summary)
    return True
