"""`run_pipeline` end to end, on the embedded stack and on real backends by settings alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import RAW_INGESTED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import open_services
from gristmill.stages.base import STAGE_FAILED
from gristmill.testing.data import numbers_table, wine_table, write_csv, write_parquet


@pytest.fixture(params=["embedded", "redis+postgres", "nats+postgres"])
def overrides(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> Iterator[dict[str, Any]]:
    settings: dict[str, Any] = {"home": str(tmp_path / "home")}
    if request.param != "embedded":
        bus = request.param.split("+")[0]
        settings["bus"] = {
            "backend": bus,
            "url": request.getfixturevalue(f"{bus}_url"),
            "namespace": namespace,
        }
        settings["metadata"] = {
            "backend": "postgres",
            "url": request.getfixturevalue("postgres_url"),
            "db_schema": namespace,
        }
    yield settings
    if request.param != "embedded":
        import sqlalchemy

        engine = sqlalchemy.create_engine(settings["metadata"]["url"])
        with engine.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE')
        engine.dispose()


def spec_for(folder: Path) -> dict[str, Any]:
    write_parquet(folder / "wine.parquet", wine_table())
    write_csv(folder / "numbers.csv", numbers_table(1_000))
    (folder / "broken.csv").write_text("a,b\n1,2\n3\n")
    return {
        "name": "mixed",
        "sources": {
            "wine": {"format": "parquet", "path": str(folder / "wine.parquet")},
            "numbers": {"format": "csv", "path": str(folder / "numbers.csv")},
            "broken": {"format": "csv", "path": str(folder / "broken.csv")},
        },
        "deploy": {"policy": "manual"},
    }


async def test_a_run_ingests_every_source_and_reports_the_failure(
    overrides: dict[str, Any], tmp_path: Path
) -> None:
    spec = parse_spec(spec_for(tmp_path))
    settings = load_settings(overrides=overrides)
    seen: list[str] = []
    async with open_services(settings) as services:
        report = await run_pipeline(
            spec, services, on_event=lambda e: seen.append(e.type), actor="tester", timeout=120
        )
        purge = getattr(services.bus, "purge", None)
        if purge is not None:
            await purge()
        runs = services.metadata.runs.list_runs()
        audit = services.metadata.audit.list_entries(subject=report.run.run_id)

    assert report.run.status == "partial"
    assert report.skipped_sections == []
    ingested = {e.key: e.payload for e in report.of_type(RAW_INGESTED)}
    assert ingested["wine"]["rows"] == 178 and ingested["numbers"]["rows"] == 1_000
    (failure,) = report.of_type(STAGE_FAILED)
    assert failure.key == "broken" and "broken.csv" in failure.payload["error"]
    assert all(e.correlation_id == report.run.run_id for e in report.events)
    assert sorted(seen) == sorted(e.type for e in report.events)
    assert [r.run_id for r in runs] == [report.run.run_id]
    assert report.run.summary["events"] == {RAW_INGESTED: 2, STAGE_FAILED: 1}
    assert [(a.actor, a.action) for a in audit] == [("tester", "run.started")]
