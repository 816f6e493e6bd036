"""The preparation stage on the embedded stack: validation that stops, bad specs, inspection.

(``test_preparation_run`` follows the feature sets a run computes on every backend.)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from gristmill.cli.app import app
from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import DATA_ANOMALOUS, FEATURES_GENERATED, RAW_INGESTED, Event
from gristmill.errors import ConfigError, NotFoundError
from gristmill.features.online_views import lookup
from gristmill.features.steps.registry import step_names
from gristmill.runtime.pipeline_run import RunReport, run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.runtime.worker import StageWorker
from gristmill.stages.base import STAGE_FAILED
from gristmill.stages.preparation import PreparationStage
from gristmill.testing.data import numbers_table, write_parquet

ROWS = 400


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with open_services(load_settings(overrides={"home": str(tmp_path / "home")})) as opened:
        yield opened


def readings_table() -> pa.Table:
    """``id``, ``amount`` (about 100 ± 15, 15 % missing), ``kind`` (3 colours), ``ok``."""
    table = numbers_table(ROWS, seed=3)
    missing = np.random.default_rng(3).random(ROWS) < 0.15
    amount = pa.array(table["amount"].to_numpy(), mask=missing)
    return table.set_column(1, "amount", amount)


def readings_spec(folder: Path, **feature_sets: dict[str, Any]) -> dict[str, Any]:
    path = folder / "readings.parquet"
    if not path.exists():
        write_parquet(path, readings_table())
    sources = {"readings": {"format": "parquet", "path": str(path)}}
    return {"name": "readings", "sources": sources, "features": feature_sets}


def feature_set(**section: Any) -> dict[str, Any]:
    """A valid set over ``readings`` (entity ``id``, label ``ok``); ``section`` overrides."""
    return {
        "from": ["readings"],
        "entity": "id",
        "label": "ok",
        "steps": [
            {"impute": {"columns": ["amount"], "strategy": "median"}},
            {"one_hot": {"columns": ["kind"]}},
            {"standardize": {"columns": ["amount"]}},
        ],
        "online": {"ttl": "1d"},
        **section,
    }


async def run(spec: dict[str, Any], services: Services) -> RunReport:
    return await run_pipeline(parse_spec(spec), services, actor="tester", timeout=120)


STOPPING = {
    "a column above its maximum": (
        {"on_anomaly": "stop", "max_missing": 0.5, "expect": {"amount": {"max": 130}}},
        "out_of_range",
    ),
    "too many missing values": ({"on_anomaly": "stop", "max_missing": 0.1}, "missing"),
}


@pytest.mark.parametrize("thresholds, kind", list(STOPPING.values()), ids=list(STOPPING))
async def test_validation_that_stops_announces_the_findings_and_writes_no_feature_set(
    services: Services, tmp_path: Path, thresholds: dict[str, Any], kind: str
) -> None:
    spec = readings_spec(tmp_path, readings_v1=feature_set(validation=thresholds))
    report = await run(spec, services)

    (ingested,) = report.of_type(RAW_INGESTED)
    batch_id = ingested.payload["batch_id"]
    (anomalous,) = report.of_type(DATA_ANOMALOUS)
    assert anomalous.key == "readings_v1" and anomalous.payload["batches"] == [batch_id]
    findings = anomalous.payload["anomalies"]
    assert [(a["column"], a["kind"]) for a in findings] == [("amount", kind)]
    assert findings[0]["numbers"]["share"] > 0 and "amount" in findings[0]["message"]
    assert report.of_type(FEATURES_GENERATED) == report.of_type(STAGE_FAILED) == []
    assert report.run.summary["events"] == {RAW_INGESTED: 1, DATA_ANOMALOUS: 1}

    (stored,) = services.metadata.reports.list_reports(subject=batch_id, kind="validation")
    assert stored.report_id == anomalous.payload["reports"][0]
    assert stored.status == "failed" and stored.body["anomalies"] == findings
    assert services.metadata.feature_sets.list_feature_sets() == []
    home = tmp_path / "home"
    assert not (home / "features").exists() or not any((home / "features").rglob("*"))
    assert not (home / "artifacts").exists() or not any((home / "artifacts").rglob("*"))
    with pytest.raises(NotFoundError, match="no feature set named 'readings_v1'"):
        lookup(services.feature_stores(), "readings_v1", ["0", "1"])


async def test_a_run_whose_feature_set_validation_stopped_is_partial(
    services: Services, tmp_path: Path
) -> None:
    thresholds = {"on_anomaly": "stop", "max_missing": 0.1}
    report = await run(
        readings_spec(tmp_path, readings_v1=feature_set(validation=thresholds)), services
    )
    assert report.of_type(DATA_ANOMALOUS)
    assert report.run.status == "partial"


UNKNOWN_STEP = [
    "steps[0] (standardise)",
    "no feature step named 'standardise'",
    "did you mean 'standardize'?",
    "known: " + ", ".join(step_names()),
]


async def test_an_unknown_step_is_refused_before_a_run_and_fails_the_stage(
    services: Services, tmp_path: Path
) -> None:
    bad = readings_spec(tmp_path, readings_v1=feature_set(steps=[{"standardise": {}}]))
    with pytest.raises(ConfigError) as refused:
        await run(bad, services)
    assert str(refused.value).startswith("features.readings_v1.steps[0] (standardise): ")
    assert all(phrase in str(refused.value) for phrase in UNKNOWN_STEP)
    assert services.metadata.runs.list_runs() == []
    assert services.metadata.batches.list_batches() == []

    # A worker started with such a spec meets it in the stage: a permanent error (which the
    # worker announces as stage.failed), naming the feature set.
    report = await run({**bad, "features": None}, services)
    stage = PreparationStage(services.feature_stores(), lambda event: parse_spec(bad))
    with pytest.raises(ConfigError) as failed:
        stage.handle(report.of_type(RAW_INGESTED)[0])
    assert str(failed.value).startswith("feature set 'readings_v1': ")
    assert all(phrase in str(failed.value) for phrase in UNKNOWN_STEP)


BAD_SETS = {
    "a step on a missing column": (
        {"steps": [{"standardize": {"columns": ["amount", "amuont"]}}]},
        "DataError",
        ["step 'standardize' needs column 'amuont'", "available: id, amount, kind"],
    ),
    "an absent label column": (
        {"label": "okay"},
        "DataError",
        ["needs column 'okay' (its label, entity and timestamp columns)", "has: id, amount"],
    ),
}


@pytest.mark.parametrize(
    "section, error_type, phrases", list(BAD_SETS.values()), ids=list(BAD_SETS)
)
async def test_a_bad_feature_set_fails_the_stage_with_a_message_naming_the_fault(
    services: Services, tmp_path: Path, section: dict[str, Any], error_type: str, phrases: list[str]
) -> None:
    report = await run(readings_spec(tmp_path, readings_v1=feature_set(**section)), services)

    assert report.run.status == "partial"
    (failed,) = report.of_type(STAGE_FAILED)
    assert failed.payload["stage"] == "preparation" and failed.payload["error_type"] == error_type
    assert failed.payload["error"].startswith("feature set 'readings_v1': ")
    for phrase in phrases:
        assert phrase in failed.payload["error"]
    assert report.of_type(FEATURES_GENERATED) == []
    assert services.metadata.feature_sets.list_feature_sets() == []
    executions = services.metadata.executions.list_executions(report.run.run_id)
    (preparation,) = [e for e in executions if e.stage == "preparation"]
    assert preparation.status == "failed" and preparation.error == failed.payload["error"]


@pytest.mark.parametrize("order", [("good", "bad"), ("bad", "good")])
async def test_one_bad_feature_set_does_not_hold_back_the_others(
    services: Services, tmp_path: Path, order: tuple[str, str]
) -> None:
    sets = {
        "good": feature_set(),
        "bad": feature_set(steps=[{"standardize": {"columns": ["amuont"]}}]),
    }
    report = await run(readings_spec(tmp_path, **{name: sets[name] for name in order}), services)

    assert [e.payload["name"] for e in report.of_type(FEATURES_GENERATED)] == ["good"]
    (failed,) = report.of_type(STAGE_FAILED)
    assert failed.key == failed.payload["feature_set"] == "bad"
    assert failed.payload["error"].startswith("feature set 'bad': ")
    assert "'amuont'" in failed.payload["error"]
    assert report.run.status == "partial"
    assert [fs.name for fs in services.metadata.feature_sets.list_feature_sets()] == ["good"]


async def test_a_join_is_announced_once_per_run(services: Services, tmp_path: Path) -> None:
    left, right = readings_table(), numbers_table(ROWS, seed=4).select(["id", "ok"])
    write_parquet(tmp_path / "left.parquet", left)
    write_parquet(tmp_path / "right.parquet", right.rename_columns(["id", "flag"]))
    sources = {
        name: {"format": "parquet", "path": str(tmp_path / f"{name}.parquet")}
        for name in ("left", "right")
    }
    joined = {
        "from": ["left", "right"],
        "join": {"on": "id", "how": "exact"},
        "steps": [{"one_hot": {"columns": ["kind"]}}],
    }
    with_features = parse_spec({"name": "j", "sources": sources, "features": {"both": joined}})
    # The run ingests both sources; the stage then meets its two raw.ingested events in turn.
    report = await run({"name": "j", "sources": sources}, services)
    stage = PreparationStage(services.feature_stores(), lambda event: with_features)
    announced = [
        a.type for e in report.of_type(RAW_INGESTED) for a in stage.handle(e).announcements
    ]
    assert len(services.metadata.feature_sets.list_feature_sets(name="both")) == 1
    assert announced == [FEATURES_GENERATED]


def gristmill_show(home: Path, object_id: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--home", str(home), "show", object_id, "--json"])
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.output)
    return shown


async def test_show_finds_the_run_its_feature_set_and_its_validation_report(
    services: Services, tmp_path: Path
) -> None:
    report = await run(readings_spec(tmp_path, readings_v1=feature_set()), services)
    (generated,) = report.of_type(FEATURES_GENERATED)
    set_id, (report_id,) = generated.payload["feature_set_id"], generated.payload["reports"]
    batch_id = report.of_type(RAW_INGESTED)[0].payload["batch_id"]
    home = tmp_path / "home"

    run_record = gristmill_show(home, report.run.run_id)
    outputs = [
        o["payload"] for e in run_record["executions"] if e["stage"] == "preparation"
        for o in e["outputs"]
    ]  # fmt: skip
    assert [o["feature_set_id"] for o in outputs] == [set_id]
    feature_record = gristmill_show(home, set_id)
    assert feature_record["inputs"] == [batch_id]
    assert feature_record["validation_report"] == report_id
    # the row id first (no entity and timestamp name its rows), then the columns
    assert [c["name"] for c in feature_record["columns"]][:3] == ["_row_id", "id", "amount"]
    report_record = gristmill_show(home, report_id)
    assert (report_record["subject"], report_record["status"]) == (batch_id, "passed")
    assert report_record["body"]["row_count"] == ROWS


async def test_an_event_naming_a_batch_that_does_not_exist_fails_at_once(
    services: Services, tmp_path: Path
) -> None:
    # A missing input is permanent: retrying cannot make the batch appear, so the failure is
    # recorded and announced on the first delivery, and the event is acked, not sent back.
    spec = parse_spec(readings_spec(tmp_path, readings=feature_set()))
    worker = StageWorker(
        PreparationStage(services.feature_stores(), lambda _event: spec),
        services.bus,
        services.metadata.executions,
    )
    event = Event(
        type=RAW_INGESTED,
        key="readings",
        payload={"source": "readings", "batch_id": "rb_nosuchbatch"},
    )
    await services.bus.publish([event])
    (delivery,) = await services.bus.consume("preparation", RAW_INGESTED, "c", wait=5.0)
    await worker.process(delivery)

    assert worker.handled == 1  # acked on its first attempt
    announced = await services.bus.consume("observer", STAGE_FAILED, "o", max_events=10)
    (failed,) = [d.event for d in announced]
    assert failed.payload["error_type"] == "NotFoundError"
    assert "rb_nosuchbatch" in failed.payload["error"]
    (execution,) = services.metadata.executions.list_executions(event.correlation_id)
    assert execution.status == "failed"
