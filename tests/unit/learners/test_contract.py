"""One suite run over every algorithm: fit, predict, learned, store and load, refit-free.

Each case fits a real data set; the loaded model must predict exactly as the fitted one,
``learned()`` must be strict JSON, and the learner itself must be left unfitted.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from gristmill.learners import FittedLearner, learner_names, make_learner
from gristmill.learners import serialization as ser
from gristmill.learners.registry import ALGORITHMS

CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("linear_regression", "regression", {}, "diabetes"),
    ("logistic_regression", "classification", {"C": 0.05, "max_iter": 5000}, "wine"),
    ("decision_tree", "classification", {"max_depth": 4, "random_state": 0}, "wine"),
    ("decision_tree", "regression", {"max_depth": 4, "random_state": 0}, "diabetes"),
    ("random_forest", "classification", {"n_estimators": 20, "random_state": 0}, "cancer"),
    ("random_forest", "regression", {"n_estimators": 20, "random_state": 0}, "diabetes"),
    ("gradient_boosting", "classification", {"max_iter": 30, "random_state": 0}, "wine"),
    ("gradient_boosting", "regression", {"max_iter": 30, "random_state": 0}, "diabetes"),
    ("kmeans", "clustering", {"n_clusters": 3, "n_init": 3, "random_state": 0}, "wine"),
    ("arima", "forecasting", {"order": [2, 0, 0], "trend": "c"}, "sunspots"),
    ("sarimax", "forecasting", {"order": [1, 1, 0]}, "macrodata"),
    ("sklearn.neighbors:KNeighborsClassifier", "classification", {"n_neighbors": 7}, "cancer"),
    ("sklearn.neighbors.KNeighborsRegressor", "regression", {}, "diabetes"),
]


def _data(name: str, request: pytest.FixtureRequest) -> tuple[pd.DataFrame, pd.Series | None]:
    if name == "sunspots":
        series: pd.Series = request.getfixturevalue("sunspots")
        return pd.DataFrame(index=series.index), series
    if name == "macrodata":
        macro: pd.DataFrame = request.getfixturevalue("macrodata")
        return macro[["realcons"]].iloc[:180], macro["realgdp"].iloc[:180]
    frame, y = request.getfixturevalue(name)
    return frame, y


def _ids(case: tuple[str, str, dict[str, Any], str]) -> str:
    return f"{case[0]}-{case[1]}"


def test_every_built_in_name_has_a_case() -> None:
    covered = {case[0] for case in CASES}
    optional = {name for name, a in ALGORITHMS.items() if a.install}
    assert set(learner_names()) - optional <= covered


@pytest.fixture(scope="module", params=CASES, ids=[_ids(c) for c in CASES])
def fitted(request: pytest.FixtureRequest) -> tuple[FittedLearner, pd.DataFrame, str]:
    algorithm, task, params, data = request.param
    frame, y = _data(data, request)
    learner = make_learner(algorithm, params, task=task)
    before = clone(learner).get_params()
    model = learner.fit(frame, None if task == "clustering" else y)
    assert model.task == task
    assert model.algorithm == algorithm
    assert learner.get_params().keys() == before.keys()
    assert not hasattr(learner, "estimator_") and not hasattr(learner, "_results")
    return model, frame, task


def test_predicts_one_value_per_row_keeping_the_index(
    fitted: tuple[FittedLearner, pd.DataFrame, str],
) -> None:
    model, frame, _ = fitted
    rows = frame.iloc[::7]
    predicted = model.predict(rows)
    assert isinstance(predicted, pd.Series)
    assert predicted.index.equals(rows.index)
    assert predicted.notna().all()


def test_learned_is_strict_json(fitted: tuple[FittedLearner, pd.DataFrame, str]) -> None:
    model, _, _ = fitted
    learned = model.learned()
    text = json.dumps(learned, allow_nan=False)
    assert json.loads(text) == learned
    assert learned  # something was learned


def test_skops_round_trip_predicts_the_same(
    fitted: tuple[FittedLearner, pd.DataFrame, str],
) -> None:
    model, frame, task = fitted
    loaded = ser.loads(ser.dumps(model))
    assert type(loaded) is type(model)
    assert loaded.feature_names == model.feature_names
    assert loaded.learned() == model.learned()
    rows = frame.iloc[::5]
    pd.testing.assert_series_equal(loaded.predict(rows), model.predict(rows))
    if "proba" in model.capabilities:
        pd.testing.assert_frame_equal(loaded.predict_proba(rows), model.predict_proba(rows))
    if task == "forecasting":
        future = frame.iloc[:4] if frame.shape[1] else None
        np.testing.assert_array_equal(
            loaded.forecast(4, future).to_numpy(), model.forecast(4, future).to_numpy()
        )


def test_capabilities_match_the_task(fitted: tuple[FittedLearner, pd.DataFrame, str]) -> None:
    model, frame, task = fitted
    if task == "classification":
        proba = model.predict_proba(frame.iloc[:10])
        assert list(proba.columns) == model.classes
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    else:
        assert "proba" not in model.capabilities
    assert ("forecast" in model.capabilities) == (task == "forecasting")
