"""The learner port: an algorithm configured from the spec, fitted on a frame into a model.

A ``Learner`` follows scikit-learn's conventions: its constructor only stores its keyword
arguments (so ``sklearn.base.clone`` copies it and it prints as its configuration), and
``check_params`` validates them without touching data. ``fit`` never changes the learner; it
returns a new ``FittedLearner``, the thing that predicts, reports what it learned and is
stored (see ``learners.serialization``).

Errors: a bad hyper-parameter is a ``ConfigError`` naming the algorithm and the parameter;
bad data (a label with one class, a text column reaching an estimator that needs numbers,
a missing feature at prediction) is a ``DataError`` naming the column. Asking a model for
what its task does not give (probabilities from a regressor, a forecast from a classifier)
is a ``ConfigError``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal, get_args

import pandas as pd
from sklearn.base import BaseEstimator

from gristmill.errors import ConfigError

Task = Literal["classification", "regression", "clustering", "forecasting"]
TASKS: tuple[Task, ...] = get_args(Task)

Capability = Literal["proba", "forecast"]
"""Optional behaviour of a fitted learner: class probabilities, forecasting ahead."""


class Learner(BaseEstimator, ABC):  # type: ignore[misc]
    """An algorithm with its hyper-parameters, not yet fitted.

    ``algorithm`` is the registry name (or import path) and ``task`` what it does.
    """

    algorithm: str
    task: Task

    def check_params(self) -> None:
        """``ConfigError`` naming the parameter when a hyper-parameter value is not allowed."""

    @abstractmethod
    def fit(self, frame: pd.DataFrame, y: pd.Series | None = None) -> FittedLearner:
        """A fitted model; the learner itself is left unchanged."""


class FittedLearner(ABC):
    """A fitted model. Predictions keep the index of the rows they were made for.

    ``feature_names`` are the columns it was fitted on, in order; ``predict`` takes a frame
    holding at least those (extra columns are ignored). ``label`` is the label's name.
    """

    algorithm: str
    task: Task
    feature_names: list[str]
    label: str | None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this model offers beyond ``predict`` and ``learned``."""
        return frozenset()

    @property
    def classes(self) -> list[Any]:
        """The classes a classifier knows, in the order of ``predict_proba``'s columns."""
        raise ConfigError(f"{self.algorithm!r} is a {self.task} model; it has no classes")

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """One prediction per row of ``frame`` (a class, a value, a cluster, a forecast)."""

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities, one column per class in the order of ``classes``."""
        raise ConfigError(
            f"{self.algorithm!r} ({self.task}) gives no class probabilities; "
            "metrics that need them (roc_auc, pr_auc, log_loss, calibration) cannot be used"
        )

    def forecast(self, steps: int, frame: pd.DataFrame | None = None) -> pd.Series:
        """The next ``steps`` values after the training series (``frame``: future exogenous)."""
        raise ConfigError(f"{self.algorithm!r} ({self.task}) cannot forecast; use arima/sarimax")

    @abstractmethod
    def learned(self) -> dict[str, Any]:
        """What was learned, as JSON-able data (coefficients by feature name, importances…)."""
