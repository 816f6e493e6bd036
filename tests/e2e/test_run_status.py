"""A run's status tells the truth: ``ls runs`` and ``show RUN`` read it from its work, and
``gristmill gc`` sweeps work left running by a worker that died."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.stores.metadata import Run, StageExecution
from gristmill.testing.cli import run_cli_here

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


def test_gc_sweeps_stale_executions(
    store: SqlMetadataStore, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    dry = cli(tmp_path, monkeypatch, capsys, "gc", "--dry-run")
    assert "would mark stale execution ex-stale (training, run 01STALE" in dry
    assert "1 stale execution(s)" in dry
    assert statuses(tmp_path, monkeypatch, capsys)["01STALE"] == "stale"

    done = cli(tmp_path, monkeypatch, capsys, "gc")
    assert "marking stale execution ex-stale" in done and "1 stale execution(s)" in done
    with SqlMetadataStore(store.url) as reopened:
        (swept,) = reopened.executions.list_executions("01STALE")
        (recent,) = reopened.executions.list_executions("01RECENT")
        (live,) = reopened.executions.list_executions("01LIVE")
    assert swept.status == "failed"
    assert swept.error is not None and "gristmill gc" in swept.error
    assert "training@host:42" in swept.error
    assert (recent.status, live.status) == ("running", "running")
    after = statuses(tmp_path, monkeypatch, capsys)
    assert (after["01STALE"], after["01LIVE"]) == ("failed", "running")
    assert "0 stale execution(s)" in cli(tmp_path, monkeypatch, capsys, "gc")
