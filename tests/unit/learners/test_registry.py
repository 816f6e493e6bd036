"""The algorithm registry: names, tasks, hyper-parameter checks, import paths, extras."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression

from gristmill.errors import ConfigError, MissingExtraError
from gristmill.learners import algorithms_for, learner_names, make_learner
from gristmill.learners.estimators import EstimatorLearner
from gristmill.learners.forecasting import SarimaxLearner


def test_names_are_sorted_and_include_the_optional_ones() -> None:
    names = learner_names()
    assert names == sorted(names)
    expected = {
        "linear_regression", "logistic_regression", "decision_tree", "random_forest",
        "gradient_boosting", "kmeans", "arima", "sarimax", "lightgbm", "xgboost",
    }  # fmt: skip
    assert expected <= set(names)
    assert algorithms_for("clustering") == ["kmeans"]
    assert "linear_regression" not in algorithms_for("classification")


def test_unknown_algorithm_lists_the_known_ones_and_suggests() -> None:
    with pytest.raises(ConfigError) as caught:
        make_learner("random_forrest", {}, task="classification")
    message = str(caught.value)
    assert "no algorithm named 'random_forrest'" in message
    assert "did you mean 'random_forest'?" in message
    assert "kmeans" in message and "sklearn.svm:SVC" in message


def test_task_is_inferred_when_the_algorithm_has_one() -> None:
    assert make_learner("linear_regression", {}).task == "regression"
    assert make_learner("logistic_regression", {}).task == "classification"
    assert make_learner("kmeans", {}).task == "clustering"
    assert make_learner("arima", {}).task == "forecasting"


@pytest.mark.parametrize("algorithm", ["decision_tree", "random_forest", "gradient_boosting"])
def test_ambiguous_algorithms_need_a_task(algorithm: str) -> None:
    with pytest.raises(ConfigError, match=r"does classification and regression; say which"):
        make_learner(algorithm, {})
    learner = make_learner(algorithm, {}, task="regression")
    assert isinstance(learner, EstimatorLearner)
    assert type(learner.estimator).__name__.endswith("Regressor")


def test_a_task_the_algorithm_does_not_do_names_the_alternatives() -> None:
    with pytest.raises(ConfigError) as caught:
        make_learner("linear_regression", {}, task="classification")
    message = str(caught.value)
    assert "is for regression, not classification" in message
    assert "logistic_regression" in message and "random_forest" in message
    with pytest.raises(ConfigError, match="is for forecasting, not regression"):
        make_learner("arima", {}, task="regression")
    with pytest.raises(ConfigError, match="no task named 'classify'"):
        make_learner("kmeans", {}, task="classify")


def test_unknown_hyper_parameter_names_it_and_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        make_learner("random_forest", {"n_estimator": 10}, task="classification")
    message = str(caught.value)
    assert "'random_forest' has no parameter 'n_estimator'" in message
    assert "did you mean 'n_estimators'?" in message
    assert "max_depth" in message and "min_samples_leaf" in message


def test_bad_hyper_parameter_value_is_refused_before_any_data() -> None:
    with pytest.raises(ConfigError) as caught:
        make_learner("decision_tree", {"max_depth": -1}, task="classification")
    message = str(caught.value)
    assert "'decision_tree' parameter 'max_depth' is invalid" in message
    assert "range [1, inf)" in message


def test_defaults_are_merged_under_the_spec_params() -> None:
    learner = make_learner("logistic_regression", {"C": 0.5})
    assert isinstance(learner, EstimatorLearner)
    assert isinstance(learner.estimator, LogisticRegression)
    assert learner.estimator.C == 0.5
    assert learner.estimator.max_iter == 1000
    other = make_learner("logistic_regression", {"max_iter": 20})
    assert isinstance(other, EstimatorLearner)
    assert other.estimator.max_iter == 20


def test_import_path_infers_the_task_from_the_estimator() -> None:
    assert make_learner("sklearn.svm:SVC", {"C": 2.0}).task == "classification"
    assert make_learner("sklearn.svm.SVR", {}).task == "regression"
    assert make_learner("sklearn.cluster:MiniBatchKMeans", {"n_clusters": 2}).task == "clustering"
    with pytest.raises(ConfigError, match="is for classification, not regression"):
        make_learner("sklearn.svm:SVC", {}, task="regression")


def test_import_path_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"cannot import algorithm 'nosuchpkg\.models:Thing'"):
        make_learner("nosuchpkg.models:Thing", {})
    with pytest.raises(ConfigError, match=r"module 'sklearn\.svm' has no class 'SVX'"):
        make_learner("sklearn.svm:SVX", {})
    with pytest.raises(ConfigError, match=r"'sklearn\.svm:SVC' has no parameter 'kernal'"):
        make_learner("sklearn.svm:SVC", {"kernal": "rbf"})
    with pytest.raises(ConfigError, match="not a classifier, regressor or clusterer"):
        make_learner("sklearn.preprocessing:StandardScaler", {})
    with pytest.raises(ConfigError, match="no fit method"):
        make_learner("pathlib:Path", {})


def test_third_party_estimator_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gm_custom_models.py").write_text(
        textwrap.dedent(
            """
            from sklearn.base import BaseEstimator, RegressorMixin
            import numpy as np

            class MeanRegressor(RegressorMixin, BaseEstimator):
                def __init__(self, shift=0.0):
                    self.shift = shift

                def fit(self, frame, y):
                    self.mean_ = float(np.mean(y)) + self.shift
                    return self

                def predict(self, frame):
                    return np.full(len(frame), self.mean_)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    learner = make_learner("gm_custom_models:MeanRegressor", {"shift": 1.0})
    assert learner.task == "regression"
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    model = learner.fit(frame, pd.Series([1.0, 2.0, 3.0], name="y"))
    assert model.predict(frame).tolist() == [3.0, 3.0, 3.0]
    sys.modules.pop("gm_custom_models", None)


