"""Evaluation is idempotent: the same inputs find the recorded leaderboard; a retry converges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from gristmill.backends.sql.reports import SqlReportStore
from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED, MODEL_TRAINED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.stages import offline_stage
from gristmill.runtime.wiring import Services, open_services
from gristmill.stages.base import STAGE_FAILED
from gristmill.stages.preparation import run_spec_resolver
from gristmill.stores.reports import Report
from gristmill.training import assess as assess_module


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def cancer_spec(folder: Path) -> dict[str, Any]:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame.to_parquet(folder / "cancer.parquet", index=False)
    return {
        "name": "cancer",
        "sources": {"cancer": {"format": "parquet", "path": str(folder / "cancer.parquet")}},
        "features": {"cancer_v1": {"from": ["cancer"], "label": "target"}},
        "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
        "train": {
            "candidates": [
                {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}},
                {"name": "tree", "algorithm": "decision_tree", "params": {"max_depth": 3}},
            ]
        },
        "evaluate": {"metric": "roc_auc", "evaluators": ["accuracy", "f1"]},
    }


@pytest.fixture
def scored(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The candidates actually scored (the inline executor runs the job in this process)."""
    calls: list[str] = []
    real = assess_module.evaluate_candidate

    def counting(*args: Any) -> dict[str, Any]:
        calls.append("scored")
        return real(*args)

    monkeypatch.setattr(assess_module, "evaluate_candidate", counting)
    return calls


def _pictures(evaluated: dict[str, Any]) -> dict[str, int]:
    return {
        file: Path(file).stat().st_mtime_ns
        for files in evaluated["images"].values()
        for file in files.values()
    }


async def test_a_rerun_on_the_same_inputs_finds_the_leaderboard_instead_of_rescoring(
    services: Services, tmp_path: Path, scored: list[str]
) -> None:
    spec = parse_spec(cancer_spec(tmp_path))
    first = await run_pipeline(spec, services, timeout=240)
    (evaluated,) = first.of_type(MODEL_EVALUATED)
    report_id = evaluated.payload["report"]
    recorded = services.metadata.reports.get_report(report_id)
    pictures = _pictures(evaluated.payload)
    assert len(scored) == 2 and pictures

    second = await run_pipeline(spec, services, timeout=240)
    assert second.run.status == "succeeded", second.of_type(STAGE_FAILED)
    (again,) = second.of_type(MODEL_EVALUATED)
    assert again.payload["report"] == report_id
    assert again.payload["leaderboard"] == evaluated.payload["leaderboard"]
    assert len(scored) == 2, "the candidates were scored again"
    assert _pictures(again.payload) == pictures, "the pictures were drawn again"
    assert services.metadata.reports.get_report(report_id) == recorded  # first record kept
    assert len(services.metadata.reports.list_reports(kind="leaderboard")) == 1


async def test_a_retry_after_a_crash_between_writes_converges(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pictures and the candidates' metrics are written, then the handler dies just
    # before the leaderboard is recorded; the worker retries the event
    real_add = SqlReportStore.add_report
    crashes = iter([True])

    def crashing(self: SqlReportStore, report: Report) -> None:
        if report.kind == "leaderboard" and next(crashes, False):
            raise RuntimeError("killed between writes")
        real_add(self, report)

    monkeypatch.setattr(SqlReportStore, "add_report", crashing)
    spec = parse_spec(cancer_spec(tmp_path))
    run = await run_pipeline(spec, services, timeout=240)
    assert run.run.status == "succeeded", run.of_type(STAGE_FAILED)
    assert next(crashes, None) is None, "the crash never happened"
    (trained,) = run.of_type(MODEL_TRAINED)
    (evaluated,) = run.of_type(MODEL_EVALUATED)
    report_id = evaluated.payload["report"]
    recorded = services.metadata.reports.get_report(report_id)

    # the ack was lost after the report was recorded: the redelivery finds it, no conflict
    stage = offline_stage("evaluation", services, run_spec_resolver(services.metadata, spec))
    again = stage.handle(trained).announcements[0].payload
    assert again["report"] == report_id and again["leaderboard"] == evaluated.payload["leaderboard"]
    assert services.metadata.reports.get_report(report_id) == recorded


async def test_missing_pictures_of_a_recorded_leaderboard_are_restored(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(cancer_spec(tmp_path))
    first = await run_pipeline(spec, services, timeout=240)
    (evaluated,) = first.of_type(MODEL_EVALUATED)
    picture = Path(next(iter(evaluated.payload["images"]["logreg"].values())))
    png = picture.read_bytes()
    picture.unlink()
    second = await run_pipeline(spec, services, timeout=240)
    (again,) = second.of_type(MODEL_EVALUATED)
    assert again.payload["report"] == evaluated.payload["report"]
    assert picture.read_bytes() == png
