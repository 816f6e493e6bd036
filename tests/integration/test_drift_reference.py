"""Drift references of versions trained the real way: built by the deployment stage when it
registers a version, and by the monitoring stage for a version registered without one;
made of the version's training rows only, the columns its servable takes, and its
predictions; then what its servable answers is counted against it."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.monitoring.reference import REFERENCE_KIND, find_reference
from gristmill.runtime.drift_views import drift_windows
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import open_services
from gristmill.servables.loading import load_servable
from gristmill.stages.monitoring import MonitoringStage
from gristmill.testing.prediction_logs import write_log
from gristmill.testing.registered import PENGUIN_SECTION, penguins
from gristmill.training.gate import promote

pytestmark = pytest.mark.slow
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def test_references_are_built_at_deployment_and_for_older_versions(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    data = tmp_path / "penguins.csv"
    frame = penguins()
    frame.to_csv(data, index=False)
    spec = parse_spec(
        {
            "name": "birds",
            "sources": {"penguins": {"format": "csv", "path": str(data)}},
            "features": {"penguins_v1": {"from": ["penguins"], **PENGUIN_SECTION}},
            "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
            "train": {"candidates": [{"name": "logreg", "algorithm": "logistic_regression"}]},
            "evaluate": {"metric": "accuracy"},
            "deploy": {"policy": "always"},
            "monitor": {"window": "1d", "drift": {"min_rows": 50}},
        }
    )
    async with open_services(settings) as services:
        report = await run_pipeline(spec, services, timeout=280)
        assert report.run.status == "succeeded", report.run.summary
        stores = services.feature_stores()
        version = services.metadata.registry.get_version("birds", 1)

        # built when the deployment stage registered it: from the train subset only
        reference = find_reference(stores, version)
        assert reference is not None
        servable = load_servable(stores, "birds", 1)
        inputs = [c.name for c in servable.manifest.inputs]
        assert [c.name for c in reference.columns] == [*inputs, "prediction"]
        candidate = services.metadata.candidates.get_candidate(version.candidate_id)
        train = services.metadata.splits.get_split(candidate.split_id).sizes["train"]
        assert reference.rows == train < len(frame)
        numbers = reference.column("bill_length_mm")
        assert numbers is not None and numbers.kind == "numeric"
        assert numbers.rows + numbers.missing == train
        prediction = reference.column("prediction")
        assert prediction is not None
        assert prediction.categories == ("Adelie", "Chinstrap", "Gentoo")
        assert sum(prediction.counts) + prediction.missing == train
        assert reference.sample is not None
        ref = stores.artifacts.find(reference.sample)
        assert ref is not None
        sample = pq.read_table(io.BytesIO(stores.artifacts.get(ref)))
        assert sample.column_names == [*inputs, "prediction"] and sample.num_rows == train

        # a version registered without one (as before monitoring existed): built when its
        # first log file is counted
        promote(services.metadata, candidate.candidate_id, "birds_copy")
        copy = services.metadata.registry.get_version("birds_copy", 1)
        assert find_reference(stores, copy) is None
        rows = frame.sample(200, random_state=3)
        columns = {name: rows[name].to_numpy() for name in inputs}
        answer = servable.predict(columns)
        manifest = load_servable(stores, "birds_copy", 1).manifest
        event = write_log(tmp_path / "log", manifest, columns, answer.values, AT, name="a")
        outcome = MonitoringStage(stores, spec).handle(event)
        assert "200 row(s) of birds_copy/1 counted" in outcome.summary
        built = find_reference(stores, copy)
        assert built is not None and built.columns == reference.columns
        reports = services.metadata.reports.list_reports(
            subject="birds_copy/1", kind=REFERENCE_KIND
        )
        assert len(reports) == 1
        [window] = drift_windows(services.metadata, "birds_copy", since=AT)
        assert window.rows == 200
        assert {c.column for c in window.columns} == {*inputs, "prediction"}
        assert all(c.judged for c in window.columns if c.rows >= 50)
