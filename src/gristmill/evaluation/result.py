"""What an evaluation gives back, and the inputs every evaluator reads.

``EvaluationResult.metrics`` maps a metric name to a number, or to a small table (a
confusion matrix, a residuals summary); ``curves`` maps a curve name (``roc``, ``pr``,
``calibration``, ``residuals``) to its points, at most ``MAX_POINTS`` per line. All of it
is JSON-able: NaN and infinity become ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

import numpy as np

from gristmill.errors import ConfigError

Task = Literal["classification", "regression", "clustering", "forecasting"]
TASKS: tuple[Task, ...] = get_args(Task)
MAX_POINTS = 200


@dataclass(frozen=True)
class EvaluationResult:
    """The metrics and curves of one model on one data set."""

    task: Task
    metrics: dict[str, Any]
    curves: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    """How metrics were computed: classes, averaging, positive class, sample sizes."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "metrics": self.metrics,
            "curves": self.curves,
            "details": self.details,
        }


@dataclass(frozen=True)
class Scored:
    """What evaluators read. ``proba`` has one column per class, in the order of ``classes``."""

    task: Task
    y_true: np.ndarray | None
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    classes: list[Any] = field(default_factory=list)
    train_y: np.ndarray | None = None
    features: np.ndarray | None = None

    @property
    def truth(self) -> np.ndarray:
        """``y_true``; only a clustering evaluation may lack it (ARI needs it, checked)."""
        if self.y_true is None:
            raise ConfigError(f"a {self.task} metric needs the true values (y_true)")
        return self.y_true


class Part(NamedTuple):
    """What one evaluator adds to the result."""

    metrics: dict[str, Any]
    curves: dict[str, Any]


def number(value: Any) -> float | None:
    """A float for JSON: ``None`` when not finite."""
    result = float(value)
    return result if math.isfinite(result) else None


def points(values: Any, keep: np.ndarray | None = None) -> list[float | None]:
    """The values (at the ``keep`` positions) as a JSON-able list of floats."""
    array = np.asarray(values, dtype=float)
    if keep is not None:
        array = array[keep]
    return [number(v) for v in array]


def thin(size: int, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` positions of ``size``, evenly spread, first and last kept."""
    if size <= limit:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, limit).round().astype(int))


def label(value: Any) -> Any:
    """A class label as a JSON scalar."""
    return value.item() if isinstance(value, np.generic) else value
