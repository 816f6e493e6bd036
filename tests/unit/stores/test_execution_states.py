"""The one rule for what an execution and a run are doing now (``stores.run_status``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gristmill.stores.metadata import Run, StageExecution
from gristmill.stores.run_status import execution_state, run_status, stale_after

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RUNNING = StageExecution(
    "ex-1", "training", "key", "running", NOW - timedelta(hours=1), run_id="r", input_event_id="e"
)


def leased(seconds_left: float, **changes: object) -> StageExecution:
    return replace(RUNNING, lease_expires_at=NOW + timedelta(seconds=seconds_left), **changes)


def test_a_running_execution_is_told_apart_by_its_lease() -> None:
    assert execution_state(leased(10), NOW) == "running"
    assert execution_state(leased(-5), NOW) == "running"  # about to be taken over
    assert execution_state(leased(-5, error="RuntimeError('x')"), NOW) == "retrying"
    assert execution_state(leased(-61), NOW) == "stale"
    assert execution_state(RUNNING, NOW) == "stale"  # no lease, started an hour ago
    assert execution_state(leased(-61, status="failed"), NOW) == "failed"


def test_stale_means_long_past_the_lease() -> None:
    assert stale_after(30.0) == timedelta(seconds=60)
    assert stale_after(300.0) == timedelta(seconds=600)
    assert execution_state(leased(-200), NOW, stale=stale_after(300.0)) == "running"


def test_a_run_succeeds_only_when_the_last_execution_of_each_event_did() -> None:
    run = Run("r", "p", "succeeded", NOW - timedelta(hours=2))
    failed = replace(RUNNING, status="failed", error="boom")
    retried = replace(RUNNING, execution_id="ex-2", status="succeeded")
    other = replace(retried, execution_id="ex-3", input_event_id="e2")
    assert run_status(run, [failed, retried, other], NOW) == "succeeded"
    assert run_status(run, [retried, replace(other, status="failed")], NOW) == "failed"
    assert run_status(run, [retried, replace(other, status="running")], NOW) == "stale"
    live = replace(other, status="running", lease_expires_at=NOW + timedelta(seconds=9))
    assert run_status(run, [retried, live], NOW) == "running"
    assert run_status(replace(run, status="partial"), [failed], NOW) == "partial"
