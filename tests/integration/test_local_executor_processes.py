"""The local executor's worker processes: they die with their owner, and can be replaced.

A real owner process (a script opening a ``LocalExecutor`` with one long CPU-bound task and
one idle worker, as a ``gristmill worker`` training a model has) is killed with SIGKILL:
it can clean nothing up. Every process it started (pool workers, the forkserver, the
resource tracker) must be gone within seconds, not go on training for nobody. Workers
keep the modules they imported; after ``restart_workers`` tasks run in fresh processes that
read a module changed on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from gristmill.execution.local import LocalExecutor
from gristmill.testing.tasks import echo, imported_attribute, sleep_then_return

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

OWNER = """
import sys
from gristmill.execution.local import LocalExecutor
from gristmill.testing.tasks import spin

with LocalExecutor(workers=2) as executor:
    task = executor.submit(spin, 600, sys.argv[1])
    print("submitted", flush=True)
    task.result()
"""


def stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name, or ``None`` if no such pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # [state, ppid, ...]; starttime is index 19


def descendants(root: int) -> dict[int, str]:
    """The processes below ``root``, each with its start time (to tell a reused pid)."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat(int(entry.name))) is not None:
            parents[int(entry.name)], started[int(entry.name)] = int(fields[1]), fields[19]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started[pid]
                frontier.append(pid)
    return found


def alive(pid: int, started: str) -> bool:
    """Whether that very process still runs (a zombie has stopped; a reused pid is another)."""
    fields = stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == started


def wait_until(condition: Callable[[], bool], what: str, deadline: float) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline}s")
        time.sleep(0.05)


class Owner:
    """The owner script as a process; ``children`` are recorded so a failed test ends them."""

    def __init__(self, folder: Path) -> None:
        self.started = folder / "started"
        self.process = subprocess.Popen(
            [sys.executable, "-c", OWNER, str(self.started)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.children: dict[int, str] = {}

    def left(self) -> list[int]:
        return sorted(pid for pid, when in self.children.items() if alive(pid, when))


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[Owner]:
    owner = Owner(tmp_path)
    try:
        yield owner
    finally:
        owner.process.kill()
        owner.process.wait()
        for pid in owner.left():  # only if the test failed, and only what it started
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_workers_die_when_their_owner_is_killed(owner: Owner) -> None:
    wait_until(owner.started.exists, "the long task starting in a worker", 60.0)
    # two pool workers (one busy, one idle) under the forkserver, and the resource tracker
    pid = owner.process.pid
    wait_until(lambda: len(descendants(pid)) >= 4, "the pool's processes", 30.0)
    owner.children = descendants(pid)

    owner.process.send_signal(signal.SIGKILL)
    owner.process.wait(timeout=10)

    try:
        wait_until(lambda: not owner.left(), "the owner's processes exiting", 10.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still running: {owner.left()}") from None


def test_restarted_workers_import_a_changed_module_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "gm_restart_mod.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # workers get this process's sys.path
    with LocalExecutor(workers=1) as executor:
        assert executor.capabilities.restartable
        assert executor.submit(imported_attribute, "gm_restart_mod", "VALUE").result(60) == 1
        module.write_text("VALUE = 22  # fixed\n")
        # the worker imported it once: it keeps the old code
        assert executor.submit(imported_attribute, "gm_restart_mod", "VALUE").result(60) == 1
        executor.restart_workers()
        assert executor.submit(imported_attribute, "gm_restart_mod", "VALUE").result(60) == 22


def test_a_restart_lets_running_tasks_finish_and_close_waits_for_them() -> None:
    with LocalExecutor(workers=1) as executor:
        running = executor.submit(sleep_then_return, 1.0, "old")
        executor.restart_workers()
        fresh = executor.submit(echo, "new")
        assert fresh.result(60) == "new"
    assert running.done() and running.result(0) == "old"
