"""The task a pipeline trains for: ``train.task`` when given, else a rule read off the label.

The rule (docs/spec.md, "How the task is chosen"), first match wins:

1. a candidate's algorithm is a forecaster (``arima``, ``sarimax``) → forecasting;
2. the feature set has no label → clustering;
3. a text, boolean or dictionary label → classification;
4. an integer label, or a float label whose values are all whole numbers, with at most
   ``MAX_INFERRED_CLASSES`` distinct values and at most one distinct value for every two
   rows → classification; otherwise → regression;
5. any other float label → regression; any other type cannot be told: set ``train.task``.

A classification never takes more than ``MAX_CLASSES`` classes (a price read as classes
would otherwise train for hours); the error says to set ``train.task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import ConfigError
from gristmill.learners.registry import ALGORITHMS, FORECASTERS, algorithms_for

MAX_INFERRED_CLASSES = 20
MAX_CLASSES = 1000


@dataclass(frozen=True)
class TaskChoice:
    """The task, and why: ``reason`` reads ``set by train.task`` or ``inferred: …``."""

    task: str
    reason: str

    def describe(self) -> str:
        """See ``describe_task``."""
        return describe_task(self.task, self.reason)


def describe_task(task: str, reason: str | None) -> str:
    """``regression (inferred: integer label 'price' with 3,412 distinct values, more than
    20; set train.task to override)`` — for summaries and errors."""
    if not reason:
        return task
    override = "; set train.task to override" if reason.startswith("inferred") else ""
    return f"{task} ({reason}{override})"


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
    forecaster = next((a for a in algorithms if a in FORECASTERS), None)
    if forecaster is not None:
        return TaskChoice("forecasting", f"inferred: algorithm {forecaster!r} forecasts")
    if label is None:
        return TaskChoice("clustering", "inferred: the feature set has no label")
    column = table.column(label)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return TaskChoice("classification", f"inferred: text label {label!r}")
    if pa.types.is_boolean(kind):
        return TaskChoice("classification", f"inferred: boolean label {label!r}")
    if pa.types.is_dictionary(kind):
        return TaskChoice("classification", f"inferred: categorical label {label!r}")
    if pa.types.is_integer(kind):
        return _by_count(column, f"integer label {label!r}")
    if pa.types.is_floating(kind):
        if _whole(column):
            return _by_count(column, f"float label {label!r} of whole numbers")
        return TaskChoice("regression", f"inferred: float label {label!r} with fractional values")
    raise ConfigError(
        f"cannot tell the task from label {label!r} of type {kind}; set train.task to one of "
        "classification, regression, clustering, forecasting"
    )


def check_classes(choice: TaskChoice, table: pa.Table, label: str | None) -> None:
    """``ConfigError`` naming ``train.task`` when a classification has too many classes."""
    if choice.task != "classification" or label is None or label not in table.column_names:
        return
    classes = _distinct(table.column(label))
    if classes > MAX_CLASSES:
        raise ConfigError(
            f"label {label!r} has {classes:,} distinct values, more classes than a classifier "
            f"takes ({MAX_CLASSES:,}); the task is {choice.describe()}; if the label is a "
            "quantity, set train.task: regression"
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


def _by_count(column: pa.ChunkedArray, what: str) -> TaskChoice:
    distinct = _distinct(column)
    values = f"{distinct:,} distinct value{'s' if distinct != 1 else ''}"
    rows = len(column) - column.null_count
    if distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= max(rows, 2):
        return TaskChoice("classification", f"inferred: {what} with {values}")
    if distinct > MAX_INFERRED_CLASSES:
        why = f"more than {MAX_INFERRED_CLASSES}"
    else:
        why = f"more than half of its {rows:,} rows"
    return TaskChoice("regression", f"inferred: {what} with {values}, {why}")


def _distinct(column: pa.ChunkedArray) -> int:
    return int(pc.count_distinct(column, mode="only_valid").as_py())


def _whole(column: pa.ChunkedArray) -> bool:
    valid = pc.drop_null(column)
    finite = bool(pc.all(pc.is_finite(valid)).as_py())
    return finite and bool(pc.all(pc.equal(valid, pc.floor(valid))).as_py())
