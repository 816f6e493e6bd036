"""Live quality: a version's figures on the predictions that got an actual outcome, measured
with the same evaluators as offline evaluation (``evaluation.registry``).

Classifiers get accuracy, F1 and ROC AUC (from the logged probabilities; F1 and ROC AUC of
the positive class — the second of the version's classes — for two classes, macro means
for more: F1's over the classes the window's labelled rows hold, as actual or predicted —
scikit-learn's default — so a class no row of the window has does not count as an F1 of
0); regressors and forecasters RMSE, MAE and MAPE. Labels are compared as text
(``core.feedback.label_text``: ``1``, ``1.0`` and ``"1"`` are one class). An actual value
the version cannot be measured on — a class it does not know, a value that is not a number
for a regressor — is counted as ``unusable`` and left out. A figure the rows cannot give
(ROC AUC when one class is absent, MAPE when an actual value is 0) is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gristmill.core.feedback import label_text
from gristmill.errors import DataError
from gristmill.evaluation.registry import evaluate

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "mape")


@dataclass(frozen=True)
class Measured:
    """The figures, how many rows they were measured on, how many were left out; for a
    classifier, the rows kept as class indices and probabilities (for the estimate's
    error, measured on the same rows)."""

    metrics: dict[str, float | None]
    rows: int
    unusable: int
    predicted: list[str] = field(default_factory=list)
    proba: np.ndarray | None = None


def metric_names(task: str) -> tuple[str, ...]:
    """The live quality figures of a task (none for clustering)."""
    if task == "classification":
        return CLASSIFICATION_METRICS
    if task in ("regression", "forecasting"):
        return REGRESSION_METRICS
    return ()


def measure(
    task: str,
    classes: Sequence[str],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float] | None],
    actuals: Sequence[Any],
) -> Measured:
    """The live quality of one window's labelled rows (see the module docstring)."""
    if task == "classification":
        return _classified(classes, predictions, probabilities, actuals)
    if task in ("regression", "forecasting"):
        return _regressed(predictions, actuals)
    return Measured({}, 0, 0)


def _classified(
    classes: Sequence[str],
    predictions: Sequence[Any],
    probabilities: Sequence[Sequence[float] | None],
    actuals: Sequence[Any],
) -> Measured:
    names = list(classes) or sorted({label_text(v) for v in [*predictions, *actuals]})
    index = {label_text(name): i for i, name in enumerate(names)}
    kept = [
        i
        for i, (p, a) in enumerate(zip(predictions, actuals, strict=True))
        if label_text(p) in index and label_text(a) in index
    ]
    unusable = len(actuals) - len(kept)
    if not kept:
        return Measured(dict.fromkeys(CLASSIFICATION_METRICS), 0, unusable)
    y_pred = np.array([index[label_text(predictions[i])] for i in kept])
    y_true = np.array([index[label_text(actuals[i])] for i in kept])
    rows = [probabilities[i] for i in kept]
    proba = None
    if classes and all(r is not None and len(r) == len(names) for r in rows):
        proba = np.asarray(rows, dtype=float)
    order = list(range(len(names)))
    metrics: dict[str, float | None] = {}
    for name in CLASSIFICATION_METRICS:
        if name == "roc_auc" and proba is None:
            metrics[name] = None
            continue
        if name == "f1" and len(names) > 2:
            metrics[name] = _macro_f1(y_true, y_pred)
            continue
        metrics[name] = _one(
            "classification", name, y_true, y_pred, proba if name == "roc_auc" else None, order
        )
    predicted = [names[k] for k in y_pred]
    return Measured(metrics, len(kept), unusable, predicted, proba)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The macro F1 over the classes present (in ``y_true`` or ``y_pred``)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _regressed(predictions: Sequence[Any], actuals: Sequence[Any]) -> Measured:
    kept = [
        i
        for i, (p, a) in enumerate(zip(predictions, actuals, strict=True))
        if _number(p) and _number(a)
    ]
    unusable = len(actuals) - len(kept)
    if not kept:
        return Measured(dict.fromkeys(REGRESSION_METRICS), 0, unusable)
    y_pred = np.array([float(predictions[i]) for i in kept])
    y_true = np.array([float(actuals[i]) for i in kept])
    metrics = {name: _one("regression", name, y_true, y_pred) for name in REGRESSION_METRICS}
    return Measured(metrics, len(kept), unusable)


def _one(
    task: str,
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None = None,
    classes: list[int] | None = None,
) -> float | None:
    """One evaluator's number, ``None`` where these rows cannot give it."""
    try:
        result = evaluate(task, [name], y_true, y_pred, proba, classes=classes)
    except DataError:
        return None
    value = result.metrics.get(name)
    return float(value) if isinstance(value, int | float) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
