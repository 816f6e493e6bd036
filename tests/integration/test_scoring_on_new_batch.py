"""The spec's ``score: {on: new_batch}``: a new raw batch of its source is scored by the
spec's model within the run that ingested it, without a person; a run before any version
is registered scores nothing and still succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import SCORES_READY, SCORES_REQUESTED
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import open_services
from gristmill.testing.registered import PENGUIN_SECTION, penguins
from gristmill.training.gate import promote

pytestmark = pytest.mark.slow


async def test_a_new_batch_is_scored_in_the_run_that_ingests_it(tmp_path: Path) -> None:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    data = tmp_path / "penguins.csv"
    frame = penguins()
    frame.head(300).to_csv(data, index=False)
    spec = parse_spec(
        {
            "name": "birds",
            "sources": {"penguins": {"format": "csv", "path": str(data)}},
            "features": {"penguins_v1": {"from": ["penguins"], **PENGUIN_SECTION}},
            "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
            "train": {"candidates": [{"name": "logreg", "algorithm": "logistic_regression"}]},
            "evaluate": {"metric": "accuracy"},
            "score": {"source": "penguins"},
        }
    )
    assert spec.skipped_sections() == [] and spec.scoring_model() == "birds"
    async with open_services(settings) as services:
        first = await run_pipeline(spec, services, timeout=280)
        assert first.run.status == "succeeded", first.run.summary
        assert not first.of_type(SCORES_REQUESTED)  # no version of birds yet
        (candidate,) = services.metadata.candidates.list_candidates(run_id=first.run.run_id)
        promote(services.metadata, candidate.candidate_id, "birds")

        frame.to_csv(data, index=False)  # new bytes arrive: a new batch
        second = await run_pipeline(spec, services, timeout=280)
        assert second.run.status == "succeeded", second.run.summary
        (requested,) = second.of_type(SCORES_REQUESTED)
        (ready,) = second.of_type(SCORES_READY)
        job = services.metadata.score_jobs.get_job(ready.payload["job_id"])
        assert requested.payload["job_id"] == job.job_id
        assert (job.state, job.model, job.version, job.rows) == ("succeeded", "birds", 1, 344)
        (batch, *_) = services.raw.list(source="penguins")
        assert job.input == f"batch:{batch.batch_id}" and batch.row_count == 344
