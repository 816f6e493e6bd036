"""A trained candidate scores raw rows: its fitted feature pipeline first, then the learner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_EVALUATED
from gristmill.errors import DataError
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.models import Candidate
from gristmill.training.bundle import Scorer, load_model, load_scorer


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture
def raw_csv(tmp_path: Path) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    path = tmp_path / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


async def trained_best(services: Services, raw_csv: Path) -> Candidate:
    """Train on breast cancer with every feature standardized; the leaderboard's best."""
    features = [c for c in pd.read_csv(raw_csv, nrows=1).columns if c != "target"]
    spec = parse_spec(
        {
            "name": "cancer",
            "sources": {"cancer": {"format": "csv", "path": str(raw_csv)}},
            "features": {
                "cancer_v1": {
                    "from": ["cancer"],
                    "label": "target",
                    "steps": [{"standardize": {"columns": features}}],
                }
            },
            "split": {"strategy": "stratified", "test_size": 0.3, "seed": 7},
            "train": {
                "candidates": [
                    {"name": "logreg", "algorithm": "logistic_regression", "params": {"C": 0.5}}
                ]
            },
            "evaluate": {"metric": "accuracy"},
        }
    )
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded"
    (evaluated,) = report.of_type(MODEL_EVALUATED)
    best = evaluated.payload["leaderboard"][0]
    return services.metadata.candidates.get_candidate(best["candidate_id"])


def held_out_rows(services: Services, candidate: Candidate, raw_csv: Path) -> pd.DataFrame:
    """The raw CSV rows of the candidate's test subset, named by their row id
    (``<batch>:<row number>``: one source, no join, so the row number in the file)."""
    stores = services.feature_stores()
    split = services.metadata.splits.get_split(candidate.split_id or "")
    ref = stores.artifacts.find(split.membership or "")
    assert ref is not None
    membership = pa.ipc.open_stream(stores.artifacts.get(ref)).read_all().to_pandas()
    keys = membership.loc[membership["subset"] == "test", "_row_id"]
    rows = [int(key.rsplit(":", 1)[1]) for key in keys]
    return pd.read_csv(raw_csv).iloc[rows]


async def test_a_scorer_predicts_raw_rows_as_the_leaderboard_measured(
    services: Services, raw_csv: Path
) -> None:
    best = await trained_best(services, raw_csv)
    stores = services.feature_stores()
    scorer = load_scorer(stores, best)
    assert isinstance(scorer, Scorer)
    assert scorer.classes == [0, 1]
    assert "mean_radius" in scorer.feature_names and "target" not in scorer.feature_names

    rows = held_out_rows(services, best, raw_csv)
    predicted = scorer.predict(rows)
    assert predicted.index.equals(rows.index)
    accuracy = float((predicted == rows["target"]).mean())
    assert accuracy == pytest.approx(best.metrics["accuracy"], abs=1e-9)
    assert accuracy > 0.9

    proba = scorer.predict_proba(rows.drop(columns=["target"]))  # no label needed
    assert list(proba.columns) == [0, 1]
    assert proba.index.equals(rows.index)
    assert ((proba[1] > 0.5).astype(int) == predicted).all()

    # The learner alone takes feature rows: given raw rows, it scores unscaled values.
    _, learner = load_model(stores, best)
    assert float((learner.predict(rows) == rows["target"]).mean()) < accuracy - 0.2


async def test_a_missing_input_column_is_named(services: Services, raw_csv: Path) -> None:
    best = await trained_best(services, raw_csv)
    scorer = load_scorer(services.feature_stores(), best)
    rows = pd.read_csv(raw_csv).head(5).drop(columns=["mean_texture"])
    with pytest.raises(DataError, match="'mean_texture'") as raised:
        scorer.predict(rows)
    assert raised.value.column == "mean_texture"
