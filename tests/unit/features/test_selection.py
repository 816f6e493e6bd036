"""Feature selection on scikit-learn's bundled wine (classes) and diabetes (numbers) data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine
from sklearn.feature_selection import chi2, mutual_info_classif
from sklearn.preprocessing import MinMaxScaler

from gristmill.config.features import SelectSpec
from gristmill.errors import ConfigError, DataError
from gristmill.features.selection import keep_all, select_features, task_of


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
    with pytest.raises(ConfigError, match="categorical label"):
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


def test_task_of() -> None:
    assert task_of(pd.Series([1.5, 2.0])) == "regression"
    assert task_of(pd.Series([0, 1])) == task_of(pd.Series(["a", "b"])) == "classification"
