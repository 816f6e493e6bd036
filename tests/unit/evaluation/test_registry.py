"""Choosing evaluators by name: errors, defaults, custom functions, ranking direction."""

from __future__ import annotations

import pickle
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from gristmill.errors import ConfigError, DataError, EvaluatorError
from gristmill.evaluation import check_evaluators, evaluate, evaluator_names, higher_is_better

from .conftest import Output


def test_names_by_task() -> None:
    assert evaluator_names("clustering") == ["adjusted_rand", "silhouette"]
    assert "roc_auc" in evaluator_names("classification")
    assert "rmse" in evaluator_names("forecasting") and "mase" not in evaluator_names("regression")
    assert evaluator_names() == sorted(evaluator_names())


def test_unknown_metric_lists_the_tasks_metrics() -> None:
    with pytest.raises(ConfigError) as caught:
        check_evaluators("classification", ["acuracy"])
    message = str(caught.value)
    assert "no metric named 'acuracy' (did you mean 'accuracy'?)" in message
    assert "known for classification: accuracy, brier, calibration" in message
    assert "rmse" not in message


def test_metric_of_another_task_says_which_to_use() -> None:
    with pytest.raises(ConfigError) as caught:
        check_evaluators("classification", ["accuracy", "rmse"])
    assert str(caught.value).startswith(
        "metric 'rmse' is for regression and forecasting; this is a classification task "
        "— use one of: accuracy, brier, calibration, confusion_matrix, f1"
    )
    with pytest.raises(ConfigError, match="no task named 'ranking'"):
        check_evaluators("ranking", [])


def test_probability_metrics_need_probabilities(cancer: Output) -> None:
    with pytest.raises(ConfigError) as caught:
        evaluate("classification", ["accuracy", "roc_auc"], cancer.y_true, cancer.y_pred)
    assert "metric 'roc_auc' needs predicted probabilities (y_proba)" in str(caught.value)
    defaults = evaluate("classification", [], cancer.y_true, cancer.y_pred)
    assert set(defaults.metrics) == {"accuracy", "precision", "recall", "f1", "confusion_matrix"}
    assert defaults.curves == {}
    full = evaluate("classification", [], cancer.y_true, cancer.y_pred, cancer.proba)
    assert {"roc_auc", "pr_auc", "log_loss", "brier"} <= set(full.metrics)
    assert set(full.curves) == {"roc", "pr", "calibration"}


def test_inputs_are_checked(cancer: Output) -> None:
    with pytest.raises(DataError, match="y_true has 3 values but y_pred has 2"):
        evaluate("regression", ["mae"], [1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(DataError, match=r"one column per class \(228 x 2\); got shape \(228, 3\)"):
        evaluate(
            "classification", ["roc_auc"], cancer.y_true, cancer.y_pred,
            np.ones((len(cancer.y_true), 3)),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="needs the true values"):
        evaluate("regression", ["mae"], None, [1.0])
    with pytest.raises(DataError, match="nothing to evaluate"):
        evaluate("regression", ["mae"], [], [])


@pytest.fixture
def custom_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "gm_custom_metrics.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            def cost(y_true, y_pred, y_proba):
                return float(np.sum((y_true == 0) & (y_pred == 1)) * 5 + np.sum(y_true != y_pred))
            cost.higher_is_better = False

            def report(y_true, y_pred, y_proba):
                return {"rows": int(len(y_true)), "max_proba": float(y_proba.max())}

            def broken(y_true, y_pred, y_proba):
                return "good"

            def raises(y_true, y_pred, y_proba):
                return 1 / 0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "gm_custom_metrics"
    sys.modules.pop("gm_custom_metrics", None)


def test_custom_evaluators_by_import_path(cancer: Output, custom_module: str) -> None:
    names = [f"{custom_module}:cost", f"{custom_module}.report", "accuracy"]
    result = evaluate("classification", names, cancer.y_true, cancer.y_pred, cancer.proba)
    y, p = cancer.y_true, cancer.y_pred
    expected = float(np.sum((y == 0) & (p == 1)) * 5 + np.sum(y != p))
    assert result.metrics[f"{custom_module}:cost"] == expected
    assert result.metrics[f"{custom_module}.report"]["rows"] == len(y)
    assert higher_is_better(f"{custom_module}:cost") is False
    assert higher_is_better(f"{custom_module}.report") is True
    with pytest.raises(ConfigError, match="returned str; it must return a number or a dict"):
        evaluate("regression", [f"{custom_module}:broken"], [1.0], [1.0])
    with pytest.raises(ConfigError, match="module 'gm_custom_metrics' has no function 'nope'"):
        check_evaluators("regression", [f"{custom_module}:nope"])
    with pytest.raises(ConfigError, match="cannot import evaluator 'no_such_mod:f'"):
        check_evaluators("regression", ["no_such_mod:f"])


def test_direction_of_each_metric() -> None:
    assert higher_is_better("roc_auc") and higher_is_better("r2") and higher_is_better("silhouette")
    for metric in ("rmse", "mae", "log_loss", "brier", "mape", "smape", "mase"):
        assert higher_is_better(metric) is False
    with pytest.raises(ConfigError, match="'confusion_matrix' is a table, not a number"):
        higher_is_better("confusion_matrix")
    with pytest.raises(ConfigError, match="no metric named 'rsme' \\(did you mean 'rmse'\\?\\)"):
        higher_is_better("rsme")


def test_a_custom_evaluator_that_raises_is_an_evaluator_error_naming_it(
    custom_module: str,
) -> None:
    path = f"{custom_module}:raises"
    with pytest.raises(EvaluatorError) as raised:
        evaluate("regression", [path], [1.0, 2.0], [1.0, 2.5])
    assert raised.value.path == path
    assert str(raised.value) == f"evaluator {path!r} raised ZeroDivisionError: division by zero"
    again = pickle.loads(pickle.dumps(raised.value))  # as it comes back from a process pool
    assert (type(again), again.path, str(again)) == (EvaluatorError, path, str(raised.value))
