"""Checks of the data a learner is given, with errors that name the column and the fix."""

from __future__ import annotations

import pandas as pd

from gristmill.errors import DataError, EmptyInputError
from gristmill.learners.base import Task
from gristmill.learners.learned import plain


def check_features(frame: pd.DataFrame, algorithm: str, *, categories: bool = False) -> None:
    """``DataError`` naming the first column an estimator needing numbers cannot take.

    Numbers and booleans are accepted; with ``categories`` also pandas ``category`` columns
    (gradient boosting treats them as categorical).
    """
    if len(frame) == 0:
        raise EmptyInputError(f"{algorithm!r} was given no rows to fit on")
    for column in frame.columns:
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            continue
        if categories and isinstance(dtype, pd.CategoricalDtype):
            continue
        raise DataError(
            f"feature {column!r} is not numeric ({dtype}); {algorithm!r} needs numbers — "
            "encode it in the feature set (one_hot, ordinal) or drop it",
            column=str(column),
        )


def check_label(y: pd.Series | None, task: Task, algorithm: str) -> None:
    """``DataError`` when the label cannot train a model of ``task``."""
    if task == "clustering":
        return
    if y is None:
        raise DataError(f"{algorithm!r} learns {task} and needs a label; none was given")
    name = str(y.name) if y.name is not None else "label"
    missing = int(y.isna().sum())
    if missing and task != "forecasting":
        raise DataError(
            f"label {name!r} has {missing} missing value(s); drop or impute those rows "
            "in the feature set (a filter step)",
            column=name,
        )
    if task == "classification":
        classes = y.unique()
        if len(classes) < 2:
            only = f" ({plain(classes[0])!r})" if len(classes) else ""  # 1, not np.int64(1)
            raise DataError(
                f"label {name!r} has one class{only}; a classifier needs at least two",
                column=name,
            )
    elif not pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
        hint = "; for classes, set train.task: classification" if task == "regression" else ""
        raise DataError(f"label {name!r} is {y.dtype}, but {task} needs numbers{hint}", column=name)


def select_features(frame: pd.DataFrame, feature_names: list[str], algorithm: str) -> pd.DataFrame:
    """The columns a model was fitted on, in fitting order; ``DataError`` naming any missing."""
    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        raise DataError(
            f"{algorithm!r} was fitted on feature(s) missing here: {', '.join(missing)}",
            column=missing[0],
        )
    return frame[feature_names]


def columns_with_missing(frame: pd.DataFrame) -> list[str]:
    """The columns holding missing values, for errors from estimators that refuse NaN."""
    return [str(column) for column in frame.columns if frame[column].isna().any()]
