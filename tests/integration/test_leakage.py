"""Nothing fitted sees the test rows, and rows keep their identity from raw batch to split.

The data are made so that leaking would show: the rows a sequential split puts in the test
subset hold extreme values and a label relation of their own, so an imputer's median, a
scaler's mean and chi-square scores fitted on every row differ from those fitted on the
training rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gristmill.config.settings import load_settings
from gristmill.config.spec import parse_spec
from gristmill.core.events import MODEL_TRAINED
from gristmill.errors import ConfigError
from gristmill.execution.inline import InlineExecutor
from gristmill.features.pipeline import FeaturePipeline
from gristmill.features.prepare import load_pipeline, prepare
from gristmill.features.rows import ROW_ID
from gristmill.runtime.pipeline_run import run_pipeline
from gristmill.runtime.wiring import Services, open_services
from gristmill.stores.features import FeatureSet
from gristmill.training.splits import fitted_split, read_membership
from gristmill.training.train import TrainingResult, train

ROWS, TEST = 200, 50  # a sequential split, test_size 0.25: the last 50 rows are the test rows


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    settings = load_settings(
        overrides={"home": str(tmp_path / "home"), "executor": {"backend": "inline"}}
    )
    async with open_services(settings) as opened:
        yield opened


def skewed_rows() -> pd.DataFrame:
    """Train rows of moderate values; test rows far out, with the label tied to ``z``."""
    rng = np.random.default_rng(3)
    x = rng.normal(10.0, 2.0, ROWS)
    x[-TEST:] += 1000.0
    x[::7] = np.nan  # gaps in train and test rows alike
    y = rng.integers(0, 2, ROWS)
    z = rng.normal(0.0, 1.0, ROWS)
    z[-TEST:] = y[-TEST:] * 50.0  # only the test rows tie z to the label
    w = y + rng.normal(0.0, 0.5, ROWS)  # a feature that carries the label everywhere
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return pd.DataFrame(
        {
            "shop": [f"s{i % 20}" for i in range(ROWS)],
            "at": [start + timedelta(days=i // 20) for i in range(ROWS)],
            "x": x,
            "z": z,
            "w": w,
            "y": y,
        }
    )


def leaky_spec(folder: Path, **section: Any) -> dict[str, Any]:
    skewed_rows().to_parquet(folder / "rows.parquet", index=False)
    return {
        "name": "skewed",
        "sources": {"rows": {"format": "parquet", "path": str(folder / "rows.parquet")}},
        "features": {
            "rows_v1": {
                "from": ["rows"],
                "label": "y",
                "steps": [
                    {"drop": {"columns": ["shop", "at"]}},
                    {"impute": {"columns": ["x"], "strategy": "median"}},
                    {"standardize": {"columns": ["x"]}},
                ],
                "select": {"method": "chi2", "k": 2},
                **section,
            }
        },
        "split": {"strategy": "sequential", "test_size": 0.25},
        "train": {"candidates": [{"name": "logreg", "algorithm": "logistic_regression"}]},
        "evaluate": {"metric": "accuracy"},
    }


async def trained_set(services: Services, spec: Any) -> tuple[FeatureSet, str]:
    report = await run_pipeline(spec, services, timeout=240)
    assert report.run.status == "succeeded", report.run.summary
    (trained,) = report.of_type(MODEL_TRAINED)
    fs = services.metadata.feature_sets.get_feature_set(trained.payload["feature_set_id"])
    return fs, str(trained.payload["split_id"])


async def test_the_fitted_pipeline_learns_from_the_training_rows_only(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(leaky_spec(tmp_path))
    fs, split_id = await trained_set(services, spec)
    stores = services.feature_stores()
    fitted = load_pipeline(stores, fs, spec.features["rows_v1"])  # type: ignore[index]
    rows = skewed_rows()
    train_rows, all_rows = rows.iloc[: ROWS - TEST], rows

    median = float(np.nanmedian(train_rows["x"]))
    assert median != pytest.approx(float(np.nanmedian(all_rows["x"])))  # leaking would show
    impute, standardize = fitted.steps[1].describe(), fitted.steps[2].describe()
    assert impute["learned"]["fill"]["x"] == pytest.approx(median)
    filled = train_rows["x"].fillna(median)
    assert standardize["learned"]["mean"]["x"] == pytest.approx(filled.mean())
    assert standardize["learned"]["mean"]["x"] < 100  # the test rows' +1000 did not reach it

    # selection: chi2 scored on the training rows; on every row, z would win
    section = spec.features["rows_v1"]  # type: ignore[index]
    on_train = FeaturePipeline.from_spec(section).fit(train_rows)
    on_all = FeaturePipeline.from_spec(section).fit(all_rows)
    assert fs.selection["scores"] == pytest.approx(on_train.selection.scores)
    assert on_all.selection.scores["z"] > on_all.selection.scores["w"]
    assert fs.selection["kept"] == on_train.selection.kept
    assert fitted.describe() == on_train.describe()
    assert fs.selection["fitted_on"] == {
        "split_id": split_id,
        "split": spec.split.model_dump(mode="json"),  # type: ignore[union-attr]
        "subset": "train",
        "rows": ROWS - TEST,
        "key": [ROW_ID],
        "label": {"name": "y", "missing": "drop", "unlabelled": 0},
    }


async def test_the_split_names_rows_by_key_and_is_restored_by_key(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(leaky_spec(tmp_path))
    fs, split_id = await trained_set(services, spec)
    (batch,) = fs.inputs
    manifest = services.metadata.splits.get_split(split_id)
    membership = read_membership(manifest, services.feature_stores())
    assert membership.column_names == [ROW_ID, "subset"]
    listed = membership.to_pandas()
    test_keys = set(listed.loc[listed["subset"] == "test", ROW_ID])
    assert test_keys == {f"{batch}:{i}" for i in range(ROWS - TEST, ROWS)}

    # another process: the stores opened afresh, the subsets found by key, not by position
    settings = services.settings
    async with open_services(settings) as again:
        restored = fitted_split(spec, fs, again.feature_stores())
        assert set(restored.test.column(ROW_ID).to_pylist()) == test_keys
        assert restored.train.num_rows == ROWS - TEST
        result = TrainingResult.restore(fs, manifest, "classification", [], again.feature_stores())
        assert result.split.test.equals(restored.test)
        offline = again.offline.read(fs.feature_set_id)
        assert offline.slice(ROWS - TEST).equals(restored.test)  # the very rows, in order


async def test_entity_and_timestamp_are_the_key_and_filtered_rows_are_in_no_subset(
    services: Services, tmp_path: Path
) -> None:
    section = {
        "entity": "shop",
        "timestamp": "at",
        "steps": [
            {"filter": {"expr": "w > -0.5"}},
            {"impute": {"columns": ["x"], "strategy": "median"}},
        ],
    }
    spec = parse_spec(leaky_spec(tmp_path, **section))
    fs, split_id = await trained_set(services, spec)
    manifest = services.metadata.splits.get_split(split_id)
    membership = read_membership(manifest, services.feature_stores())
    assert membership.column_names == ["shop", "at", "subset"]
    kept = int((skewed_rows()["w"] > -0.5).sum())
    assert kept < ROWS and membership.num_rows == kept == fs.row_count
    assert sum(manifest.sizes.values()) == kept
    table = services.offline.read(fs.feature_set_id)
    assert ROW_ID not in table.column_names
    restored = fitted_split(spec, fs, services.feature_stores())
    assert restored.train.num_rows + restored.test.num_rows == kept


async def test_training_refuses_a_set_fitted_on_every_row_or_for_another_split(
    services: Services, tmp_path: Path
) -> None:
    spec = parse_spec(leaky_spec(tmp_path))
    fs, _ = await trained_set(services, spec)
    batch = services.metadata.batches.get_batch(fs.inputs[0])
    section = spec.features["rows_v1"]  # type: ignore[index]
    stores = services.feature_stores()
    everything = prepare("rows_v1", section, {"rows": batch}, stores).feature_set
    assert everything is not None and everything.feature_set_id != fs.feature_set_id
    assert everything.selection["fitted_on"]["subset"] == "all"
    with InlineExecutor() as executor, pytest.raises(ConfigError, match="fitted on all of its"):
        train(spec, everything, stores, executor)
    other = spec.model_copy(update={"split": spec.split.model_copy(update={"test_size": 0.5})})  # type: ignore[union-attr]
    with InlineExecutor() as executor, pytest.raises(ConfigError, match="prepare it again"):
        train(other, fs, stores, executor)
    assert pa.types.is_string(services.offline.read(fs.feature_set_id).schema.field(ROW_ID).type)
