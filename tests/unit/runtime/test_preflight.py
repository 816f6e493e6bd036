"""The checks before any data moves report every problem of the spec at once."""

from __future__ import annotations

import pytest

from gristmill.config.spec import parse_spec
from gristmill.errors import ConfigError, SpecError
from gristmill.stages.spec_checks import preflight


def spec(**sections: object) -> object:
    base = {
        "name": "p",
        "sources": {"s": {"format": "csv", "path": "a.csv"}},
        "features": {
            "f": {"from": ["s"], "label": "y", "steps": [{"standardise": {"columns": ["x"]}}]}
        },
        "train": {
            "candidates": [
                {"name": "a", "algorithm": "random_forrest"},
                {"name": "b", "algorithm": "linear_regression"},
            ]
        },
        "evaluate": {"metric": "acuracy"},
    }
    return parse_spec(base | sections)


def test_every_problem_is_reported_in_one_round() -> None:
    with pytest.raises(SpecError) as info:
        preflight(spec())  # type: ignore[arg-type]
    paths = [path for path, _ in info.value.problems]
    assert paths == [
        "features.f.steps[0] (standardise)",
        "evaluate.metric",
        "train.candidates.a",
    ]
    text = str(info.value)
    assert text.startswith("the spec has 3 problems:")
    assert "no feature step named 'standardise'" in text
    assert "no metric named 'acuracy'" in text
    assert "no algorithm named 'random_forrest'" in text


def test_one_problem_is_raised_as_it_is() -> None:
    fine = {"candidates": [{"name": "b", "algorithm": "linear_regression"}]}
    with pytest.raises(ConfigError) as info:
        preflight(spec(train=fine, evaluate={"metric": "rmse"}))  # type: ignore[arg-type]
    assert not isinstance(info.value, SpecError)
    assert str(info.value).startswith("features.f.steps[0] (standardise): no feature step named")


def train(*candidates: dict[str, object], **more: object) -> dict[str, object]:
    return {"candidates": list(candidates), **more}


FOREST = {"name": "forest", "algorithm": "random_forest", "params": {"n_estimators": 10}}
STEPS: dict[str, object] = {"f": {"from": ["s"], "label": "y"}}


def test_an_unknown_estimator_parameter_is_named_with_the_closest() -> None:
    typo = {"name": "typo", "algorithm": "random_forest", "params": {"n_estimatorz": 5}}
    with pytest.raises(ConfigError) as info:
        preflight(spec(features=STEPS, train=train(FOREST, typo), evaluate={"metric": "f1"}))  # type: ignore[arg-type]
    text = str(info.value)
    assert text.startswith("train.candidates[1].params.n_estimatorz: candidate 'typo'")
    assert "did you mean 'n_estimators'?" in text


def test_a_parameter_of_one_task_passes_when_the_task_is_open() -> None:
    weighted = {"name": "w", "algorithm": "random_forest", "params": {"class_weight": "balanced"}}
    preflight(spec(features=STEPS, train=train(weighted), evaluate={"metric": "f1"}))  # type: ignore[arg-type]
    regression = train(weighted, task="regression")
    with pytest.raises(ConfigError, match=r"train\.candidates\[0\]\.params\.class_weight"):
        preflight(spec(features=STEPS, train=regression, evaluate={"metric": "rmse"}))  # type: ignore[arg-type]


def test_tune_space_and_import_path_estimators_are_checked() -> None:
    svc = {
        "name": "svc",
        "algorithm": "sklearn.svm:SVC",
        "params": {"kernal": "rbf"},
        "tune": {"trials": 2, "space": {"gama": [0.01, 1.0, "log"]}},
    }
    with pytest.raises(SpecError) as info:
        preflight(spec(features=STEPS, train=train(svc), evaluate={"metric": "f1"}))  # type: ignore[arg-type]
    assert [p for p, _ in info.value.problems] == [
        "train.candidates[0].params.kernal",
        "train.candidates[0].tune.space.gama",
    ]
    assert "did you mean 'gamma'?" in str(info.value)


