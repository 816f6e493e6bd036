"""Feature selection on scikit-learn's bundled wine (classes) and diabetes (numbers) data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.feature_selection import chi2, mutual_info_classif, mutual_info_regression
from sklearn.preprocessing import MinMaxScaler

from gristmill.config.features import FeatureSetSpec, SelectSpec
from gristmill.core.tasks import TaskChoice
from gristmill.errors import ConfigError, DataError
from gristmill.features.pipeline import FeaturePipeline
from gristmill.features.selection import keep_all, scoring_task, select_features


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_wine(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


@pytest.fixture(scope="module")
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    frame = load_diabetes(as_frame=True).frame
    return frame.drop(columns="target"), frame["target"]


def spec(method: str, **options: object) -> SelectSpec:
    return SelectSpec.model_validate({"method": method, **options})


def test_chi2_scores_a_min_max_view(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, label = wine
    selection = select_features(features, label, spec("chi2", k=4))
    expected, _ = chi2(MinMaxScaler().fit_transform(features), label)
    assert list(selection.scores.values()) == pytest.approx(list(expected), rel=1e-12)
    best = list(features.columns[np.argsort(-expected)[:4]])
    assert set(selection.kept) == set(best)
    assert selection.kept == [c for c in features.columns if c in best]  # frame order
    assert "min-max" in selection.note
    assert (selection.method, selection.k, selection.task) == ("chi2", 4, "classification")


def test_chi2_needs_categories(diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    with pytest.raises(ConfigError, match="chi2' scores features against classes"):
        select_features(*diabetes, spec("chi2", k=3))


def test_mutual_info_picks_classification_or_regression(
    wine: tuple[pd.DataFrame, pd.Series], diabetes: tuple[pd.DataFrame, pd.Series]
) -> None:
    classes = select_features(*wine, spec("mutual_info", k=5))
    expected = mutual_info_classif(wine[0], wine[1], random_state=0)
    assert list(classes.scores.values()) == pytest.approx(list(expected))
    assert classes.task == "classification" and len(classes.kept) == 5
    numbers = select_features(*diabetes, spec("mutual_info", threshold=0.05))
    assert numbers.task == "regression"
    assert all(numbers.scores[c] >= 0.05 for c in numbers.kept)
    assert all(numbers.scores[c] < 0.05 for c in set(numbers.scores) - set(numbers.kept))
    again = select_features(*diabetes, spec("mutual_info", threshold=0.05))
    assert again == numbers  # seeded: the same every time


def test_variance_threshold_needs_no_label(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features = wine[0].assign(constant=1.0)
    selection = select_features(features, None, spec("variance"))
    assert "constant" not in selection.kept and len(selection.kept) == 13
    assert selection.scores["constant"] == 0.0
    top = select_features(features, None, spec("variance", k=2))
    assert top.kept == ["magnesium", "proline"]


def test_model_importance_is_seeded(diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    first = select_features(*diabetes, spec("model", k=3))
    assert first == select_features(*diabetes, spec("model", k=3))
    assert sum(first.scores.values()) == pytest.approx(1.0)
    assert "bmi" in first.kept


def test_both_k_and_threshold(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    selection = select_features(*wine, spec("model", k=2, threshold=0.01))
    assert len(selection.kept) == 2


def test_an_explicit_list(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    selection = select_features(*wine, spec("list", columns=["proline", "alcohol"]))
    assert selection.kept == ["alcohol", "proline"]
    with pytest.raises(DataError, match="'nope', which is not a feature"):
        select_features(*wine, spec("list", columns=["nope"]))


def test_label_methods_need_a_label(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    with pytest.raises(ConfigError, match="needs a label"):
        select_features(wine[0], None, spec("mutual_info", k=2))


def test_text_and_missing_values_are_named(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, label = wine
    with pytest.raises(DataError, match="feature 'kind' holds str values; encode it") as info:
        select_features(features.assign(kind="red"), label, spec("chi2", k=2))
    assert info.value.column == "kind"
    gappy = features.assign(hue=features["hue"].mask(features.index % 5 == 0))
    with pytest.raises(DataError, match="feature 'hue' has missing values; impute"):
        select_features(gappy, label, spec("mutual_info", k=2))
    assert select_features(gappy, label, spec("model", k=2)).kept  # forests take gaps


def test_unlabelled_rows_are_left_out(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, label = wine
    partly = label.astype(float).mask(label.index % 2 == 0).astype("Int64")
    assert select_features(features, partly, spec("chi2", k=3)).kept
    with pytest.raises(DataError, match="every row's label is missing"):
        select_features(features, partly.mask(partly.notna()), spec("chi2", k=3))


def test_nothing_kept_is_an_error(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    with pytest.raises(DataError, match="kept none"):
        select_features(*wine, spec("model", threshold=2.0))


def test_the_record_is_json(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    features, label = wine
    selection = select_features(features.assign(flat=0.0), label, spec("chi2", k=2))
    record = selection.to_dict()
    assert record["scores"]["flat"] is None  # chi2 of a constant column is not a number
    assert json.loads(json.dumps(record)) == record
    assert keep_all(features).kept == list(features.columns)


def test_scoring_task_follows_trainings_rule() -> None:
    assert scoring_task(pd.Series([1.5, 2.0])).task == "regression"
    assert scoring_task(pd.Series(["a", "b"])).task == "classification"
    assert scoring_task(pd.Series([0, 1, 1, 0])).task == "classification"
    assert scoring_task(pd.Series(range(100))).task == "regression"  # as training infers
    forecast = TaskChoice("forecasting", "inferred: algorithm 'arima' forecasts")
    assert scoring_task(pd.Series([0, 1, 1, 0]), forecast).task == "regression"


@pytest.fixture(scope="module")
def prices(diabetes: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    """An integer label with 214 distinct values in 442 rows: a quantity, not classes."""
    features, label = diabetes
    return features, (label * 100).astype("int64").rename("price")


def test_an_integer_quantity_is_scored_as_a_regression(
    prices: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, label = prices
    selection = select_features(features, label, spec("mutual_info", k=3))
    expected = mutual_info_regression(features, label, random_state=0)
    assert list(selection.scores.values()) == pytest.approx(list(expected))
    as_classes = mutual_info_classif(features, label, random_state=0)
    assert list(selection.scores.values()) != pytest.approx(list(as_classes))
    assert (selection.task, selection.note) == ("regression", "mutual_info_regression, seed 0")
    assert "integer label 'price' with 214 distinct values" in str(selection.task_reason)
    forest = select_features(features, label, spec("model", k=3))
    assert forest.task == "regression" and forest.note.startswith("RandomForestRegressor")


def test_train_task_classification_flips_the_scorer(
    prices: tuple[pd.DataFrame, pd.Series],
) -> None:
    features, label = prices
    given = TaskChoice("classification", "set by train.task")
    selection = select_features(features, label, spec("mutual_info", k=3), task=given)
    expected = mutual_info_classif(features, label, random_state=0)
    assert list(selection.scores.values()) == pytest.approx(list(expected))
    assert (selection.task, selection.task_reason) == ("classification", "set by train.task")
    assert select_features(features, label, spec("chi2", k=3), task=given).task == (
        "classification"
    )


def test_chi2_on_a_regression_names_train_task(prices: tuple[pd.DataFrame, pd.Series]) -> None:
    features, label = prices
    with pytest.raises(ConfigError, match=r"task is regression \(inferred: integer.*train\.task"):
        select_features(features, label, spec("chi2", k=3))
    section = FeatureSetSpec.model_validate(
        {"from": ["sales"], "label": "price", "select": {"method": "chi2", "k": 3}}
    )
    pipeline = FeaturePipeline.from_spec(section, where="features.sales_v1")
    with pytest.raises(ConfigError, match=r"^features\.sales_v1\.select: .*train\.task"):
        pipeline.fit(features.assign(price=label))
    given = TaskChoice("classification", "set by train.task")
    assert pipeline.fit(features.assign(price=label), task=given).selection.task == (
        "classification"
    )
