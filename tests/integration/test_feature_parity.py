"""Offline/online parity: a batch ``transform`` and one request at a time agree on every row.

The pipeline is fitted, stored as skops bytes in the artifact store, loaded back, and each
row is sent to the loaded pipeline as a JSON request (missing values as null, timestamps as
text). The serving rows differ from the training rows: unseen categories, values missing
where training had none, rows a filter rejects. Features must be equal exactly: the same
fitted objects compute them with elementwise arithmetic, so no tolerance is needed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_diabetes, load_wine

from gristmill.backends.fsspec import FsspecArtifactStore
from gristmill.config.features import FeatureSetSpec
from gristmill.features import serialization
from gristmill.features.pipeline import FeaturePipeline, FittedFeaturePipeline

PENGUIN_NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins_case() -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    train = load_penguins()
    train = train.assign(
        penguin_id=[f"p{i:03d}" for i in range(len(train))],
        seen_at=pd.date_range("2024-01-01", periods=len(train), freq="7h"),
    )
    serve = train.copy()
    serve.loc[::7, "island"] = "Atlantis"  # a category never seen at fit
    serve.loc[::5, "sex"] = np.nan
    serve.loc[::11, "year"] = np.nan  # an int column at fit, now with gaps
    serve.loc[::13, "body_mass_g"] = 2500.0  # rejected by the filter
    section = {
        "from": ["penguins"],
        "entity": "penguin_id",
        "timestamp": "seen_at",
        "label": "species",
        "steps": [
            {"impute": {"columns": PENGUIN_NUMBERS, "strategy": "median"}},
            {"filter": {"expr": "body_mass_g > 2700"}},
            {"derive": {"name": "bill_ratio", "expr": "bill_length_mm / bill_depth_mm"}},
            {"date_parts": {"columns": ["seen_at"], "parts": ["month", "weekday", "hour"],
                            "keep": True}},
            {"one_hot": {"columns": ["island", "sex"]}},
            {"bucketize": {"columns": ["flipper_length_mm"], "bins": 4}},
            {"power": {"columns": ["bill_ratio", "body_mass_g"]}},
            {"standardize": {"columns": ["bill_length_mm", "bill_depth_mm"]}},
        ],
        "select": {"method": "mutual_info", "k": 10},
    }  # fmt: skip
    return section, train, serve


def wine_case() -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    frame = load_wine(as_frame=True).frame
    rng = np.random.default_rng(7)
    for column in ("alcohol", "magnesium", "hue", "proline"):
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    grade = pd.cut(frame["color_intensity"], [0, 3, 6, 20], labels=["pale", "mid", "deep"])
    frame["grade"] = grade.astype(str).where(rng.random(len(frame)) > 0.1)
    frame["target"] = frame["target"].map({0: "a", 1: "b", 2: "c"})
    serve = frame.copy()
    serve.loc[::9, "grade"] = "opaque"
    serve.loc[::4, "ash"] = np.nan  # no gaps at fit
    section = {
        "from": ["wine"],
        "label": "target",
        "steps": [
            {"impute": {"columns": ["alcohol", "magnesium", "hue", "proline", "ash"]}},
            {"impute": {"columns": ["grade"], "strategy": "constant", "fill_value": "none"}},
            {"one_hot": {"columns": ["grade"]}},
            {"log": {"columns": ["proline"]}},
            {"power": {"columns": ["magnesium"], "method": "box-cox"}},
            {"scale": {"columns": ["malic_acid", "alcalinity_of_ash"], "method": "minmax"}},
            {"bucketize": {"columns": ["color_intensity"], "bins": 5, "strategy": "quantile"}},
            {"derive": {"name": "ratio", "expr": "`od280/od315_of_diluted_wines` / hue"}},
        ],
        "select": {"method": "chi2", "k": 8},
    }
    return section, frame, serve


def diabetes_case() -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    frame = load_diabetes(as_frame=True).frame
    frame["sex"] = np.where(frame["sex"] > 0, "M", "F")
    frame["note"] = [f"visit {i % 4} bp {bp:.3f} BMI {b:.2f}!" for i, (bp, b) in
                     enumerate(zip(frame["bp"], frame["bmi"], strict=True))]  # fmt: skip
    frame.loc[::15, ["bmi", "bp"]] = np.nan
    serve = frame.copy()
    serve.loc[::6, "sex"] = "X"
    serve.loc[::8, "note"] = None
    serve.loc[::10, "note"] = "entirely new words here"
    section = {
        "from": ["diabetes"],
        "label": "target",
        "steps": [
            {"impute": {"columns": ["bmi", "bp"], "strategy": "mean"}},
            {"ordinal": {"columns": ["sex"]}},
            {"text_stats": {"columns": ["note"], "stats": ["length", "digits", "upper"],
                            "keep": True}},
            {"tfidf": {"columns": ["note"], "max_features": 6}},
            {"scale": {"columns": ["s1", "s2", "s3", "s4", "s5", "s6"], "method": "robust"}},
            {"filter": {"expr": "age > -0.09"}},
        ],
        "select": {"method": "model", "k": 8},
    }  # fmt: skip
    return section, frame, serve


def stored_and_loaded(fitted: FittedFeaturePipeline, root: Path) -> FittedFeaturePipeline:
    store = FsspecArtifactStore(str(root)).open()
    ref = store.put(
        serialization.dumps(fitted), kind="feature-pipeline", media_type=serialization.MEDIA_TYPE
    )
    return serialization.loads(FsspecArtifactStore(str(root)).get(ref))


def as_request(record: dict[str, Any]) -> dict[str, Any]:
    """A row as a client sends it: JSON, missing values null, timestamps as text."""
    cleaned = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
    request: dict[str, Any] = json.loads(json.dumps(cleaned, default=str))
    return request


def identical(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


@pytest.mark.parametrize("case", [penguins_case, wine_case, diabetes_case])
def test_batch_and_one_request_at_a_time_agree(case: Any, tmp_path: Path) -> None:
    section, train, serve = case()
    fitted = FeaturePipeline.from_spec(FeatureSetSpec.model_validate(section)).fit(train)
    online = stored_and_loaded(fitted, tmp_path / "artifacts")

    offline = fitted.transform(serve)
    assert len(offline) > 0 and len(fitted.feature_names) > 0
    rejected = 0
    for index, record in zip(serve.index, serve.to_dict(orient="records"), strict=True):
        one = online.transform_one(as_request(record))
        if index not in offline.index:
            assert one is None, f"row {index}: rejected offline, answered online"
            rejected += 1
            continue
        assert one is not None, f"row {index}: answered offline, rejected online"
        row = offline.loc[[index]].to_dict(orient="records")[0]
        row.pop(str(fitted.label), None)  # a request's features never carry the label
        assert list(one) == list(row)
        differing = {k: (row[k], one[k]) for k in row if not identical(row[k], one[k])}
        assert not differing, f"row {index}: {differing}"
    assert rejected == len(serve) - len(offline)
    if any("filter" in step for step in section["steps"]):
        assert rejected > 0  # the case exercises rows a filter drops
