"""A ``gristmill worker --stage monitoring`` SIGKILLed mid-window, twice, then restarted:
every logged file is counted once — the window's rows are the rows logged — and each
crossing is announced once.

The worker is the real command in its own process, on the embedded (SQLite) bus with a
short lease, so the event it held when it died is redelivered to its successor. The first
kill lands while files are being counted; the second *after* a file's commit, before its
execution ended: the first file that makes a column cross is committed, then the worker
waits on the spec's webhook — which holds that first request — and is killed there. Its
successor must find the file taken, not count it again, and still announce its alerts (and
POST them again: the webhook hears them twice, the bus once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import Settings, load_settings
from gristmill.core.events import MONITOR_ALERT, Event
from gristmill.runtime.wiring import build_metadata, open_services
from gristmill.stages.monitoring import MonitoringStage
from gristmill.stores.drift import DriftWindow
from gristmill.stores.metadata import MetadataStore
from gristmill.testing.prediction_logs import CHURN, customers, register_with_reference, write_log

pytestmark = pytest.mark.slow
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FILES, ROWS = 30, 20_000
SHIFTED_FROM = 10  # files 10… are shifted: the window crosses while it fills
COLUMNS = ["age", "plan", "prediction"]


class Hook(BaseHTTPRequestHandler):
    """Records each POSTed body; holds the first request until ``release`` is set."""

    bodies: list[dict[str, Any]]
    release: threading.Event

    def do_POST(self) -> None:
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        if len(self.bodies) == 1:
            self.release.wait(60)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []
    release = threading.Event()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("Handler", (Hook,), {"bodies": bodies, "release": release})
    )
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/drift", bodies
    release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path: Path, hook: tuple[str, list[dict[str, Any]]]) -> Path:
    (tmp_path / "gristmill.toml").write_text(
        f'home = "{tmp_path / "home"}"\n[bus]\nack_wait = 1.0\n'
    )
    (tmp_path / "churn.yaml").write_text(
        "name: churn\n"
        "sources: {customers: {format: csv, path: customers.csv}}\n"
        f"monitor: {{window: 1h, webhook: '{hook[0]}'}}\n"
    )
    return tmp_path


def settings_of(folder: Path) -> Settings:
    return load_settings(folder / "gristmill.toml")


async def prepare(folder: Path) -> list[Event]:
    """Register churn/1 with its reference and announce ``FILES`` log files of one window."""
    async with open_services(settings_of(folder)) as services:
        register_with_reference(services.feature_stores())
        events = []
        for number in range(FILES):
            shape = {"shift": 1.0, "plans": (0.1, 0.9)} if number >= SHIFTED_FROM else {}
            columns, prediction = customers(ROWS, seed=number, **shape)
            at = T0 + timedelta(seconds=60 * number)
            events.append(
                write_log(folder / "log", CHURN, columns, prediction, at, name=f"f{number:02d}")
            )
        await services.bus.publish(events)
    return events


@pytest.fixture
def metadata(home: Path) -> Iterator[MetadataStore]:
    store = build_metadata(settings_of(home))
    store.open()
    yield store
    store.close()


def window(metadata: MetadataStore) -> DriftWindow | None:
    return metadata.drift.find_window("churn", 1, 3600, T0)


def files_taken(metadata: MetadataStore) -> int:
    found = window(metadata)
    return 0 if found is None else found.files


def worker(folder: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    command = ["worker", "--stage", "monitoring", "--spec", "churn.yaml"]
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "gristmill", *command],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(check: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 180
    while not check():
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the worker exited before {what}: {output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


def kill_when(folder: Path, check: Callable[[], bool], what: str) -> None:
    process = worker(folder)
    try:
        wait_for(check, what, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL


async def test_a_monitoring_worker_killed_mid_window_counts_every_file_once(
    home: Path, metadata: MetadataStore, hook: tuple[str, list[dict[str, Any]]]
) -> None:
    events = await prepare(home)
    bodies = hook[1]
    kill_when(home, lambda: files_taken(metadata) >= 4, "4 files were taken")
    assert 4 <= files_taken(metadata) < SHIFTED_FROM
    kill_when(home, lambda: len(bodies) == 1, "the crossing was POSTed")
    crossed = window(metadata)
    first = sorted(alert["alert_id"] for alert in bodies[0]["alerts"])
    assert crossed is not None and len(crossed.alerted) == len(first) > 0  # committed, killed
    assert crossed.files < FILES, "the worker was not killed mid-window"

    process = worker(home)
    try:
        wait_for(lambda: files_taken(metadata) == FILES, "every file was taken", process)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, output

    counted = window(metadata)
    assert counted is not None
    assert (counted.rows, counted.files) == (FILES * ROWS, FILES)
    age = counted.counts["columns"]["age"]
    assert sum(age["bins"]) + age["missing"] == FILES * ROWS  # no file's rows twice
    taken = [metadata.drift.find_file("churn", 1, e.payload["path"]) for e in events]
    assert all(t is not None and t.rows == ROWS for t in taken)
    assert sorted(counted.alerted) == COLUMNS

    # the crossing file was committed by the killed attempt; its successor found it taken
    keys = [MonitoringStage.idempotency_key(None, e) for e in events]  # type: ignore[arg-type]
    finished = [metadata.executions.find_execution("monitoring", key) for key in keys]
    assert all(f is not None and f.status == "succeeded" for f in finished)
    orphaned = [
        t.file
        for t, f in zip(taken, finished, strict=True)
        if t is not None and f is not None and t.execution_id != f.execution_id
    ]
    alerts = metadata.drift.list_alerts("churn", 1)
    assert sorted(a.column for a in alerts) == COLUMNS
    assert {a.file for a in alerts if a.alert_id in first} <= set(orphaned)

    # announced once each (a replay repeats an event's id); the webhook heard them twice
    async with open_services(settings_of(home)) as services:
        delivered = await services.bus.consume(
            "observer", MONITOR_ALERT, "o", max_events=100, wait=1.0
        )
    ids: dict[str, set[str]] = {}
    for delivery in delivered:
        ids.setdefault(delivery.event.payload["alert_id"], set()).add(delivery.event.id)
    assert sorted(ids) == sorted(a.alert_id for a in alerts)
    assert all(len(announced) == 1 for announced in ids.values())
    posted = [a["alert_id"] for body in bodies for a in body["alerts"]]
    assert sorted(set(posted)) == sorted(ids)
    assert sorted(posted) == sorted([*ids, *first])  # those of the killed attempt: again
    assert all(a.notified_at is not None for a in alerts)