def test_import_paths_that_do_not_resolve_are_named() -> None:
    split = {"strategy": "custom", "custom": "nosuchmodule_xyz:by_region"}
    evaluate = {"metric": "f1", "evaluators": ["accuracy", "nosuchmodule_xyz.metrics:profit"]}
    with pytest.raises(SpecError) as info:
        preflight(
            spec(features=STEPS, train=train(FOREST), split=split, evaluate=evaluate)  # type: ignore[arg-type]
        )
    assert [p for p, _ in info.value.problems] == ["split.custom", "evaluate.evaluators[1]"]
    assert "nosuchmodule_xyz" in str(info.value)


@pytest.mark.parametrize(
    ("train_section", "features", "reason"),
    [
        (train({"name": "l", "algorithm": "logistic_regression"}), STEPS, "logistic_regression"),
        (train(FOREST, task="classification"), STEPS, "set by train.task"),
        (train({"name": "k", "algorithm": "kmeans"}), {"f": {"from": ["s"]}}, "no label"),
    ],
)
def test_a_metric_of_another_task_is_refused_naming_the_valid_ones(
    train_section: dict[str, object], features: dict[str, object], reason: str
) -> None:
    with pytest.raises(ConfigError) as info:
        preflight(spec(features=features, train=train_section, evaluate={"metric": "rmse"}))  # type: ignore[arg-type]
    text = str(info.value)
    assert text.startswith("evaluate.metric: metric 'rmse' is for regression and forecasting")
    assert "use one of: " in text and reason in text


def test_a_metric_is_left_to_the_label_when_the_spec_does_not_tell_the_task() -> None:
    preflight(spec(features=STEPS, train=train(FOREST), evaluate={"metric": "rmse"}))  # type: ignore[arg-type]


def test_an_algorithm_that_does_not_do_the_task_is_refused_not_its_parameters() -> None:
    linear = {"name": "lin", "algorithm": "linear_regression", "params": {"fit_intercept": True}}
    section = train(FOREST, linear, task="classification")
    # before: passed, and the candidate failed alone once the data had been ingested
    with pytest.raises(ConfigError) as info:
        preflight(spec(features=STEPS, train=section, evaluate={"metric": "f1"}))  # type: ignore[arg-type]
    assert not isinstance(info.value, SpecError)  # one problem: no parameter is "unknown"
    assert str(info.value) == (
        "train.candidates[1].algorithm: candidate 'lin': 'linear_regression' does regression, "
        "not classification — this is a classification task (set by train.task); algorithms "
        "for classification: decision_tree, gradient_boosting, lightgbm, logistic_regression, "
        "random_forest, xgboost (or an estimator's import path)"
    )


@pytest.mark.parametrize(
    ("section", "features", "task"),
    [
        (train({"name": "l", "algorithm": "logistic_regression"}, task="regression"), STEPS,
         "regression"),
        (train({"name": "a", "algorithm": "arima"}, {"name": "l", "algorithm": "kmeans"}), STEPS,
         "forecasting"),
        (train({"name": "l", "algorithm": "linear_regression"}), {"f": {"from": ["s"]}},
         "clustering"),
    ],
)  # fmt: skip
def test_an_algorithm_of_another_task_is_refused_by_key(
    section: dict[str, object], features: dict[str, object], task: str
) -> None:
    with pytest.raises(ConfigError) as info:
        preflight(spec(features=features, train=section, evaluate={"metric": "rmse"}))  # type: ignore[arg-type]
    assert ".algorithm: candidate 'l': " in str(info.value)
    assert f"this is a {task} task" in str(info.value)


def test_an_algorithm_is_left_to_the_label_when_the_spec_does_not_tell_the_task() -> None:
    linear = {"name": "lin", "algorithm": "linear_regression"}
    preflight(spec(features=STEPS, train=train(FOREST, linear), evaluate={"metric": "rmse"}))  # type: ignore[arg-type]
