"""Who holds a score job: ``holding_job`` claims the scoring stage's execution of it (one
holder at a time, a dead local holder taken over at once), and ``view_job`` shows a job
recorded running as stopped once its holder is gone, by its process or its lease."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.errors import ConflictError
from gristmill.runtime.job_leases import holding_job
from gristmill.runtime.job_views import view_job
from gristmill.runtime.schedule_views import schedule_views
from gristmill.runtime.worker import consumer_name
from gristmill.stores.metadata import StageExecution
from gristmill.stores.run_status import MIN_STALE_AFTER
from gristmill.stores.schedules import Schedule, Tick
from gristmill.stores.scores import SCORING_STAGE, ScoreJob, job_key


def _now() -> datetime:
    """Taken when a test runs: a module-level time goes stale in a long suite."""
    return datetime.now(UTC)


def running_job(metadata: SqlMetadataStore, job_id: str = "job-1") -> ScoreJob:
    job = ScoreJob(job_id, "churn", "new.csv", "running", _now(), partitions_total=9)
    metadata.score_jobs.save_job(job)
    return job


def held_by(
    metadata: SqlMetadataStore, holder: str, lease: datetime, job_id: str = "job-1"
) -> None:
    """Job ``job_id`` held by ``holder`` until ``lease``, as a claim records it."""
    started = lease - timedelta(seconds=30)
    execution = StageExecution(f"ex-{holder}", SCORING_STAGE, job_key(job_id), "running", started)
    metadata.executions.record_execution(replace(execution, lease_expires_at=lease, holder=holder))


def dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def state(metadata: SqlMetadataStore, job: ScoreJob) -> tuple[str, str]:
    view = view_job(metadata, job, now=datetime.now(UTC), stale=MIN_STALE_AFTER)
    return view.status, view.why


def test_a_job_is_running_while_its_holder_is(metadata: SqlMetadataStore) -> None:
    job = running_job(metadata)
    assert state(metadata, job) == ("running", "")  # no holder recorded: taken at its word
    held_by(metadata, "score@elsewhere:4242", _now() + timedelta(seconds=30))
    assert state(metadata, job) == ("running", "")  # another host: its lease is the evidence


def test_a_job_whose_lease_is_long_past_is_stopped(metadata: SqlMetadataStore) -> None:
    job = running_job(metadata)
    held_by(metadata, "scoring@elsewhere:4242", _now() - timedelta(minutes=5))
    status, why = state(metadata, job)
    assert status == "stopped"
    assert why.startswith("scoring@elsewhere:4242 stopped renewing its lease, which expired")


def test_a_job_whose_process_is_gone_is_stopped_at_once(metadata: SqlMetadataStore) -> None:
    job = running_job(metadata)
    holder = f"score@{socket.gethostname()}:{dead_pid()}"
    held_by(metadata, holder, _now() + timedelta(seconds=30))
    assert state(metadata, job) == ("stopped", f"its process {holder} is gone")


def test_a_live_holder_keeps_the_job_and_a_dead_one_is_taken_over(
    metadata: SqlMetadataStore,
) -> None:
    running_job(metadata)
    alive = consumer_name("score")  # this very process
    held_by(metadata, alive, datetime.now(UTC) + timedelta(seconds=30))
    with (
        pytest.raises(ConflictError, match=f"score job job-1 is being scored by {alive}"),
        holding_job(metadata.executions, "job-1", holder="score@here:1", ack_wait=30),
    ):
        pass

    other = running_job(metadata, "job-2")
    dead = f"score@{socket.gethostname()}:{dead_pid()}"
    held_by(metadata, dead, datetime.now(UTC) + timedelta(seconds=30), job_id="job-2")
    with holding_job(metadata.executions, "job-2", holder=alive, ack_wait=30):
        held = metadata.executions.find_execution(SCORING_STAGE, job_key("job-2"))
        assert held is not None and (held.holder, held.status) == (alive, "running")
        assert state(metadata, other) == ("running", "")
    ended = metadata.executions.find_execution(SCORING_STAGE, job_key("job-2"))
    assert ended is not None and ended.status == "succeeded"
    still_running = metadata.executions.list_stale_executions(_now() + timedelta(days=1))
    assert [e.holder for e in still_running] == [alive]  # job-1's; the dead holder's closed


def test_a_failing_holder_ends_its_execution_failed(metadata: SqlMetadataStore) -> None:
    running_job(metadata)
    with (
        pytest.raises(ValueError, match="boom"),
        holding_job(metadata.executions, "job-1", holder=consumer_name("score"), ack_wait=30),
    ):
        raise ValueError("boom")
    ended = metadata.executions.find_execution(SCORING_STAGE, job_key("job-1"))
    assert ended is not None and (ended.status, ended.error) == ("failed", "boom")


def test_gristmill_schedules_shows_a_scheduled_job_whose_holder_is_gone_stopped(
    metadata: SqlMetadataStore,
) -> None:
    since = _now() - timedelta(days=1)
    schedule = Schedule("birds/score", "birds", "score", "source:penguins", "every 1h", "d", since)
    metadata.schedules.set_schedules("birds", [schedule])
    fired = _now() - timedelta(hours=1)
    tick = Tick("birds/score", fired, _now(), "scheduler@x:1", "fired", "", ref="job-1")
    assert metadata.schedules.claim_tick(tick)
    job = running_job(metadata)
    held_by(
        metadata, f"scoring@{socket.gethostname()}:{dead_pid()}", _now() + timedelta(seconds=30)
    )
    (view,) = schedule_views(metadata, datetime.now(UTC))
    assert view.state == "stopped"
    metadata.score_jobs.save_job(replace(job, state="succeeded"))
    (view,) = schedule_views(metadata, datetime.now(UTC))
    assert view.state == "succeeded"
