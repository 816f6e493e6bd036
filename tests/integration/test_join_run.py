"""A run that joins an event table to an hourly second source, and shows the joined schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from gristmill.cli.app import app
from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import FEATURES_GENERATED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.testing.event_tables import departures as flights
from gristmill.testing.event_tables import hourly_weather as weather


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with open_services(load_settings(overrides={"home": str(tmp_path / "home")})) as opened:
        yield opened


def sources(folder: Path) -> dict[str, Any]:
    for name, frame in (("flights", flights()), ("weather", weather())):
        pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.csv")
    return {
        name: {"format": "csv", "path": str(folder / f"{name}.csv")}
        for name in ("flights", "weather")
    }


def asof_baseline() -> pd.Series:
    """pandas' as-of merge of the temperatures, at most 3 hours old, in spine order."""
    left, right = flights(), weather()
    ordered = left.sort_values("dep_time", kind="stable")
    merged = pd.merge_asof(
        ordered,
        right.sort_values("hour")[["station", "hour", "temp"]],
        left_on="dep_time",
        right_on="hour",
        left_by="origin",
        right_by="station",
        tolerance=pd.Timedelta(hours=3),
    )
    merged.index = ordered.index
    return merged.sort_index()["temp"]


JOIN = {
    "left_on": "origin",
    "right_on": "station",
    "timestamp": "dep_time",
    "tolerance": "3h",
    "inputs": {"weather": {"timestamp": "hour", "columns": ["temp", "wind"], "prefix": "wx_"}},
}


async def test_a_joined_set_records_and_shows_its_joined_schema(
    services: Services, tmp_path: Path
) -> None:
    section = {"from": ["flights", "weather"], "entity": "flight", "join": JOIN}
    spec = {"name": "fl", "sources": sources(tmp_path), "features": {"fl": section}}
    report = await run_pipeline(parse_spec(spec), services, actor="tester", timeout=120)
    (generated,) = report.of_type(FEATURES_GENERATED)
    set_id = generated.payload["feature_set_id"]
    stored = services.metadata.feature_sets.get_feature_set(set_id)
    table = services.feature_stores().offline.read(set_id).to_pandas()
    expected = asof_baseline()
    assert table["wx_temp"].tolist() == pytest.approx(expected.tolist(), nan_ok=True)
    joined = stored.selection["joined"]
    assert {"name": "wx_temp", "type": "double", "from": "weather", "column": "temp"} in joined
    assert [c["name"] for c in joined][-2:] == ["wx_temp", "wx_wind"]

    home = ["--home", str(tmp_path / "home")]
    shown = CliRunner().invoke(app, [*home, "show", set_id], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "joined inputs" in shown.output
    assert "weather (temp)" in shown.output
    as_json = CliRunner().invoke(app, [*home, "show", set_id, "--json"])
    assert json.loads(as_json.output)["selection"]["joined"] == joined


async def test_a_join_is_prepared_once_per_run(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gristmill.stages.preparation as preparation

    calls: list[str] = []
    real = preparation.prepare

    def counted(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(preparation, "prepare", counted)
    found = {}
    for name in ("users", "orders", "visits"):
        (tmp_path / f"{name}.csv").write_text(
            f"user_id,ts,{name}_n\n1,2024-01-01,1\n2,2024-01-02,2\n"
        )
        found[name] = {"format": "csv", "path": str(tmp_path / f"{name}.csv")}
    section = {"from": list(found), "join": {"on": "user_id", "timestamp": "ts"}}
    spec = parse_spec({"name": "shop", "sources": found, "features": {"j": section}})
    for _ in range(3):  # the inputs' events race each other differently each time
        calls.clear()
        report = await run_pipeline(spec, services, actor="tester", timeout=120)
        assert report.run.status == "succeeded", report.run.summary
        # before: once per input whose event found every input there (up to 3 times)
        assert calls == ["j"], (_, calls)
        assert len(report.of_type(FEATURES_GENERATED)) == 1
