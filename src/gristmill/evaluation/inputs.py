"""Turn what a caller passes to ``evaluate`` into checked arrays (``Scored``) and details.

Errors are ``DataError`` naming the input at fault: lengths that differ, probabilities
whose columns do not match the classes, features that are not numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from gristmill.errors import ConfigError, DataError
from gristmill.evaluation.result import Scored, Task, label


def prepare(
    task: Task,
    y_true: Any,
    y_pred: Any,
    y_proba: Any,
    classes: Sequence[Any] | None,
    train_y: Any,
    features: Any,
) -> tuple[Scored, dict[str, Any]]:
    """The checked inputs and the details recorded with the result."""
    predicted = _column("y_pred", y_pred)
    truth = None if y_true is None else _column("y_true", y_true)
    if truth is None and task != "clustering":
        raise ConfigError(f"a {task} evaluation needs the true values (y_true)")
    if truth is not None and len(truth) != len(predicted):
        raise DataError(f"y_true has {len(truth)} values but y_pred has {len(predicted)}")
    if len(predicted) == 0:
        raise DataError("there is nothing to evaluate: y_pred is empty")
    details: dict[str, Any] = {"rows": len(predicted)}
    known: list[Any] = []
    proba = None
    if task == "classification":
        known = _classes(classes, y_proba, truth, predicted)
        proba = None if y_proba is None else _proba(y_proba, known, classes, len(predicted))
        details["classes"] = [label(c) for c in known]
        if len(known) == 2:
            details.update(average="binary", positive_class=label(known[1]))
        else:
            details["average"] = "macro"
    scored = Scored(
        task=task,
        y_true=truth,
        y_pred=predicted,
        proba=proba,
        classes=known,
        train_y=None if train_y is None else _column("train_y", train_y).astype(float),
        features=None if features is None else _features(features, len(predicted)),
    )
    return scored, details


def _column(name: str, values: Any) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    if array.ndim != 1:
        raise DataError(f"{name} must be one value per row; got shape {array.shape}")
    return array


def _classes(
    classes: Sequence[Any] | None, y_proba: Any, truth: np.ndarray | None, predicted: np.ndarray
) -> list[Any]:
    """The classes in sorted order (scikit-learn's, which its metrics assume)."""
    if classes is not None:
        found = list(classes)
    elif isinstance(y_proba, pd.DataFrame):
        found = list(y_proba.columns)
    else:
        found = list(predicted if truth is None else np.concatenate([truth, predicted]))
    try:
        return list(np.unique(np.asarray(found)))
    except TypeError as exc:
        raise DataError(f"the classes cannot be put in order: {exc}") from exc


def _proba(y_proba: Any, classes: list[Any], given: Sequence[Any] | None, rows: int) -> np.ndarray:
    """The probabilities with columns in the (sorted) order of ``classes``.

    A frame's columns name its classes; an array's columns are in the order ``given``.
    """
    if not isinstance(y_proba, pd.DataFrame) and given is not None:
        y_proba = pd.DataFrame(np.asarray(y_proba, dtype=float), columns=list(given))
    if isinstance(y_proba, pd.DataFrame):
        absent = [c for c in classes if c not in y_proba.columns]
        if absent:
            raise DataError(f"y_proba has no column for class(es) {', '.join(map(str, absent))}")
        y_proba = y_proba.reindex(columns=classes)  # by label: [False, True] is no mask
    proba = np.asarray(y_proba, dtype=float)
    if proba.ndim != 2 or proba.shape != (rows, len(classes)):
        raise DataError(
            f"y_proba must have one row per prediction and one column per class "
            f"({rows} x {len(classes)}); got shape {proba.shape}"
        )
    return proba


def _features(features: Any, rows: int) -> np.ndarray:
    if isinstance(features, pd.DataFrame):
        text = [
            str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c].dtype)
        ]
        if text:
            raise DataError(f"features must be numbers; not numeric: {', '.join(text)}")
    try:
        array = np.asarray(features, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"features must be numbers: {exc}") from exc
    if array.ndim != 2 or len(array) != rows:
        raise DataError(f"features must be {rows} rows; got shape {array.shape}")
    return array
