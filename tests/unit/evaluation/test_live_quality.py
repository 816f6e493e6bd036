"""Live quality figures against scikit-learn's own metrics on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from gristmill.evaluation.live_quality import measure, metric_names


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def test_binary_figures_are_scikit_learns_with_the_second_class_positive(
    rng: np.random.Generator,
) -> None:
    # classes as the version lists them: "10" before "2", not in text order
    classes = ["10", "2"]
    p2 = rng.uniform(size=300)
    predicted = np.where(p2 > 0.5, "2", "10")
    actual = np.where(rng.uniform(size=300) < p2, 2, 10)  # numbers: compared as text
    proba = [[1 - p, p] for p in p2]
    measured = measure("classification", classes, list(predicted), proba, actual.tolist())
    truth = actual.astype(str)
    assert measured.rows == 300 and measured.unusable == 0
    assert measured.metrics["accuracy"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert measured.metrics["f1"] == pytest.approx(skm.f1_score(truth, predicted, pos_label="2"))
    assert measured.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(truth == "2", p2))


def test_multiclass_figures_are_macro_means(rng: np.random.Generator) -> None:
    classes = ["a", "b", "c"]
    proba = rng.dirichlet([1, 1, 1], size=400)
    predicted = np.array(classes)[proba.argmax(axis=1)]
    actual = np.array([rng.choice(classes, p=p) for p in proba])
    measured = measure("classification", classes, list(predicted), proba.tolist(), list(actual))
    assert measured.metrics["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert measured.metrics["f1"] == pytest.approx(
        skm.f1_score(actual, predicted, average="macro", labels=classes)
    )
    assert measured.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(actual, proba, multi_class="ovr", labels=classes)
    )


def test_multiclass_f1_averages_the_classes_the_window_holds() -> None:
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    proba = [[0.8, 0.1, 0.1]]
    one = measure("classification", classes, ["Adelie"], proba, ["Adelie"])
    assert (one.rows, one.metrics["f1"], one.metrics["accuracy"]) == (1, 1.0, 1.0)
    predicted, actual = ["Adelie", "Gentoo", "Adelie"], ["Adelie", "Gentoo", "Gentoo"]
    few = measure("classification", classes, predicted, proba * 3, actual)
    assert few.metrics["f1"] == pytest.approx(skm.f1_score(actual, predicted, average="macro"))
    assert few.metrics["f1"] == pytest.approx((2 / 3 + 2 / 3) / 2)  # Chinstrap left out


def test_unknown_classes_are_unusable_and_a_missing_class_has_no_auc() -> None:
    measured = measure(
        "classification",
        ["0", "1"],
        ["1", "1", "0", "1"],
        [[0.2, 0.8], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]],
        [1, 1.0, "1", "maybe"],  # one class only among the usable ones, and a stranger
    )
    assert (measured.rows, measured.unusable) == (3, 1)
    assert measured.metrics["accuracy"] == pytest.approx(2 / 3)
    assert measured.metrics["roc_auc"] is None


def test_without_probabilities_a_classifier_has_no_auc() -> None:
    measured = measure("classification", [], ["x", "y", "x"], [None] * 3, ["x", "x", "x"])
    assert measured.metrics["accuracy"] == pytest.approx(2 / 3)
    assert measured.metrics["roc_auc"] is None


def test_regression_figures_are_scikit_learns(rng: np.random.Generator) -> None:
    actual = rng.uniform(1, 100, size=200)
    predicted = actual + rng.normal(0, 5, size=200)
    measured = measure(
        "regression", [], predicted.tolist(), [None] * 200, [*actual.tolist()[:-1], "n/a"]
    )
    truth, guess = actual[:-1], predicted[:-1]
    assert (measured.rows, measured.unusable) == (199, 1)
    assert measured.metrics["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(truth, guess)))
    assert measured.metrics["mae"] == pytest.approx(skm.mean_absolute_error(truth, guess))
    assert measured.metrics["mape"] == pytest.approx(
        skm.mean_absolute_percentage_error(truth, guess)
    )


def test_mape_is_none_where_an_actual_value_is_zero() -> None:
    measured = measure("regression", [], [1.0, 2.0], [None, None], [0, 2])
    assert measured.metrics["mape"] is None and measured.metrics["mae"] == pytest.approx(0.5)


def test_metric_names_by_task() -> None:
    assert metric_names("classification") == ("accuracy", "f1", "roc_auc")
    assert metric_names("forecasting") == ("rmse", "mae", "mape")
    assert metric_names("clustering") == ()
