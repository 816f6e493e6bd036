"""Idle workers stop at once: ``gristmill worker --all`` processes SIGTERMed together.

An idle worker waits for events at most a fraction of a second at a time, so it notices the
stop quickly; and once stopped it must not spend seconds tearing down the interpreter (with
the learning libraries loaded, eight workers exiting at once on two cores took 20 s). A
clean stop says nothing on stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

WORKERS = 4
WITHIN = 5.0  # seconds from SIGTERM to exit, for every worker (each takes well under 2 s)


@pytest.mark.parametrize("bus", ["redis", "nats"])
def test_idle_workers_exit_soon_after_sigterm(
    bus: str, tmp_path: Path, namespace: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{bus}_url")
    (tmp_path / "gristmill.toml").write_text(
        f'home = "{tmp_path / "home"}"\n'
        f'[bus]\nbackend = "{bus}"\nurl = "{url}"\nnamespace = "{namespace}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-u", "-m", "gristmill", "worker", "--all"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    try:
        for worker in workers:  # all started side by side; each ready before the stop
            assert worker.stdout is not None
            line, deadline = "", time.monotonic() + 120
            while "ready" not in line and time.monotonic() < deadline and worker.poll() is None:
                line = worker.stdout.readline()
            assert "ready" in line, worker.stderr.read() if worker.stderr else ""
        stopped = time.monotonic()
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        took, errors = [], []
        for worker in workers:
            _, err = worker.communicate(timeout=60)
            took.append(time.monotonic() - stopped)
            errors.append(err)
            assert worker.returncode == 0, err
    finally:
        for worker in workers:
            worker.kill()
    assert max(took) < WITHIN, f"workers exited {[round(t, 1) for t in took]}s after SIGTERM"
    assert errors == [""] * WORKERS, errors
