"""The task a pipeline trains for: ``train.task`` when given, else a rule read off the label.

The rule (docs/spec.md, "How the task is chosen"), first match wins:

1. a candidate's algorithm is a forecaster (``arima``, ``sarimax``) → forecasting;
2. the feature set has no label → clustering;
3. a text, boolean or dictionary label → classification;
4. an integer label, or a float label whose values are all whole numbers, with at most
   ``MAX_INFERRED_CLASSES`` distinct values and at most one distinct value for every two
   rows → classification; otherwise → regression;
5. any other float label → regression; any other type cannot be told: set ``train.task``.

Rules 3 to 5 live in ``core.tasks``: label-based feature selection in preparation (which
fits before training runs) uses the very same rule, and is given ``preset_task`` when the
spec decides. A classification never takes more than ``MAX_CLASSES`` classes (a price read
as classes would otherwise train for hours); the error says to set ``train.task``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from gristmill.config.spec import PipelineSpec, training_target
from gristmill.core.tasks import (
    MAX_INFERRED_CLASSES,
    TaskChoice,
    describe_task,
    distinct_values,
    label_task,
)
from gristmill.errors import ConfigError
from gristmill.learners.registry import ALGORITHMS, FORECASTERS, algorithms_for

__all__ = [
    "MAX_CLASSES",
    "MAX_INFERRED_CLASSES",
    "TaskChoice",
    "check_classes",
    "check_fits",
    "check_selection",
    "choose_task",
    "describe_task",
    "infer_task",
    "preset_task",
]

MAX_CLASSES = 1000


def preset_task(spec: PipelineSpec | None, name: str) -> TaskChoice | None:
    """The task training on feature set ``name`` will use when the spec alone tells it
    (``train.task``, or forecasting when a candidate forecasts), else ``None``: the label
    decides, by the one rule of ``core.tasks``, in preparation (label-based selection) as
    in training. Preparation is given it, so both work for the same task."""
    if spec is None or spec.train is None or training_target(spec) != name:
        return None
    if spec.train.task:
        return TaskChoice(spec.train.task, "set by train.task")
    return _forecasting([c.algorithm for c in spec.train.candidates])


def choose_task(
    given: str | None, table: pa.Table, label: str | None, algorithms: Sequence[str]
) -> TaskChoice:
    """``train.task`` when ``given``, else the task the rule infers; then ``check_classes``."""
    if given:
        choice = TaskChoice(given, "set by train.task")
    else:
        choice = infer_task(table, label, algorithms)
    check_classes(choice, table, label)
    return choice


def infer_task(table: pa.Table, label: str | None, algorithms: Sequence[str]) -> TaskChoice:
    """The task the module's rule gives for ``label`` of ``table`` and these algorithms."""
    forecasting = _forecasting(algorithms)
    if forecasting is not None:
        return forecasting
    if label is None:
        return TaskChoice("clustering", "inferred: the feature set has no label")
    return label_task(table.column(label), label)


def check_classes(choice: TaskChoice, table: pa.Table, label: str | None) -> None:
    """``ConfigError`` naming ``train.task`` when a classification has too many classes."""
    if choice.task != "classification" or label is None or label not in table.column_names:
        return
    classes = distinct_values(table.column(label))
    if classes > MAX_CLASSES:
        raise ConfigError(
            f"label {label!r} has {classes:,} distinct values, more classes than a classifier "
            f"takes ({MAX_CLASSES:,}); the task is {choice.describe()}; if the label is a "
            "quantity, set train.task: regression"
        )


def check_selection(choice: TaskChoice, selection: Mapping[str, Any], feature_set: str) -> None:
    """``ConfigError`` naming ``train.task`` when the feature set's label-based selection
    scored for another task than training's ``choice`` (both read the same rule, on the
    input rows and on the feature rows: a filter step can tip a borderline label)."""
    scored = selection.get("task")
    if scored is None or choice.task == "clustering":
        return
    wanted = "classification" if choice.task == "classification" else "regression"
    if scored == wanted:
        return
    raise ConfigError(
        f"feature set {feature_set} selected its features for {scored} "
        f"({selection.get('task_reason') or selection.get('method')}), but the task is "
        f"{choice.describe()}; set train.task to the task you mean and prepare it again "
        "(gristmill prepare SPEC)"
    )


def check_fits(algorithm: str, choice: TaskChoice) -> None:
    """``ConfigError`` naming ``train.task`` when a built-in ``algorithm`` does not do the
    task (an estimator named by import path is checked when it is made)."""
    if algorithm in FORECASTERS:
        does = ["forecasting"]
    elif algorithm in ALGORITHMS:
        does = list(ALGORITHMS[algorithm].estimators)
    else:
        return
    if choice.task in does:
        return
    others = ", ".join(algorithms_for(choice.task)) or "(none built in)"  # type: ignore[arg-type]
    raise ConfigError(
        f"algorithm {algorithm!r} is for {' and '.join(does)}, not {choice.task}; the task is "
        f"{choice.describe()}; set train.task: {does[0]} if that is the task, or for "
        f"{choice.task} use one of: {others}"
    )


def _forecasting(algorithms: Sequence[str]) -> TaskChoice | None:
    forecaster = next((a for a in algorithms if a in FORECASTERS), None)
    if forecaster is None:
        return None
    return TaskChoice("forecasting", f"inferred: algorithm {forecaster!r} forecasts")
