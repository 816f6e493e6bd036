"""The feature pipeline: from the spec, fit, batch and one-row transform, describe, store.

Also the fitted pipeline's serialization (skops, trusted types only) and feature set ids.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import skops.io as sio
from palmerpenguins import load_penguins
from sklearn.base import BaseEstimator, TransformerMixin

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.features import serialization
from gristmill.features.identity import definition_digest, feature_set_id
from gristmill.features.pipeline import FeaturePipeline, FittedFeaturePipeline
from gristmill.features.steps import CustomStep

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
STEPS: list[dict[str, Any]] = [
    {"impute": {"columns": NUMBERS, "strategy": "median"}},
    {"impute": {"columns": ["sex"], "strategy": "most_frequent"}},
    {"filter": {"expr": "body_mass_g >= 3000"}},
    {"derive": {"name": "bill_ratio", "expr": "bill_length_mm / bill_depth_mm"}},
    {"date_parts": {"columns": ["seen_at"], "parts": ["month", "hour"], "keep": True}},
    {"one_hot": {"columns": ["island", "sex"]}},
    {"standardize": {"columns": [*NUMBERS, "bill_ratio"]}},
]


def make_spec(**overrides: Any) -> FeatureSetSpec:
    section = {
        "from": ["penguins"],
        "entity": "penguin_id",
        "timestamp": "seen_at",
        "label": "species",
        "steps": STEPS,
        **overrides,
    }
    return FeatureSetSpec.model_validate(section)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = load_penguins()
    return frame.assign(
        penguin_id=np.arange(100, 100 + len(frame)),
        seen_at=pd.date_range("2024-01-01", periods=len(frame), freq="5h"),
    )


@pytest.fixture(scope="module")
def fitted(penguins: pd.DataFrame) -> FittedFeaturePipeline:
    return FeaturePipeline.from_spec(make_spec()).fit(penguins)


def same(a: Any, b: Any) -> bool:
    return a == b or (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    )


def test_from_spec_makes_the_steps_in_order() -> None:
    pipeline = FeaturePipeline.from_spec(make_spec())
    assert [s.step_name for s in pipeline.steps] == [next(iter(s)) for s in STEPS]
    assert (pipeline.label, pipeline.entity, pipeline.timestamp) == (
        "species",
        "penguin_id",
        "seen_at",
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        pipeline.label = "island"  # type: ignore[misc]


def test_a_bad_step_in_the_spec_names_its_position() -> None:
    steps = [STEPS[0], {"standardise": {"columns": ["year"]}}]
    with pytest.raises(ConfigError, match=r"steps\[1\] \(standardise\): no feature step named"):
        FeaturePipeline.from_spec(make_spec(steps=steps))


def test_selection_against_the_label_needs_one() -> None:
    with pytest.raises(ConfigError, match="set 'label'"):
        FeaturePipeline.from_spec(make_spec(label=None, select={"method": "chi2", "k": 2}))


def test_fit_leaves_the_templates_unfitted(penguins: pd.DataFrame) -> None:
    pipeline = FeaturePipeline.from_spec(make_spec())
    fitted = pipeline.fit(penguins)
    assert all(not hasattr(step, "fitted_") for step in pipeline.steps)
    assert all(getattr(step, "fitted_", False) for step in fitted.steps)


def test_transform_gives_roles_then_features_then_label(
    penguins: pd.DataFrame, fitted: FittedFeaturePipeline
) -> None:
    out = fitted.transform(penguins)
    assert list(out.columns) == ["penguin_id", "seen_at", *fitted.feature_names, "species"]
    assert "island_Dream" in fitted.feature_names and "seen_at_hour" in fitted.feature_names
    assert not {"penguin_id", "seen_at", "species", "island"} & set(fitted.feature_names)
    kept = penguins["body_mass_g"].fillna(4050.0) >= 3000
    assert list(out.index) == list(penguins.index[kept])
    pd.testing.assert_series_equal(out["seen_at"], penguins["seen_at"][kept])
    pd.testing.assert_series_equal(out["penguin_id"], penguins["penguin_id"][kept])
    assert fitted.rows == (344, int(kept.sum()))


def test_the_caller_index_is_kept(penguins: pd.DataFrame, fitted: FittedFeaturePipeline) -> None:
    frame = penguins.head(5).set_axis(list("abcde"))
    assert list(fitted.transform(frame).index) == list("abcde")
    unlabelled = fitted.transform(frame.drop(columns="species"))
    assert "species" not in unlabelled.columns


def test_one_row_equals_its_batch_row(
    penguins: pd.DataFrame, fitted: FittedFeaturePipeline
) -> None:
    batch = fitted.transform(penguins)
    for index, record in zip(penguins.index, penguins.to_dict(orient="records"), strict=True):
        request = {
            k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()
        }
        one = fitted.transform_one(request)
        if index not in batch.index:
            assert one is None  # the filter rejected it, in both paths
            continue
        assert one is not None
        row = batch.loc[index].drop("species").to_dict()  # the label is no input to score
        assert list(one) == list(row)
        assert all(same(one[k], row[k]) for k in row), index


def test_one_row_never_carries_the_label(
    penguins: pd.DataFrame, fitted: FittedFeaturePipeline
) -> None:
    record = penguins.iloc[0].to_dict()
    assert fitted.label == "species" and record["species"] == "Adelie"
    one = fitted.transform_one(record)
    assert one is not None and "species" not in one
    assert list(one) == ["penguin_id", "seen_at", *fitted.feature_names]
    unlabelled = {k: v for k, v in record.items() if k != "species"}
    assert fitted.transform_one(unlabelled) == one
    assert "species" in fitted.transform(penguins.head(1)).columns  # a batch keeps it


def test_a_filtered_row_is_none(fitted: FittedFeaturePipeline, penguins: pd.DataFrame) -> None:
    light = penguins.iloc[0].to_dict() | {"body_mass_g": 2000.0}
    assert fitted.transform_one(light) is None


def test_one_row_with_unseen_and_missing_values(
    penguins: pd.DataFrame, fitted: FittedFeaturePipeline
) -> None:
    record = penguins.iloc[0].to_dict() | {"island": "Atlantis", "sex": None, "bill_depth_mm": None}
    one = fitted.transform_one(record)
    assert one is not None
    assert one["island_Biscoe"] == one["island_Dream"] == one["island_Torgersen"] == 0.0
    assert one["sex_male"] == 1.0  # imputed with the most frequent
    assert not math.isnan(one["bill_depth_mm"])


def test_transform_needs_every_fitted_column(
    penguins: pd.DataFrame, fitted: FittedFeaturePipeline
) -> None:
    with pytest.raises(DataError, match=r"needs column 'island' .*the columns it was fitted on"):
        fitted.transform(penguins.drop(columns="island"))
    with pytest.raises(DataError, match="column 'body_mass_g' holds a value that is not float64"):
        fitted.transform_one(penguins.iloc[0].to_dict() | {"body_mass_g": "heavy"})


def test_a_column_dropped_before_any_step_reads_it_may_be_left_out(
    penguins: pd.DataFrame,
) -> None:
    steps = [
        {"drop": {"columns": ["year"]}},
        {"impute": {"columns": NUMBERS, "strategy": "median"}},
        {"one_hot": {"columns": ["island", "sex"]}},
    ]
    fitted = FeaturePipeline.from_spec(make_spec(steps=steps)).fit(penguins)
    assert fitted.dropped_inputs == ["year"]
    record = penguins.iloc[0].drop("year").to_dict()
    one = fitted.transform_one(record)
    assert one == fitted.transform_one(penguins.iloc[0].to_dict())
    # a step that may read every column comes first: nothing is optional after it
    steps = [{"filter": {"expr": "year > 2000"}}, {"drop": {"columns": ["year"]}}]
    fitted = FeaturePipeline.from_spec(make_spec(steps=steps)).fit(penguins)
    assert fitted.dropped_inputs == []
    with pytest.raises(DataError, match="needs column 'year'"):
        fitted.transform_one(record)


def test_empty_input(penguins: pd.DataFrame, fitted: FittedFeaturePipeline) -> None:
    with pytest.raises(EmptyInputError, match="no rows to fit"):
        FeaturePipeline.from_spec(make_spec()).fit(penguins.head(0))
    with pytest.raises(EmptyInputError, match="no rows to transform"):
        fitted.transform(penguins.head(0))


def test_a_missing_role_column_is_named(penguins: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"needs column 'penguin_id' .*entity"):
        FeaturePipeline.from_spec(make_spec()).fit(penguins.drop(columns="penguin_id"))


def test_a_filter_that_keeps_nothing(penguins: pd.DataFrame) -> None:
    spec = make_spec(steps=[{"filter": {"expr": "year > 3000"}}])
    with pytest.raises(DataError, match=r"steps\[0\] \(filter\) left no row"):
        FeaturePipeline.from_spec(spec).fit(penguins)


def test_selection_uses_the_label(penguins: pd.DataFrame) -> None:
    spec = make_spec(select={"method": "mutual_info", "k": 4})
    fitted = FeaturePipeline.from_spec(spec).fit(penguins)
    assert len(fitted.feature_names) == 4
    assert fitted.selection.task == "classification"
    assert set(fitted.selection.scores) > set(fitted.feature_names)
    assert list(fitted.transform(penguins).columns) == [
        "penguin_id",
        "seen_at",
        *fitted.feature_names,
        "species",
    ]


def test_describe_is_json_and_says_what_was_learned(fitted: FittedFeaturePipeline) -> None:
    description = json.loads(json.dumps(fitted.describe()))
    steps = description["steps"]
    assert steps[0]["learned"]["fill"]["body_mass_g"] == 4050.0
    assert steps[2]["learned"]["rows_in"] == 344
    assert steps[5]["learned"]["categories"]["island"] == ["Biscoe", "Dream", "Torgersen"]
    assert set(steps[6]["learned"]["mean"]) == {*NUMBERS, "bill_ratio"}
    assert description["features"] == fitted.feature_names
    assert description["selection"]["method"] == "all"
    assert description["inputs"]["year"] == "int64"


def test_arrow_in_and_out(penguins: pd.DataFrame, fitted: FittedFeaturePipeline) -> None:
    table = pa.Table.from_pandas(penguins, preserve_index=False)
    out = fitted.transform_table(table)
    assert isinstance(out, pa.Table)
    expected = fitted.transform(penguins).reset_index(drop=True)
    pd.testing.assert_frame_equal(out.to_pandas(), expected)
    refit = FeaturePipeline.from_spec(make_spec()).fit_table(table)
    assert refit.feature_names == fitted.feature_names


# -- serialization ------------------------------------------------------------------------


def test_skops_round_trip(penguins: pd.DataFrame, fitted: FittedFeaturePipeline) -> None:
    loaded = serialization.loads(serialization.dumps(fitted))
    pd.testing.assert_frame_equal(loaded.transform(penguins), fitted.transform(penguins))
    assert loaded.describe() == fitted.describe()


class Doubler(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """A transformer from a module gristmill does not trust."""

    def fit(self, frame: pd.DataFrame, y: object = None) -> Doubler:
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame * 2


def test_an_untrusted_type_is_refused(penguins: pd.DataFrame) -> None:
    step = CustomStep(path=f"{__name__}:Doubler", estimator=Doubler(), columns=["year"])
    fitted = FeaturePipeline(steps=(step,)).fit(penguins)
    data = serialization.dumps(fitted)
    with pytest.raises(DataError, match=rf"untrusted types: {__name__}\.Doubler"):
        serialization.loads(data)
    loaded = serialization.loads(data, also_trust=[__name__])
    assert loaded.transform(penguins.head(1))["year"].iloc[0] == 2 * penguins["year"].iloc[0]


def test_a_dangerous_function_is_refused() -> None:
    with pytest.raises(DataError, match=r"untrusted types: .*system"):
        serialization.loads(sio.dumps({"run": os.system}))


def test_not_a_pipeline_or_not_skops(fitted: FittedFeaturePipeline) -> None:
    with pytest.raises(DataError, match="hold a dict, not a fitted feature pipeline"):
        serialization.loads(sio.dumps({"a": 1}))
    with pytest.raises(DataError, match="not a stored feature pipeline"):
        serialization.loads(b"\x80\x04 definitely not a skops file")


# -- identity -----------------------------------------------------------------------------


def test_feature_set_ids_follow_the_definition_and_the_inputs() -> None:
    spec = make_spec()
    first = feature_set_id("penguins_v1", spec, ["b2", "b1"])
    assert first.startswith("fs_") and len(first) == 27
    assert feature_set_id("penguins_v1", make_spec(), ["b1", "b2"]) == first
    changed_option = [STEPS[0], {"impute": {"columns": ["sex"], "strategy": "constant"}}]
    others = {
        feature_set_id("penguins_v2", spec, ["b1", "b2"]),
        feature_set_id("penguins_v1", spec, ["b1", "b3"]),
        feature_set_id("penguins_v1", spec, ["b1"]),
        feature_set_id("penguins_v1", make_spec(steps=changed_option), ["b1", "b2"]),
        feature_set_id("penguins_v1", make_spec(steps=STEPS[:-1]), ["b1", "b2"]),
        feature_set_id("penguins_v1", make_spec(select={"method": "variance"}), ["b1", "b2"]),
    }
    assert first not in others and len(others) == 6
    assert definition_digest(spec) == definition_digest(make_spec())
    assert definition_digest(spec).startswith("sha256:")


def test_rows_without_a_label_are_fitted_on_by_no_step() -> None:
    spec = FeatureSetSpec.model_validate(
        {
            "from": ["s"],
            "label": "y",
            "steps": [
                {"impute": {"columns": ["x"], "strategy": "mean"}},
                {"standardize": {"columns": ["z"]}},
            ],
        }
    )
    frame = pd.DataFrame(
        {
            "x": [1.0, 3.0, None, 1000.0, 2000.0],
            "z": [0.0, 2.0, 4.0, 500.0, -500.0],
            "y": [0, 1, 1, None, None],  # the last two have no label
        }
    )
    fitted = FeaturePipeline.from_spec(spec).fit(frame)
    learned = [step["learned"] for step in fitted.describe()["steps"]]
    # before: the mean 751 and the scaler's mean 1.2 were learned from every row
    assert learned[0]["fill"] == {"x": 2.0}
    assert learned[1]["mean"] == {"z": 2.0}
    assert fitted.rows == (5, 3)
    out = fitted.transform(frame)  # every row is still computed
    assert len(out) == 5 and out["x"].tolist()[2] == 2.0


def test_a_label_filled_by_a_series_step_keeps_its_rows_in_the_fit() -> None:
    spec = FeatureSetSpec.model_validate(
        {
            "from": ["s"],
            "label": "y",
            "steps": [
                {"fill_gaps": {"columns": ["y"], "method": "ffill"}},
                {"impute": {"columns": ["x"], "strategy": "mean"}},
            ],
        }
    )
    frame = pd.DataFrame({"x": [1.0, 3.0, 5.0, None], "y": [None, 1.0, None, 2.0]})
    fitted = FeaturePipeline.from_spec(spec).fit(frame)
    # the first row has no label even after the fill; the third was filled: it counts
    assert fitted.describe()["steps"][1]["learned"]["fill"] == {"x": 4.0}
    with pytest.raises(DataError, match="none of the 2 rows has a label 'y'"):
        FeaturePipeline.from_spec(spec).fit(frame.head(2).assign(y=[None, None]))
