"""scikit-learn-backed learners on real data: what they learn, predict, and refuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.learners import make_learner, serialization
from gristmill.learners.estimators import EstimatorLearner

from .conftest import PENGUIN_NUMBERS


def _standardized(frame: pd.DataFrame) -> pd.DataFrame:
    return (frame - frame.mean()) / frame.std()


def test_linear_regression_learns_sklearns_coefficients_by_feature_name(
    diabetes: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, y = diabetes
    learned = make_learner("linear_regression", {}).fit(frame, y).learned()
    reference = LinearRegression().fit(frame, y)
    assert list(learned["coefficients"]) == list(frame.columns)
    for name, value in zip(frame.columns, reference.coef_, strict=True):
        assert learned["coefficients"][name] == pytest.approx(value)
    assert learned["intercept"] == pytest.approx(reference.intercept_)
    assert learned["features"] == list(frame.columns)
    assert learned["estimator"] == "sklearn.linear_model._base.LinearRegression"


def test_logistic_regression_coefficients_per_class_and_probabilities(
    penguins: pd.DataFrame,
) -> None:
    frame, y = _standardized(penguins[PENGUIN_NUMBERS]), penguins["species"]
    model = make_learner("logistic_regression", {"C": 0.1}).fit(frame, y)
    reference = LogisticRegression(C=0.1, max_iter=1000).fit(frame, y)
    assert model.classes == ["Adelie", "Chinstrap", "Gentoo"]
    learned = model.learned()
    assert set(learned["coefficients"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert learned["coefficients"]["Gentoo"]["flipper_length_mm"] == pytest.approx(
        reference.coef_[2, 2], rel=1e-6
    )
    assert learned["intercept"]["Chinstrap"] == pytest.approx(reference.intercept_[1], rel=1e-6)
    assert isinstance(learned["n_iter"], list)
    proba = model.predict_proba(frame.iloc[:20])
    assert list(proba.columns) == ["Adelie", "Chinstrap", "Gentoo"]
    np.testing.assert_allclose(
        proba.to_numpy(), reference.predict_proba(frame.iloc[:20]), rtol=1e-6
    )
    assert (model.predict(frame) == reference.predict(frame)).all()


def test_binary_logistic_has_one_coefficient_per_feature(
    cancer: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, y = cancer
    frame = frame.iloc[:, :5]
    learned = make_learner("logistic_regression", {"max_iter": 5000}).fit(frame, y).learned()
    assert set(learned["coefficients"]) == set(frame.columns)
    assert isinstance(learned["intercept"], float)
    assert learned["classes"] == [0, 1]


def test_forest_importances_are_sorted_and_sum_to_one(
    cancer: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, y = cancer
    params = {"n_estimators": 25, "max_depth": 3, "random_state": 1}
    learned = make_learner("random_forest", params, task="classification").fit(frame, y).learned()
    values = list(learned["feature_importances"].values())
    assert sum(values) == pytest.approx(1.0)
    assert values == sorted(values, reverse=True)
    assert set(learned["feature_importances"]) == set(frame.columns)
    assert learned["n_estimators"] == 25
    assert 1 <= learned["mean_tree_depth"] <= 3


def test_decision_tree_reports_its_shape(diabetes: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, y = diabetes
    params = {"max_depth": 3, "random_state": 0}
    learned = make_learner("decision_tree", params, task="regression").fit(frame, y).learned()
    assert learned["tree"]["depth"] == 3
    assert learned["tree"]["leaves"] <= 8
    assert learned["params"]["max_depth"] == 3


def test_kmeans_centers_by_feature(wine: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, _ = wine
    params = {"n_clusters": 3, "n_init": 4, "random_state": 0}
    model = make_learner("kmeans", params).fit(frame, None)
    reference = KMeans(**params).fit(frame)
    learned = model.learned()
    assert len(learned["cluster_centers"]) == 3
    assert learned["cluster_centers"][1]["alcohol"] == pytest.approx(
        reference.cluster_centers_[1, 0]
    )
    assert learned["inertia"] == pytest.approx(reference.inertia_)
    assert (model.predict(frame).to_numpy() == reference.predict(frame)).all()
    with pytest.raises(ConfigError, match="clustering model; it has no classes"):
        _ = model.classes
    with pytest.raises(ConfigError, match="gives no class probabilities"):
        model.predict_proba(frame)
    with pytest.raises(ConfigError, match="cannot forecast"):
        model.forecast(3)


def test_a_label_with_one_class_is_refused(penguins: pd.DataFrame) -> None:
    adelie = penguins[penguins["species"] == "Adelie"]
    learner = make_learner("random_forest", {}, task="classification")
    with pytest.raises(DataError) as caught:
        learner.fit(adelie[PENGUIN_NUMBERS], adelie["species"])
    assert str(caught.value) == (
        "label 'species' has one class ('Adelie'); a classifier needs at least two"
    )
    assert caught.value.column == "species"


def test_a_numeric_class_is_shown_as_a_plain_number(cancer: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, y = cancer
    ones = y[y == 1]
    with pytest.raises(DataError) as caught:
        make_learner("logistic_regression", {}).fit(frame.loc[ones.index], ones)
    assert "has one class (1);" in str(caught.value)


def test_text_feature_is_named(penguins: pd.DataFrame) -> None:
    frame = penguins[[*PENGUIN_NUMBERS, "island"]]
    with pytest.raises(DataError) as caught:
        make_learner("logistic_regression", {}).fit(frame, penguins["species"])
    assert "feature 'island' is not numeric" in str(caught.value)
    assert "one_hot" in str(caught.value)
    assert caught.value.column == "island"


def test_imported_estimator_text_column_is_named(penguins: pd.DataFrame) -> None:
    frame = penguins[["bill_length_mm", "sex"]]
    with pytest.raises(DataError) as caught:
        make_learner("sklearn.svm:SVC", {}).fit(frame, penguins["species"])
    assert "feature(s) sex are not numeric" in str(caught.value)


def test_missing_values_name_the_columns() -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    y = pd.Series([1.0, 2.0, 3.0, 4.0], name="y")
    with pytest.raises(DataError) as caught:
        make_learner("linear_regression", {}).fit(frame, y)
    assert "feature(s) with some: a" in str(caught.value)
    # Gradient boosting takes missing values as they are.
    model = make_learner("gradient_boosting", {"max_iter": 5}, task="regression").fit(frame, y)
    assert len(model.predict(frame)) == 4


def test_regression_label_must_be_numeric_and_complete(penguins: pd.DataFrame) -> None:
    frame = penguins[PENGUIN_NUMBERS]
    with pytest.raises(DataError, match=r"label 'species' is .*regression needs numbers"):
        make_learner("linear_regression", {}).fit(frame, penguins["species"])
    y = penguins["body_mass_g"].astype(float).copy()
    y.iloc[[3, 5]] = np.nan
    with pytest.raises(DataError, match="label 'body_mass_g' has 2 missing value"):
        make_learner("linear_regression", {}).fit(frame.drop(columns="body_mass_g"), y)
    with pytest.raises(DataError, match="needs a label"):
        make_learner("linear_regression", {}).fit(frame, None)
    with pytest.raises(EmptyInputError):
        make_learner("linear_regression", {}).fit(frame.iloc[:0], y.iloc[:0])


def test_prediction_needs_the_fitted_features_in_any_order(penguins: pd.DataFrame) -> None:
    frame, y = penguins[PENGUIN_NUMBERS], penguins["species"]
    model = make_learner("decision_tree", {"random_state": 0}, task="classification").fit(frame, y)
    shuffled = frame[list(reversed(PENGUIN_NUMBERS))].assign(extra=1.0)
    pd.testing.assert_series_equal(model.predict(shuffled), model.predict(frame))
    assert model.predict(frame).name == "species"
    with pytest.raises(DataError, match="missing here: body_mass_g"):
        model.predict(frame.drop(columns="body_mass_g"))


def test_gradient_boosting_takes_category_columns(penguins: pd.DataFrame) -> None:
    frame = penguins[PENGUIN_NUMBERS].assign(island=penguins["island"].astype("category"))
    y = penguins["species"]
    params = {"max_iter": 20, "random_state": 0}
    model = make_learner("gradient_boosting", params, task="classification").fit(frame, y)
    reference = HistGradientBoostingClassifier(**params).fit(frame, y)
    assert (model.predict(frame).to_numpy() == reference.predict(frame)).all()
    with pytest.raises(DataError, match="feature 'island' is not numeric"):
        make_learner("random_forest", {}, task="classification").fit(frame, y)


def test_encoded_labels_round_trip(penguins: pd.DataFrame) -> None:
    # XGBoost wants classes 0..n-1: the same path, exercised with a scikit-learn classifier.
    frame, y = _standardized(penguins[PENGUIN_NUMBERS]), penguins["species"]
    learner = EstimatorLearner(
        "logistic_regression", LogisticRegression(), "classification", encode_labels=True
    )
    model = learner.fit(frame, y)
    assert model.classes == ["Adelie", "Chinstrap", "Gentoo"]
    reference = LogisticRegression().fit(frame, y)
    assert (model.predict(frame).to_numpy() == reference.predict(frame)).all()
    assert list(model.predict_proba(frame.iloc[:3]).columns) == model.classes
    loaded = serialization.loads(serialization.dumps(model))
    pd.testing.assert_series_equal(loaded.predict(frame), model.predict(frame))


def test_combination_refused_in_fit_names_the_parameters(penguins: pd.DataFrame) -> None:
    learner = make_learner(
        "logistic_regression", {"solver": "lbfgs", "l1_ratio": 0.5}, task="classification"
    )
    with pytest.raises(ConfigError, match=r"'logistic_regression' cannot be fitted with its param"):
        learner.fit(penguins[PENGUIN_NUMBERS], penguins["species"])
