"""The one rule for what an execution and a run are doing now (``stores.run_status``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gristmill.stores.metadata import Run, StageExecution
from gristmill.stores.run_status import execution_state, run_status, stale_after, view_run

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


def done(
    execution_id: str, event_id: str, *outputs: tuple[str, str], **changes: object
) -> StageExecution:
    """A succeeded execution of event ``event_id`` that announced ``outputs`` (type, id)."""
    announced = [{"id": i, "type": t, "correlation_id": "q"} for t, i in outputs]
    values = {"status": "succeeded", "finished_at": NOW - timedelta(minutes=1), **changes}
    return replace(
        RUNNING, execution_id=execution_id, input_event_id=event_id, outputs=announced, **values
    )


QUEUED = Run(
    "q",
    "p",
    "running",  # `ingest --queue` records it so, and nobody finishes it
    NOW - timedelta(hours=2),
    summary={
        "command": "ingest --queue",
        "announced": [{"id": "src", "type": "source.available", "key": "s"}],
    },
)
CONSUMES = frozenset({"source.available", "raw.ingested"})


def test_a_queued_run_is_read_from_its_work_once_nothing_runs() -> None:
    ingested = done("ex-i", "src", ("raw.ingested", "raw"))
    prepared = done("ex-p", "raw", ("features.generated", "fs"))  # nobody consumes it here
    view = view_run(QUEUED, [], NOW, consumes=CONSUMES)
    assert (view.status, view.pending) == ("queued", ["src"])  # no worker took it yet
    view = view_run(QUEUED, [ingested], NOW, consumes=CONSUMES)
    assert (view.status, view.pending) == ("queued", ["raw"])  # its next stage waits
    view = view_run(QUEUED, [ingested, prepared], NOW, consumes=CONSUMES)
    assert (view.status, view.pending, view.final) == ("succeeded", [], "succeeded")
    assert view.finished_at == prepared.finished_at
    failed = replace(prepared, status="failed", outputs=[{"id": "x", "type": "stage.failed"}])
    assert run_status(QUEUED, [ingested, failed], NOW, consumes=CONSUMES) == "partial"
    assert run_status(
        QUEUED, [replace(ingested, status="failed", outputs=[])], NOW, consumes=CONSUMES
    ) == ("failed")
    live = replace(prepared, status="running", lease_expires_at=NOW + timedelta(seconds=9))
    assert run_status(QUEUED, [ingested, live], NOW, consumes=CONSUMES) == "running"


def test_events_of_another_run_replayed_by_a_skip_are_not_waited_for() -> None:
    skipped = done("ex-i", "src", ("raw.ingested", "raw"), status="skipped")
    other_run = replace(
        skipped, outputs=[{"id": "raw", "type": "raw.ingested", "correlation_id": "r1"}]
    )
    assert run_status(QUEUED, [other_run], NOW, consumes=CONSUMES) == "succeeded"


def test_a_run_closed_as_abandoned_takes_its_works_status_if_it_ended_after_all() -> None:
    abandoned = replace(QUEUED, status="failed", summary={**QUEUED.summary, "abandoned": "x"})
    assert run_status(abandoned, [], NOW, consumes=CONSUMES) == "failed"
    ingested = done("ex-i", "src")
    assert run_status(abandoned, [ingested], NOW, consumes=CONSUMES) == "succeeded"


def test_a_run_a_command_did_in_process_keeps_its_recorded_status() -> None:
    training = Run("t", "p", "running", NOW, summary={"command": "train"})
    assert run_status(training, [], NOW, consumes=CONSUMES) == "running"  # not "queued"
    legacy = Run("l", "p", "running", NOW, summary={"command": "queue"})  # before `announced`
    assert run_status(legacy, [], NOW, consumes=CONSUMES) == "queued"
    ingested = replace(done("ex-i", "src", ("raw.ingested", "raw")), run_id="l")
    assert run_status(legacy, [ingested], NOW, consumes=CONSUMES) == "succeeded"  # "raw": ok


def test_a_run_gc_closed_takes_the_status_of_work_started_after_the_close() -> None:
    now = datetime.now(UTC)
    announced = [{"id": "ev-1", "type": "source.available", "key": "a"}]
    closed = Run(
        "01R",
        "p",
        "partial",
        now - timedelta(hours=1),
        finished_at=now - timedelta(minutes=30),
        summary={"command": "ingest --queue", "announced": announced, "closed_by": "gristmill gc"},
    )
    swept = StageExecution(
        "ex-1",
        "ingestion",
        "k",
        "failed",
        now - timedelta(minutes=50),
        run_id="01R",
        input_event_id="ev-1",
        error="abandoned",
    )
    assert view_run(closed, [swept], now).status == "partial"  # nothing since: the close stands
    retried = StageExecution(
        "ex-2",
        "ingestion",
        "k",
        "succeeded",
        now - timedelta(minutes=5),
        finished_at=now - timedelta(minutes=4),
        run_id="01R",
        input_event_id="ev-1",
    )
    assert view_run(closed, [swept, retried], now).status == "succeeded"
