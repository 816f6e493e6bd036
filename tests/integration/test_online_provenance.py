"""A model scored by entity from the online store answers as it does on the entity's raw row.

A model is trained through the real stages (ingestion, preparation, split, training,
evaluation) on the Palmer penguins and promoted to ``birds@champion``. Its online vectors are
those of the pipeline its bundle names; preparing the feature set again with another
pipeline never hands it the new pipeline's vectors: its own part of the view is refreshed
(transform only) while an alias points at it, and reads ``superseded`` once none does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from palmerpenguins import load_penguins

from gristmill.config.features import FeatureSetSpec
from gristmill.config.settings import load_settings
from gristmill.config.spec import PipelineSpec, parse_spec
from gristmill.core.events import MODEL_EVALUATED
from gristmill.features.online_views import lookup
from gristmill.features.prepare import prepare, push_online
from gristmill.features.stores import FeatureStores
from gristmill.learners.inputs import select_features
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.models import Candidate
from gristmill.training.bundle import load_scorer
from gristmill.training.gate import promote

NAME = "penguins_v1"
# Rows with gaps (3, 271: imputed), of every island and species.
ENTITIES = ["p0000", "p0003", "p0100", "p0160", "p0200", "p0271", "p0300", "p0340"]
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins_section(scaling: dict[str, Any]) -> dict[str, Any]:
    return {
        "from": ["penguins"],
        "entity": "penguin_id",
        "label": "species",
        "steps": [
            {"impute": {"columns": NUMBERS, "strategy": "median"}},
            {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
            {"one_hot": {"columns": ["island", "sex"]}},
            scaling,
            {"drop": {"columns": ["year"]}},
        ],
        "online": {"ttl": "1d"},
    }


def birds_spec(csv: Path, scaling: dict[str, Any]) -> PipelineSpec:
    return parse_spec(
        {
            "name": "birds",
            "sources": {"penguins": {"format": "csv", "path": str(csv)}},
            "features": {NAME: penguins_section(scaling)},
            "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
            "train": {
                "candidates": [
                    {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}}
                ]
            },
            "evaluate": {"metric": "accuracy"},
        }
    )


def feature_set(scaling: dict[str, Any]) -> FeatureSetSpec:
    return FeatureSetSpec.model_validate(penguins_section(scaling))


STANDARDIZE = {"standardize": {"columns": NUMBERS}}
MINMAX = {"scale": {"columns": NUMBERS, "method": "minmax"}}
ROBUST = {"scale": {"columns": NUMBERS, "method": "robust"}}


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def services(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[Services]:
    overrides: dict[str, Any] = {
        "home": str(tmp_path / "home"),
        "executor": {"backend": "inline"},
        "online": {"namespace": namespace},
    }
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        overrides["online"] = {"backend": "redis", "url": url, "namespace": namespace}
    async with open_services(load_settings(overrides=overrides)) as opened:
        yield opened
        opened.online.delete_view(NAME)


@pytest.fixture
def raw(tmp_path: Path) -> pd.DataFrame:
    """The penguins as ingested, each with a ``penguin_id``; written to ``penguins.csv``."""
    frame = load_penguins()
    frame.insert(0, "penguin_id", [f"p{i:04d}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "penguins.csv", index=False)
    return pd.read_csv(tmp_path / "penguins.csv").set_index("penguin_id", drop=False)


async def champion(services: Services, csv: Path) -> Candidate:
    """Train through the real stages; the leaderboard's best becomes ``birds@champion``."""
    report = await run_pipeline(birds_spec(csv, STANDARDIZE), services, timeout=240)
    assert report.run.status == "succeeded"
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    best = evaluated.payload["leaderboard"][0]["candidate_id"]
    promote(services.metadata, best, "birds")
    return services.metadata.candidates.get_candidate(best)


def scored_online(
    stores: FeatureStores, candidate: Candidate, entities: list[str]
) -> tuple[pd.Series, pd.DataFrame, str]:
    """The model's answers for ``entities`` from their online vectors of its pipeline."""
    view, found = lookup(stores, NAME, entities, model=candidate.candidate_id)
    assert [item.status for item in found] == ["found"] * len(entities)
    vectors = [item.vector for item in found if item.vector is not None]
    assert {(v.pipeline, v.feature_set_id) for v in vectors} == {
        (view.pipeline, candidate.feature_set_id)
    }
    scorer = load_scorer(stores, candidate)
    frame = pd.DataFrame([v.values for v in vectors], index=entities)
    inputs = select_features(frame, scorer.feature_names, scorer.learner.algorithm)
    return scorer.learner.predict(inputs), scorer.learner.predict_proba(inputs), view.pipeline


