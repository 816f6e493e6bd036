"""The task rule of docs/spec.md: read off the label's type and count of distinct values."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from gristmill.errors import ConfigError
from gristmill.testing.data import housing_table
from gristmill.training.task import TaskChoice, check_fits, choose_task, infer_task


def task_of(values: list[object], *, algorithms: tuple[str, ...] = ("random_forest",)) -> str:
    return infer_task(pa.table({"y": values}), "y", list(algorithms)).task


def test_an_integer_price_with_thousands_of_values_is_a_regression() -> None:
    # Before: any label that was not a float with > 20 values was taken as classes.
    choice = infer_task(housing_table(), "price", ["random_forest"])
    assert choice == TaskChoice(
        "regression", "inferred: integer label 'price' with 3,740 distinct values, more than 20"
    )
    assert choice.describe() == (
        "regression (inferred: integer label 'price' with 3,740 distinct values, more than 20; "
        "set train.task to override)"
    )


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 2, 1, 0, 2, 1, 0], "classification"),  # integer, 3 values
        (["adelie", "gentoo", "adelie", "chinstrap"], "classification"),  # text
        ([True, False, True], "classification"),  # boolean
        ([0.0, 1.0, 1.0, 0.0, None], "classification"),  # whole-number floats, 2 values
        ([0.5, 1.5, 0.5, 1.5], "regression"),  # fractions, however few
        (list(range(21)) * 2, "regression"),  # 21 integer values: more than 20
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 9], "regression"),  # 9 values in 10 rows: over half
    ],
)
def test_the_label_decides_by_type_and_distinct_values(values: list[object], task: str) -> None:
    assert task_of(values) == task


def test_categorical_labels_are_classes() -> None:
    table = pa.table({"y": pa.array(["a", "b", "a"]).dictionary_encode()})
    assert infer_task(table, "y", ["decision_tree"]) == TaskChoice(
        "classification", "inferred: categorical label 'y'"
    )


def test_no_label_clusters_and_a_forecaster_forecasts() -> None:
    table = pa.table({"y": [1.5, 2.5]})
    assert infer_task(table, None, ["kmeans"]).task == "clustering"
    assert infer_task(table, "y", ["linear_regression", "arima"]) == TaskChoice(
        "forecasting", "inferred: algorithm 'arima' forecasts"
    )


def test_a_label_of_another_type_asks_for_train_task() -> None:
    with pytest.raises(ConfigError, match=r"label 'y' of type timestamp.*set train\.task"):
        task_of([datetime(2024, 1, 1), datetime(2024, 1, 2)])


def test_a_given_task_wins_and_says_so() -> None:
    choice = choose_task("classification", pa.table({"y": [0.5, 1.5]}), "y", ["decision_tree"])
    assert choice == TaskChoice("classification", "set by train.task")
    assert choice.describe() == "classification (set by train.task)"


def test_thousands_of_classes_are_refused_naming_train_task() -> None:
    with pytest.raises(ConfigError) as caught:
        choose_task("classification", housing_table(), "price", ["decision_tree"])
    assert str(caught.value) == (
        "label 'price' has 3,740 distinct values, more classes than a classifier takes (1,000); "
        "the task is classification (set by train.task); if the label is a quantity, set "
        "train.task: regression"
    )
    labels = pa.table({"y": [f"id-{i}" for i in range(1500)]})
    with pytest.raises(ConfigError, match=r"inferred: text label 'y'; set train\.task"):
        choose_task(None, labels, "y", ["decision_tree"])


def test_an_algorithm_of_another_task_names_train_task() -> None:
    choice = infer_task(pa.table({"y": [0, 1, 1, 0]}), "y", ["linear_regression"])
    with pytest.raises(ConfigError) as caught:
        check_fits("linear_regression", choice)
    message = str(caught.value)
    assert message.startswith("algorithm 'linear_regression' is for regression, not classification")
    assert "inferred: integer label 'y' with 2 distinct values; set train.task to" in message
    assert "set train.task: regression if that is the task" in message
    check_fits("random_forest", choice)  # does both
    check_fits("sklearn.svm:SVC", choice)  # an import path is checked when it is made