@pytest.mark.parametrize(("name", "package"), [("lightgbm", "lightgbm"), ("xgboost", "xgboost")])
def test_optional_algorithms_name_the_install_command(name: str, package: str) -> None:
    if importlib.util.find_spec(package) is not None:
        learner = make_learner(name, {}, task="classification")
        assert learner.task == "classification"
        return
    with pytest.raises(MissingExtraError) as caught:
        make_learner(name, {}, task="classification")
    assert f"needs the {package} package" in str(caught.value)
    assert f"pip install {package}" in str(caught.value)


def test_sarimax_params_are_checked() -> None:
    assert isinstance(make_learner("sarimax", {"order": [1, 1, 1]}), SarimaxLearner)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"order": [1, 1]}, "'order' must be 3 non-negative integers"),
        ({"order": [1, -1, 0]}, "'order' must be 3"),
        ({"seasonal_order": [1, 0, 0, 1]}, "season length"),
        ({"trend": "quadratic"}, "'trend' must be one of n, c, t, ct"),
        ({"maxiter": 0}, "'maxiter' must be a positive integer"),
        ({"orders": [1, 0, 0]}, "'sarimax' has no parameter 'orders' (did you mean 'order'?)"),
    ]
    for params, fragment in cases:
        with pytest.raises(ConfigError) as caught:
            make_learner("sarimax", params)
        assert fragment in str(caught.value)


def test_learners_are_sklearn_style() -> None:
    learner = make_learner("random_forest", {"n_estimators": 7}, task="regression")
    params = learner.get_params()
    assert params["algorithm"] == "random_forest" and params["task"] == "regression"
    assert isinstance(params["estimator"], RandomForestRegressor)
    assert "random_forest" in repr(learner)
    assert make_learner("arima", {"order": [2, 0, 0]}).get_params()["order"] == [2, 0, 0]


def test_an_estimator_by_path_that_scikit_learn_cannot_copy_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "gm_odd_models.py").write_text(
        textwrap.dedent(
            """
            from sklearn.base import BaseEstimator, RegressorMixin

            class Plain:
                def __init__(self, depth=1):
                    self.depth = depth

                def fit(self, frame, y):
                    return self

                def predict(self, frame):
                    return [0.0] * len(frame)

            class Clamped(RegressorMixin, BaseEstimator):
                def __init__(self, depth=1):
                    self.depth = depth + 0.5

                def fit(self, frame, y):
                    return self
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ConfigError) as info:
            make_learner("gm_odd_models:Plain", {}, task="regression")
        assert str(info.value).startswith(
            "algorithm 'gm_odd_models:Plain' is not a scikit-learn estimator: class Plain has "
            "fit but no get_params or set_params"
        )
        assert "BaseEstimator and one of ClassifierMixin, RegressorMixin" in str(info.value)
        with pytest.raises(ConfigError, match="'gm_odd_models:Clamped' cannot be copied"):
            make_learner("gm_odd_models:Clamped", {"depth": 1})
    finally:
        sys.modules.pop("gm_odd_models", None)
