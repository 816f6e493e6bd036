"""``gristmill schedules``: the schedules of the spec last given for each pipeline, their
next tick and what their last tick did; a bad schedule in a spec is one clear line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gristmill.config.settings import load_settings
from gristmill.runtime.scheduler import Scheduler
from gristmill.runtime.wiring import open_services
from gristmill.testing.cli import run_cli_here
from gristmill.testing.data import numbers_table, write_csv

SPEC = """\
name: nightly
sources:
  numbers: {format: csv, path: numbers.csv, schedule: "0 2 * * *"}
score: {model: nightly, source: numbers, on: schedule, every: 1h}
"""


def test_schedules_show_what_each_does_when_and_its_last_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def gm(*args: str) -> str:
        code, out, err = run_cli_here(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 0, err
        return out

    assert "nothing here yet" in gm("schedules")  # no stores yet: nothing was created
    write_csv(tmp_path / "numbers.csv", numbers_table(20))
    (tmp_path / "pipeline.yaml").write_text(SPEC)
    gm("ingest", "numbers", "--queue")  # records the spec, and so its schedules
    listed = gm("schedules")
    assert "nightly/ingest/numbers" in listed and "cron 0 2 * * *" in listed
    assert "nightly/score" in listed and "every 1h" in listed and "never" in listed
    views = {view["schedule"]["key"]: view for view in json.loads(gm("schedules", "--json"))}
    nightly = datetime.fromisoformat(views["nightly/ingest/numbers"]["next_tick"])
    assert (nightly.hour, nightly.minute) == (2, 0) and nightly > datetime.now(UTC)

    later = nightly + timedelta(minutes=1)  # fire the ticks as a worker would then
    settings = load_settings(overrides={"home": str(tmp_path / ".gristmill")})

    async def fire() -> None:
        async with open_services(settings) as services:
            await Scheduler(services.bus, services.feature_stores()).fire_due(later)

    asyncio.run(fire())
    views = {view["schedule"]["key"]: view for view in json.loads(gm("schedules", "--json"))}
    ingest, score = views["nightly/ingest/numbers"], views["nightly/score"]
    assert ingest["last"]["outcome"] == "fired" and ingest["state"] == "queued"
    assert ingest["fired"]["ref"] in gm("ls", "runs")
    assert score["last"]["outcome"] == "skipped" and score["fired"] is None
    listed = gm("schedules")
    assert ingest["fired"]["ref"] in listed and "queued" in listed and "skipped:" in listed
    assert score["last"]["detail"] == (
        "nothing to score: source 'numbers' has no raw batch yet"  # no worker ingested it
    )


def test_a_bad_schedule_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pipeline.yaml").write_text(SPEC.replace("every: 1h", "every: soon"))
    code, out, err = run_cli_here(
        "ingest", "numbers", "--queue", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2
    assert "score.every: 'soon' is not a duration" in err and "Traceback" not in err + out
