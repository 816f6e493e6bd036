"""A run's status tells the truth: ``ls runs`` and ``show RUN`` read it from its work (a
queued run's too, which nobody finishes), ``gristmill gc`` sweeps work left running by a
worker that died (by its lease), closes finished runs with their true status and only runs
whose work was abandoned as abandoned."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.stores.metadata import Run, StageExecution
from gristmill.testing.cli import found, run_cli_here, running_worker

NOW = datetime.now(UTC)


def execution(execution_id: str, run_id: str, status: str, **changes: Any) -> StageExecution:
    values: dict[str, Any] = {
        "execution_id": execution_id,
        "stage": "training",
        "idempotency_key": f"key-{execution_id}",
        "status": status,
        "started_at": NOW - timedelta(hours=3),
        "run_id": run_id,
        "input_event_id": f"ev-{run_id}",
        "holder": "training@host:42",
        **changes,
    }
    return StageExecution(**values)


@pytest.fixture
def store(tmp_path: Path) -> SqlMetadataStore:
    with SqlMetadataStore(f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}") as opened:
        for run_id in ("01LIVE", "01FAILED", "01STALE", "01RETRIED", "01RECENT"):
            opened.runs.start_run(Run(run_id, "p", "running", NOW - timedelta(hours=3)))
            opened.runs.finish_run(run_id, "succeeded", {})  # as `gristmill train` records it
        opened.executions.record_execution(
            execution("ex-live", "01LIVE", "running", lease_expires_at=NOW + timedelta(hours=1))
        )
        opened.executions.record_execution(
            execution("ex-failed", "01FAILED", "failed", error="ConflictError: lb_1 exists")
        )
        opened.executions.record_execution(
            execution("ex-stale", "01STALE", "running", lease_expires_at=NOW - timedelta(hours=2))
        )
        for attempt, status in enumerate(("failed", "succeeded")):  # a retry that succeeded
            opened.executions.record_execution(
                execution(
                    f"ex-retried-{attempt}",
                    "01RETRIED",
                    status,
                    started_at=NOW - timedelta(hours=2 - attempt),
                )
            )
        opened.executions.record_execution(  # its holder died minutes ago: not old enough for gc
            execution(
                "ex-recent", "01RECENT", "running", lease_expires_at=NOW - timedelta(minutes=5)
            )
        )
    return opened


def cli(tmp_path: Path, monkeypatch: Any, capsys: Any, *args: str) -> str:
    code, out, err = run_cli_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, out + err
    return out


def statuses(tmp_path: Path, monkeypatch: Any, capsys: Any) -> dict[str, str]:
    runs = json.loads(cli(tmp_path, monkeypatch, capsys, "ls", "runs", "--json"))
    return {run["run_id"]: run["status"] for run in runs}


def test_a_run_is_succeeded_only_when_its_work_succeeded(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    assert statuses(tmp_path, monkeypatch, capsys) == {
        "01LIVE": "running",
        "01FAILED": "failed",
        "01STALE": "stale",
        "01RETRIED": "succeeded",
        "01RECENT": "stale",
    }
    shown = cli(tmp_path, monkeypatch, capsys, "show", "01STALE")
    assert "status: stale" in shown
    assert "stale (training@host:42)" in shown
    assert "running (training@host:42)" in cli(tmp_path, monkeypatch, capsys, "show", "01LIVE")


def test_gc_sweeps_stale_executions_by_their_lease_whatever_their_age(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    now = datetime.now(UTC)  # not NOW: the module's clock may be minutes old by now
    with SqlMetadataStore(store.url) as opened:  # a lease expired 20 s ago is only late
        opened.runs.start_run(Run("01LATE", "p", "running", now - timedelta(minutes=5)))
        late = execution("ex-late", "01LATE", "running", started_at=now - timedelta(minutes=4))
        opened.executions.record_execution(
            replace(late, lease_expires_at=now - timedelta(seconds=20))
        )
    dry = cli(tmp_path, monkeypatch, capsys, "gc", "--dry-run")
    assert "2 stale execution(s)" in dry and "ex-late" not in dry
    assert "would mark stale execution ex-stale (training, run 01STALE) failed: its lease" in dry
    assert "would mark stale execution ex-recent (training, run 01RECENT)" in dry
    assert statuses(tmp_path, monkeypatch, capsys)["01STALE"] == "stale"

    done = cli(tmp_path, monkeypatch, capsys, "gc")  # --older-than 1h: the leases decide
    assert "marked stale execution ex-stale" in done and "2 stale execution(s)" in done
    with SqlMetadataStore(store.url) as reopened:
        (swept,) = reopened.executions.list_executions("01STALE")
        (recent,) = reopened.executions.list_executions("01RECENT")
        (live,) = reopened.executions.list_executions("01LIVE")
        (late,) = reopened.executions.list_executions("01LATE")
    assert swept.status == "failed"
    assert swept.error is not None and "gristmill gc" in swept.error
    assert "training@host:42" in swept.error and "no worker took the work over" in swept.error
    assert (recent.status, live.status, late.status) == ("failed", "running", "running")
    after = statuses(tmp_path, monkeypatch, capsys)
    assert (after["01STALE"], after["01RECENT"], after["01LIVE"]) == ("failed", "failed", "running")
    assert "0 stale execution(s)" in cli(tmp_path, monkeypatch, capsys, "gc")


SPEC = """\
name: tiny
sources:
  good: {format: csv, path: good.csv}
  bad: {format: csv, path: missing.csv}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(SPEC)
    (tmp_path / "good.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "gristmill.toml").write_text('[executor]\nbackend = "inline"\n')
    return tmp_path


def until_settled(tmp_path: Path, monkeypatch: Any, capsys: Any, runs: set[str]) -> dict[str, str]:
    """The statuses ``ls runs`` shows once none of ``runs`` is queued or running any more."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = statuses(tmp_path, monkeypatch, capsys)
        if all(now[r] not in ("queued", "running") for r in runs):
            return now
        time.sleep(0.5)
    raise AssertionError(f"still unsettled after 120 s: {now}")


def queue(tmp_path: Path, monkeypatch: Any, capsys: Any, source: str) -> str:
    out = cli(tmp_path, monkeypatch, capsys, "ingest", source, "--spec", "pipeline.yaml", "--queue")
    return found(r"run (\w+) \(spec", out)


def test_a_queued_run_ends_with_the_status_of_its_work_and_gc_closes_it_so(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    project(tmp_path)
    good = queue(tmp_path, monkeypatch, capsys, "good")
    bad = queue(tmp_path, monkeypatch, capsys, "bad")
    before = statuses(tmp_path, monkeypatch, capsys)
    assert (before[good], before[bad]) == ("queued", "queued")  # no worker took them yet
    waiting = cli(tmp_path, monkeypatch, capsys, "show", good)
    assert "waiting for a worker: source.available" in waiting

    with running_worker(tmp_path):
        settled = until_settled(tmp_path, monkeypatch, capsys, {good, bad})
    assert (settled[good], settled[bad]) == ("succeeded", "failed")
    shown = cli(tmp_path, monkeypatch, capsys, "show", good)
    assert "status: succeeded" in shown
    assert (
        "queued by `gristmill ingest --queue`, which announced source.available (good); "
        "workers (`gristmill worker`) do its work" in shown
    )
    assert "its stages announced raw.ingested x1" in shown
    assert "announced nothing" not in shown and "recorded by `gristmill queue`" not in shown
    assert "its stages announced stage.failed x1" in cli(tmp_path, monkeypatch, capsys, "show", bad)

    time.sleep(1.1)  # older than --older-than 1s: old enough to close, were it abandoned
    done = cli(tmp_path, monkeypatch, capsys, "gc", "--older-than", "1s")
    assert f"closed finished run {good} as succeeded" in done
    assert f"closed finished run {bad} as failed" in done
    assert "0 abandoned run(s); 2 finished run(s) closed" in done
    with SqlMetadataStore(f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}") as store:
        recorded = {r: store.runs.get_run(r) for r in (good, bad)}
    assert (recorded[good].status, recorded[bad].status) == ("succeeded", "failed")
    assert "abandoned" not in recorded[good].summary
    assert recorded[good].finished_at is not None and recorded[good].summary["seconds"] > 0
    assert statuses(tmp_path, monkeypatch, capsys) == settled


def test_a_run_done_in_process_says_so(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    project(tmp_path)
    code, out, err = run_cli_here(
        "ingest",
        "good",
        "--spec",
        "pipeline.yaml",
        cwd=tmp_path,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert code == 0, out + err
    (run,) = json.loads(cli(tmp_path, monkeypatch, capsys, "ls", "runs", "--json"))
    assert run["status"] == "succeeded"
    shown = cli(tmp_path, monkeypatch, capsys, "show", run["run_id"])
    assert (
        "run by `gristmill ingest`, which announced source.available (good) and ran the stages "
        "in its own process" in shown
    )


def dead_pid() -> int:
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def queued_run(run_id: str, started: datetime, **summary: Any) -> Run:
    announced = [{"id": f"ev-{run_id}", "type": "source.available", "key": "good"}]
    body = {"command": "ingest --queue", "announced": announced, **summary}
    return Run(run_id, "tiny", "running", started, summary=body)


@pytest.fixture(params=["sqlite", "postgres"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens the metadata store ``gristmill`` run in ``tmp_path`` uses (a SQLite file, or a
    PostgreSQL schema of its own named in ``gristmill.toml``)."""
    if request.param == "sqlite":
        yield lambda: SqlMetadataStore(f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}")
        return
    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("namespace")
    (tmp_path / "gristmill.toml").write_text(
        f'[metadata]\nbackend = "postgres"\nurl = "{url}"\ndb_schema = "{schema}"\n'
    )
    yield lambda: SqlMetadataStore(url, schema=schema)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
    finally:
        engine.dispose()


def test_gc_closes_as_abandoned_only_runs_whose_work_was_abandoned(
    opened: Callable[[], Any], tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    old, host = NOW - timedelta(hours=3), socket.gethostname()
    with opened() as store:
        store.runs.start_run(queued_run("01NOWORKER", old))  # nobody took its event in 3 h
        store.runs.start_run(queued_run("01YOUNG", datetime.now(UTC)))
        store.runs.start_run(queued_run("01DONE", old))
        store.executions.record_execution(
            execution("ex-done", "01DONE", "succeeded", input_event_id="ev-01DONE")
        )
        in_process = {"command": "train"}
        alive = {"host": host, "pid": os.getpid()}
        store.runs.start_run(
            Run("01ALIVE", "tiny", "running", old, summary={**in_process, "process": alive})
        )
        gone = {"host": host, "pid": dead_pid()}
        store.runs.start_run(
            Run("01GONE", "tiny", "running", old, summary={**in_process, "process": gone})
        )
    assert statuses(tmp_path, monkeypatch, capsys) == {
        "01NOWORKER": "queued",
        "01YOUNG": "queued",
        "01DONE": "succeeded",
        "01ALIVE": "running",
        "01GONE": "stale",  # its process exited without closing it
    }
    done = cli(tmp_path, monkeypatch, capsys, "gc")
    assert (
        "closed abandoned run 01NOWORKER as failed: 1 event(s) of its work were never taken up "
        "by a worker" in done
    )
    assert f"closed abandoned run 01GONE as failed: its process {gone['pid']} is gone" in done
    assert "closed finished run 01DONE as succeeded" in done
    assert "left run 01YOUNG open: unfinished, but younger than --older-than" in done
    assert f"left run 01ALIVE open: its process {os.getpid()} is alive" in done
    assert "2 abandoned run(s); 1 finished run(s) closed" in done
    assert statuses(tmp_path, monkeypatch, capsys) == {
        "01NOWORKER": "failed",
        "01YOUNG": "queued",
        "01DONE": "succeeded",
        "01ALIVE": "running",
        "01GONE": "failed",
    }
    shown = cli(tmp_path, monkeypatch, capsys, "show", "01NOWORKER")
    assert "status: failed" in shown and "waiting for a worker: source.available" in shown
    assert "abandoned: 1 event(s) of its work were never taken up by a worker" in shown
    with opened() as store:  # a worker took the abandoned run's event after all
        store.executions.record_execution(
            execution("ex-late", "01NOWORKER", "succeeded", input_event_id="ev-01NOWORKER")
        )
    assert statuses(tmp_path, monkeypatch, capsys)["01NOWORKER"] == "succeeded"


def until(check: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """``check()`` once it is truthy; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not so after {timeout} s: {what}")


def test_a_run_gc_closed_while_its_event_waited_on_the_bus_takes_the_status_of_its_work(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    project(tmp_path)
    run_id = queue(tmp_path, monkeypatch, capsys, "good")  # its event waits on the bus
    url = f"sqlite:///{tmp_path / '.gristmill' / 'metadata.db'}"
    with SqlMetadataStore(url) as store:
        (announced,) = store.runs.get_run(run_id).summary["announced"]
        # a worker took the event, its attempt failed and released it for a retry (back on
        # the bus), and the worker was stopped before retrying: nobody retried it since
        released = execution(
            "ex-released",
            run_id,
            "running",
            stage="ingestion",
            input_event_id=announced["id"],
            error="OSError: the share was not mounted",
            lease_expires_at=datetime.now(UTC) - timedelta(minutes=30),
            started_at=datetime.now(UTC) - timedelta(minutes=31),
        )
        store.executions.record_execution(released)
    assert statuses(tmp_path, monkeypatch, capsys)[run_id] == "stale"
    done = cli(tmp_path, monkeypatch, capsys, "gc")
    assert "marked stale execution ex-released" in done
    assert f"closed finished run {run_id} as failed" in done  # on the evidence gc has
    assert statuses(tmp_path, monkeypatch, capsys)[run_id] == "failed"

    def work_done() -> bool:
        with SqlMetadataStore(url) as store:
            ran = store.executions.list_executions(run_id)
        return {e.stage for e in ran if e.status == "succeeded"} >= {"ingestion", "preparation"}

    with running_worker(tmp_path):  # the event is delivered; the work succeeds after all
        until(work_done, f"the work of {run_id} succeeded")
    assert statuses(tmp_path, monkeypatch, capsys)[run_id] == "succeeded"
    shown = cli(tmp_path, monkeypatch, capsys, "show", run_id)
    assert "status: succeeded" in shown and "recorded_status: failed" in shown
    assert (
        "gristmill gc closed it as failed; its work since then ended: succeeded" in shown
    )  # the close is still told, and why it no longer holds


def test_ls_runs_and_show_run_tell_the_same_status_reading_all_runs_work_at_once(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    now, host = datetime.now(UTC), socket.gethostname()
    with SqlMetadataStore(store.url) as opened:
        # `gristmill run` whose process was killed: its work left running, the lease long past
        dead = {"command": "run", "announced": [], "process": {"host": host, "pid": dead_pid()}}
        opened.runs.start_run(
            Run("01DEADRUN", "p", "running", now - timedelta(minutes=9), summary=dead)
        )
        opened.executions.record_execution(
            execution(
                "ex-dead",
                "01DEADRUN",
                "running",
                started_at=now - timedelta(minutes=8),
                lease_expires_at=now - timedelta(minutes=7),
            )
        )
        gone = {"command": "train", "process": {"host": host, "pid": dead_pid()}}
        opened.runs.start_run(  # `gristmill train` killed: no executions, its process gone
            Run("01DEADTRAIN", "p", "running", now - timedelta(minutes=9), summary=gone)
        )
        for n in range(20):  # queued runs, half of them taken up by a worker that died
            run_id = f"01QUEUED{n:02}"
            opened.runs.start_run(queued_run(run_id, now - timedelta(minutes=5)))
            if n % 2:
                opened.executions.record_execution(
                    execution(
                        f"ex-q{n}",
                        run_id,
                        "running",
                        input_event_id=f"ev-{run_id}",
                        lease_expires_at=now - timedelta(minutes=3),
                    )
                )
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        # every SQLite connection, whichever adapter reads (ls reads through sqlite3 alone)
        connection = connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    with monkeypatch.context() as patched:
        patched.setattr(sqlite3, "connect", traced)
        out = cli(tmp_path, monkeypatch, capsys, "ls", "runs", "--json", "--limit", "100")
    listed = {run["run_id"]: run["status"] for run in json.loads(out)}
    assert len(listed) == 27
    reads = [s for s in statements if "FROM stage_executions" in s]
    assert len(reads) == 1, f"ls runs read the executions {len(reads)} times for {len(listed)} runs"
    assert (listed["01DEADRUN"], listed["01DEADTRAIN"]) == ("stale", "stale")
    assert {listed[f"01QUEUED{n:02}"] for n in range(0, 20, 2)} == {"queued"}
    assert {listed[f"01QUEUED{n:02}"] for n in range(1, 20, 2)} == {"stale"}
    for run_id, status in listed.items():  # one rule: show RUN says the same of every run
        shown = json.loads(cli(tmp_path, monkeypatch, capsys, "show", run_id, "--json"))
        assert shown["status"] == status, run_id