def assert_same_answers(
    stores: FeatureStores, candidate: Candidate, raw: pd.DataFrame, entities: list[str]
) -> str:
    """Online (by entity) and batch (raw rows through the bundle) scoring agree exactly."""
    labels, probabilities, pipeline = scored_online(stores, candidate, entities)
    scorer = load_scorer(stores, candidate)
    assert scorer.manifest["feature_pipeline"] == pipeline
    rows = raw.loc[entities]
    assert list(labels) == list(scorer.predict(rows))
    np.testing.assert_array_equal(probabilities.to_numpy(), scorer.predict_proba(rows).to_numpy())
    return pipeline


async def test_a_model_scored_from_the_online_store_answers_as_on_the_raw_row(
    services: Services, raw: pd.DataFrame, tmp_path: Path
) -> None:
    candidate = await champion(services, tmp_path / "penguins.csv")
    stores = services.feature_stores()
    pipeline = assert_same_answers(stores, candidate, raw, ENTITIES)
    trained_on = services.metadata.feature_sets.get_feature_set(candidate.feature_set_id)
    assert pipeline == trained_on.pipeline_artifact
    # The model's part is the newest set's here: one part, read by both.
    view, _ = lookup(stores, NAME, ENTITIES[:1])
    assert (view.pipeline, view.used_by) == (pipeline, ("newest",))


async def test_another_pipeline_never_feeds_the_model(
    services: Services, raw: pd.DataFrame, tmp_path: Path
) -> None:
    csv = tmp_path / "penguins.csv"
    candidate = await champion(services, csv)
    stores = services.feature_stores()
    first = assert_same_answers(stores, candidate, raw, ENTITIES)
    batch = services.metadata.batches.latest_batch("penguins")
    assert batch is not None

    # Prepared again with another pipeline: lookups default to it, the champion keeps its own.
    second = prepare(NAME, feature_set(MINMAX), {"penguins": batch}, stores)
    assert second.created and second.feature_set is not None
    newest, now = lookup(stores, NAME, ENTITIES)
    assert newest.pipeline == second.feature_set.pipeline_artifact != first
    assert {item.vector.pipeline for item in now if item.vector} == {newest.pipeline}
    mine, kept = lookup(stores, NAME, ENTITIES, model="birds@champion")
    assert mine.pipeline == first
    assert [v.vector.values if v.vector else None for v in kept] != [
        v.vector.values if v.vector else None for v in now
    ]
    # ... refreshed by the preparation through its own pipeline (no refit): same answers.
    assert assert_same_answers(stores, candidate, raw, ENTITIES) == first

    # With no alias on it, its part is left behind and says so: never the newer vectors.
    services.metadata.registry.remove_alias("birds", "champion")
    third = prepare(NAME, feature_set(ROBUST), {"penguins": batch}, stores)
    assert third.created
    _, behind = lookup(stores, NAME, ENTITIES, model=candidate.candidate_id)
    assert [(item.status, item.vector) for item in behind] == [("superseded", None)] * len(ENTITIES)
    assert all(item.newer_time and item.event_time < item.newer_time for item in behind)


async def test_streamed_records_reach_every_pipeline_in_use(
    services: Services, raw: pd.DataFrame, tmp_path: Path
) -> None:
    candidate = await champion(services, tmp_path / "penguins.csv")
    stores = services.feature_stores()
    section = feature_set(MINMAX)
    record = raw.loc[["p0003"]].assign(penguin_id="p9999").set_index("penguin_id", drop=False)
    records = pa.Table.from_pandas(record, preserve_index=False)

    # One pipeline in use: one vector per record.
    assert push_online(NAME, section, records, stores) == 1

    batch = services.metadata.batches.latest_batch("penguins")
    assert batch is not None
    prepare(NAME, section, {"penguins": batch}, stores)
    fresh = records.set_column(0, "penguin_id", pa.array(["p9998"]))
    # The newest pipeline and the champion's: a vector each, stamped alike.
    assert push_online(NAME, section, fresh, stores) == 2
    newest, (theirs,) = lookup(stores, NAME, ["p9998"])
    mine, (own,) = lookup(stores, NAME, ["p9998"], model="birds@champion")
    assert newest.pipeline != mine.pipeline
    assert theirs.vector is not None and own.vector is not None
    assert theirs.event_time == own.event_time
    both = pd.concat([raw, record.assign(penguin_id="p9998").set_index("penguin_id", drop=False)])
    assert_same_answers(stores, candidate, both, ["p9998", *ENTITIES])
