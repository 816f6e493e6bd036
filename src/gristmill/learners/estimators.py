"""Learners backed by a scikit-learn-compatible estimator (built-in names and import paths).

The estimator is cloned for every ``fit``, so one learner fits many times (folds, trials,
retries) without carrying state. scikit-learn's parameter errors become ``ConfigError``
naming the parameter; its complaints about the data (NaN, strings) become ``DataError``
naming the columns, with the original chained.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from gristmill.errors import ConfigError, DataError
from gristmill.learners.base import Capability, FittedLearner, Learner, Task
from gristmill.learners.inputs import (
    check_features,
    check_label,
    columns_with_missing,
    select_features,
)
from gristmill.learners.learned import estimator_learned, plain

_PARAMETER = re.compile(r"The '(\w+)' parameter")


def invalid_parameter(algorithm: str, exc: InvalidParameterError) -> ConfigError:
    """A ``ConfigError`` naming the algorithm and the parameter scikit-learn refused."""
    found = _PARAMETER.search(str(exc))
    which = f" parameter {found.group(1)!r}" if found else ""
    return ConfigError(f"algorithm {algorithm!r}{which} is invalid: {exc}")


class EstimatorLearner(Learner):
    """A scikit-learn-style estimator (unfitted) doing ``task``.

    ``needs_numbers``: features are checked to be numeric before fitting (built-in
    algorithms); an imported estimator may take other columns itself (a ``Pipeline``).
    ``categories``: the estimator takes pandas ``category`` columns as they are.
    ``encode_labels``: the estimator wants classes as 0..n-1 (XGBoost); they are encoded
    before fitting and decoded in predictions.
    """

    def __init__(
        self,
        algorithm: str,
        estimator: Any,
        task: Task,
        needs_numbers: bool = True,
        categories: bool = False,
        encode_labels: bool = False,
    ) -> None:
        self.algorithm = algorithm
        self.estimator = estimator
        self.task = task
        self.needs_numbers = needs_numbers
        self.categories = categories
        self.encode_labels = encode_labels

    def check_params(self) -> None:
        # scikit-learn validates values only in fit; its validator is called early so a
        # wrong spec fails before any data is read. Third-party estimators may lack it.
        validate = getattr(self.estimator, "_validate_params", None)
        if callable(validate) and hasattr(self.estimator, "_parameter_constraints"):
            try:
                validate()
            except InvalidParameterError as exc:
                raise invalid_parameter(self.algorithm, exc) from exc

    def fit(self, frame: pd.DataFrame, y: pd.Series | None = None) -> FittedEstimator:
        if self.needs_numbers:
            check_features(frame, self.algorithm, categories=self.categories)
        check_label(y, self.task, self.algorithm)
        estimator = clone(self.estimator)
        classes: np.ndarray | None = None
        target: Any = y
        if self.task == "classification" and self.encode_labels and y is not None:
            classes, target = np.unique(y.to_numpy(), return_inverse=True)
        try:
            if self.task == "clustering":
                estimator.fit(frame)
            else:
                estimator.fit(frame, target)
        except InvalidParameterError as exc:
            raise invalid_parameter(self.algorithm, exc) from exc
        except (ValueError, TypeError) as exc:
            named = [] if "NaN" in str(exc) else _parameters_named(estimator, str(exc))
            if named:
                raise ConfigError(
                    f"algorithm {self.algorithm!r} cannot be fitted with its parameter(s) "
                    f"{', '.join(named)}: {exc}"
                ) from exc
            raise _data_error(self.algorithm, frame, exc) from exc
        return FittedEstimator(
            algorithm=self.algorithm,
            task=self.task,
            estimator=estimator,
            feature_names=[str(c) for c in frame.columns],
            label=None if y is None or y.name is None else str(y.name),
            encoded_classes=classes,
        )


def _parameters_named(estimator: Any, message: str) -> list[str]:
    """The parameters a fit error talks about: a combination scikit-learn refuses in fit
    (``solver='lbfgs'`` with ``penalty='l1'``) is a configuration error, not bad data."""
    names = estimator.get_params(deep=False)
    return [
        name
        for name in sorted(names)
        if len(name) >= 4 and re.search(rf"\b{re.escape(name)}\b", message, re.IGNORECASE)
    ]


def _data_error(algorithm: str, frame: pd.DataFrame, exc: Exception) -> DataError:
    text = str(exc)
    if "NaN" in text:
        columns = columns_with_missing(frame)
        return DataError(
            f"{algorithm!r} does not accept missing values; feature(s) with some: "
            f"{', '.join(columns)} — impute them in the feature set or use "
            "gradient_boosting, which handles them",
            column=columns[0] if columns else None,
        )
    if "convert" in text or "string" in text:
        text_columns = [
            str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c].dtype)
        ]
        if text_columns:
            return DataError(
                f"{algorithm!r} needs numbers, but feature(s) {', '.join(text_columns)} are "
                "not numeric — encode them in the feature set (one_hot, ordinal)",
                column=text_columns[0],
            )
    return DataError(f"{algorithm!r} could not be fitted on this data: {text}")


class FittedEstimator(FittedLearner):
    """A fitted scikit-learn-style estimator and the feature names it was fitted on."""

    def __init__(
        self,
        *,
        algorithm: str,
        task: Task,
        estimator: Any,
        feature_names: list[str],
        label: str | None,
        encoded_classes: np.ndarray | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.task = task
        self.estimator = estimator
        self.feature_names = feature_names
        self.label = label
        self.encoded_classes = encoded_classes

    @property
    def capabilities(self) -> frozenset[Capability]:
        has_proba = self.task == "classification" and hasattr(self.estimator, "predict_proba")
        return frozenset({"proba"}) if has_proba else frozenset()

    @property
    def classes(self) -> list[Any]:
        if self.task != "classification":
            return super().classes
        known = (
            self.encoded_classes if self.encoded_classes is not None else self.estimator.classes_
        )
        return [item.item() if isinstance(item, np.generic) else item for item in known]

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        rows = select_features(frame, self.feature_names, self.algorithm)
        if not hasattr(self.estimator, "predict"):
            raise ConfigError(
                f"{self.algorithm!r} cannot assign new rows (it has no predict method)"
            )
        values = np.asarray(self.estimator.predict(rows))
        if self.encoded_classes is not None:
            values = self.encoded_classes[values.astype(int)]
        return pd.Series(values, index=frame.index, name=self.label or "prediction")

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        if "proba" not in self.capabilities:
            return super().predict_proba(frame)
        rows = select_features(frame, self.feature_names, self.algorithm)
        proba = np.asarray(self.estimator.predict_proba(rows), dtype=float)
        return pd.DataFrame(proba, index=frame.index, columns=self.classes)

    def learned(self) -> dict[str, Any]:
        classes = self.classes if self.task == "classification" else None
        out = estimator_learned(self.estimator, self.feature_names, classes)
        if classes is not None:
            out["classes"] = plain(classes)
        out["features"] = list(self.feature_names)
        return out
