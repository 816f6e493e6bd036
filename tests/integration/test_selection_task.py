"""Label-based selection in preparation scores for the task training uses.

Preparation fits the pipeline (selection included) before training decides its task, so
both read the same rule (``core.tasks``) or the spec's ``train.task``: an integer price
with hundreds of distinct values is a regression for both; ``train.task: classification``
makes it classes for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_diabetes
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_TRAINED
from gristmill.features.rows import ROW_ID
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.features import FeatureSet
from gristmill.training.splits import fitted_split


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def price_spec(folder: Path, **train: Any) -> dict[str, Any]:
    frame = load_diabetes(as_frame=True).frame
    frame["price"] = (frame.pop("target") * 100).astype("int64")  # 214 distinct integers
    frame.to_parquet(folder / "prices.parquet", index=False)
    return {
        "name": "prices",
        "sources": {"prices": {"format": "parquet", "path": str(folder / "prices.parquet")}},
        "features": {
            "prices_v1": {
                "from": ["prices"],
                "label": "price",
                "select": {"method": "mutual_info", "k": 4},
            }
        },
        # in order: mutual information breaks the label's ties with seeded noise, so the
        # scores depend on the order of the training rows, which a sequential split keeps
        "split": {"strategy": "sequential", "test_size": 0.25},
        "train": {"candidates": [{"name": "tree", "algorithm": "decision_tree"}], **train},
    }


async def prepared(services: Services, spec: Any) -> tuple[FeatureSet, str]:
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded", report.run.summary
    (trained,) = report.of_type(MODEL_TRAINED)
    fs = services.metadata.feature_sets.get_feature_set(trained.payload["feature_set_id"])
    return fs, str(trained.payload["task"])


def train_rows(spec: Any, fs: FeatureSet, services: Services) -> tuple[Any, Any]:
    """The raw rows of the training subset (the feature set holds the kept columns only)."""
    (batch,) = fs.inputs
    keys = fitted_split(spec, fs, services.feature_stores()).train.column(ROW_ID).to_pylist()
    raw = services.raw.read(batch).to_pandas()
    rows = raw.iloc[[int(key.removeprefix(f"{batch}:")) for key in keys]]
    return rows.drop(columns="price"), rows["price"]


async def test_an_integer_price_is_selected_for_as_a_regression(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(price_spec(tmp_path))
    fs, task = await prepared(services, spec)
    assert task == "regression"
    assert (fs.selection["task"], fs.selection["note"]) == (
        "regression",
        "mutual_info_regression, seed 0",
    )
    features, label = train_rows(spec, fs, services)
    expected = mutual_info_regression(features, label, random_state=0)
    scores = [fs.selection["scores"][c] for c in features.columns]
    assert scores == pytest.approx(list(expected))
    assert scores != pytest.approx(list(mutual_info_classif(features, label, random_state=0)))


@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")
async def test_train_task_classification_makes_it_classes_for_selection_too(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(price_spec(tmp_path, task="classification"))
    fs, task = await prepared(services, spec)
    assert task == "classification"
    assert (fs.selection["task"], fs.selection["task_reason"]) == (
        "classification",
        "set by train.task",
    )
    features, label = train_rows(spec, fs, services)
    expected = mutual_info_classif(features, label, random_state=0)
    scores = [fs.selection["scores"][c] for c in features.columns]
    assert scores == pytest.approx(list(expected))
