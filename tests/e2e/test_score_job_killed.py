"""A ``gristmill score`` process SIGKILLed mid-job: its job is shown "stopped" (never
"running") with the command that finishes it, ``gristmill gc`` records it failed as
abandoned, and that command finishes it with every row scored once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from gristmill.backends.sql.metadata import SqlMetadataStore
from gristmill.config.settings import load_settings
from gristmill.runtime.wiring import build_score_store
from gristmill.stores.scores import ScoreJob
from gristmill.testing.cli import run_cli_here
from gristmill.testing.registered import penguins, train_penguins

pytestmark = pytest.mark.slow
JOB = "kill-me"
SETTINGS = """\
home = "{home}"
[executor]
backend = "inline"
[scoring]
partition_rows = 500
"""
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("killed")
    (folder / "gristmill.toml").write_text(SETTINGS.format(home=folder / "home"))
    settings = load_settings(overrides={"home": str(folder / "home")})
    asyncio.run(train_penguins(settings, folder))
    birds = penguins().drop(columns=["species"])
    pd.concat([birds] * 600, ignore_index=True).to_parquet(folder / "many.parquet")
    return folder  # 206,400 rows: 413 partitions


@pytest.fixture
def metadata(folder: Path) -> Iterator[SqlMetadataStore]:
    with SqlMetadataStore(f"sqlite:///{folder / 'home' / 'metadata.db'}") as store:
        yield store


@pytest.fixture
def cli(folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setenv("COLUMNS", "250")
        return run_cli_here(*args, cwd=folder, monkeypatch=monkeypatch, capsys=capsys)

    return run


def killed_mid_job(folder: Path, metadata: SqlMetadataStore) -> tuple[int, ScoreJob]:
    """Start ``gristmill score … --job kill-me``, SIGKILL it once some partitions are in;
    its pid and the job as it was left."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    command = [sys.executable, "-m", "gristmill", "score", "penguins_logreg", "many.parquet"]
    proc = subprocess.Popen(
        [*command, "--job", JOB], cwd=folder, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            job = metadata.score_jobs.find_job(JOB)
            if job is not None and job.state == "running" and job.partitions_done >= 3:
                break
            time.sleep(0.02)  # polling the store for the condition, not waiting it out
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    left = metadata.score_jobs.get_job(JOB)
    assert left.state == "running" and left.partitions_done < left.partitions_total
    return proc.pid, left


def test_a_killed_score_is_stopped_not_running_and_is_finished_by_its_command(
    folder: Path, metadata: SqlMetadataStore, cli: Cli
) -> None:
    pid, left = killed_mid_job(folder, metadata)
    resume = f"gristmill score penguins_logreg many.parquet --job {JOB}"

    code, out, err = cli("jobs")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if JOB in line and "│" in line]
    assert "stopped" in row and "running" not in row
    said = " ".join(out.split())
    assert f"job {JOB} stopped: its process score@" in said and f":{pid} is gone" in said
    assert f"`{resume}` finishes it" in said
    _, out, _ = cli("jobs", JOB, "--json")
    shown = json.loads(out)
    assert (shown["state"], shown["recorded_state"], shown["resume"]) == (
        "stopped", "running", resume,
    )  # fmt: skip
    _, out, _ = cli("jobs", JOB)
    assert out.startswith(f"job {JOB}: stopped (its process score@")
    assert f"finish it: {resume}" in out

    _, out, _ = cli("gc", "--dry-run")
    assert f"would record stopped score job {JOB} failed: its process" in " ".join(out.split())
    assert metadata.score_jobs.get_job(JOB).state == "running"  # a dry run changes nothing
    code, out, err = cli("gc")
    assert code == 0, err
    assert "1 stopped score job(s)" in out
    closed = metadata.score_jobs.get_job(JOB)
    assert closed.state == "failed" and closed.error is not None
    assert closed.error.startswith("abandoned: its process score@")
    assert closed.error.endswith("(closed by gristmill gc)")
    _, out, _ = cli("jobs", JOB)
    assert out.startswith(f"job {JOB}: failed") and f"finish it: {resume}" in out

    code, out, err = cli(*resume.split()[1:])
    assert code == 0, err
    done = metadata.score_jobs.get_job(JOB)
    assert (done.state, done.partitions_done) == ("succeeded", done.partitions_total)
    assert done.rows == 206_400 and done.partitions_total == left.partitions_total
    settings = load_settings(overrides={"home": str(folder / "home")})
    rows = build_score_store(settings).read(JOB).column("row").to_pylist()
    assert sorted(rows) == list(range(206_400))  # every row, once
    _, out, _ = cli("jobs")
    (row,) = [line for line in out.splitlines() if JOB in line and "│" in line]
    assert "succeeded" in row and "stopped" not in out
