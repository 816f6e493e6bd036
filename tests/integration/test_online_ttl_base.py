"""An online TTL on historical data: counted from event times it leaves the view empty,
which the run's summary says with the figure; counted from arrival it keeps every entity."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from gristmill.config.settings import load_settings
from gristmill.features.online_views import lookup
from gristmill.runtime.wiring import open_services
from gristmill.stores.features import VectorLookup
from gristmill.testing.cli import run_cli_here as gm_here
from gristmill.testing.event_tables import departures

ROWS = 5_000
HOME = ".gristmill"
SPEC = """\
name: late
sources:
  flights: {{format: csv, path: flights.csv}}
features:
  fl:
    from: [flights]
    entity: flight
    timestamp: dep_time
    online: {{ttl: 1d{base}}}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    frame = departures(ROWS).drop(columns=["dep_hour"])  # online values are plain, no times
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, tmp_path / "flights.csv")
    (tmp_path / "gristmill.toml").write_text('[executor]\nbackend = "inline"\n')
    return tmp_path


def fresh_by_pandas(now: datetime) -> tuple[int, datetime]:
    """The baseline: entities whose newest event is within a day of ``now``, the newest."""
    frame = departures(ROWS)
    newest = frame.groupby("flight")["dep_time"].max()
    cutoff = (now - timedelta(days=1)).replace(tzinfo=None)
    return int((newest >= cutoff).sum()), newest.max().to_pydatetime()


async def answers(folder: Path, keys: list[str]) -> list[VectorLookup]:
    settings = load_settings(overrides={"home": str(folder / HOME)})
    async with open_services(settings) as services:
        return lookup(services.feature_stores(), "fl", keys)[1]


async def found_online(folder: Path, keys: list[str]) -> int:
    return sum(a.found for a in await answers(folder, keys))


def test_a_ttl_from_event_times_that_empties_the_view_is_warned_about(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "pipeline.yaml").write_text(SPEC.format(base=""))
    code, out, err = gm_here(
        "run", "pipeline.yaml", cwd=folder, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, out + err
    fresh, newest = fresh_by_pandas(datetime.now(UTC))
    assert fresh == 0
    text = " ".join(out.split())
    assert (
        f"online fl: ttl 1d from event times: 0 of {ROWS:,} entities are fresh; the newest "
        f"event is {newest:%Y-%m-%d %H:%M} UTC; set online.ttl_from: arrival or a longer ttl"
    ) in text
    assert asyncio.run(found_online(folder, ["0", "1", "4999"])) == 0


def test_a_ttl_from_arrival_keeps_historical_vectors(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "pipeline.yaml").write_text(SPEC.format(base=", ttl_from: arrival"))
    before = datetime.now(UTC)
    code, out, err = gm_here(
        "run", "pipeline.yaml", cwd=folder, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0, out + err
    assert "entities are fresh" not in out
    assert asyncio.run(found_online(folder, ["0", "1", "4999"])) == 3
    answer = asyncio.run(answers(folder, ["7"]))[0]
    assert answer.vector is not None and answer.vector.event_time >= before - timedelta(minutes=5)
