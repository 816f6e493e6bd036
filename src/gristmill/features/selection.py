"""Feature selection: score every candidate column, keep the best, record why.

Methods (``SelectSpec.method``):

* ``chi2`` — chi-square against a categorical label. Chi-square needs non-negative values,
  so it scores a min-max scaled view of the features (the kept columns are not changed).
  A regression label is a ``ConfigError`` naming ``train.task``.
* ``mutual_info`` — mutual information with the label: ``mutual_info_classif`` for a
  classification, ``mutual_info_regression`` for a regression (seeded, so repeatable).
* ``variance`` — the variance of each column (no label needed); keeps columns whose variance
  is *above* ``threshold`` (default 0: constant columns go), as scikit-learn does.
* ``model`` — impurity importance of a random forest (100 trees, seed 0) fitted to the label.
* ``list`` — exactly the columns listed.

The task (classification or regression) is the one training uses: given as a
``TaskChoice`` (``train.task``, or inferred by preparation on every row), else read off the
label by the rule training uses (``core.tasks``: type and cardinality, so an integer price
with thousands of values is a regression). A forecasting task scores as a regression.

``k`` keeps the ``k`` best; ``threshold`` keeps the columns scoring at least it; both: the
``k`` best of those. Ties keep the earlier column. Kept columns stay in frame order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn import feature_selection, preprocessing
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from gristmill.config.features import SelectSpec
from gristmill.core.tasks import TaskChoice, label_task
from gristmill.errors import ConfigError, DataError

LABEL_METHODS = frozenset({"chi2", "mutual_info", "model"})
SEED = 0


@dataclass(frozen=True)
class FeatureSelection:
    """What selection kept and why: every candidate's ``scores`` and the ``kept`` columns.

    ``method`` is ``all`` when no selection ran. ``task`` is ``classification`` or
    ``regression`` for the methods that use the label, ``task_reason`` why, and ``note``
    names the scorer (``mutual_info_regression``, …).
    """

    method: str
    kept: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    k: int | None = None
    threshold: float | None = None
    task: str | None = None
    note: str = ""
    task_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; a score that is not a number (a constant column's chi2) is ``None``."""
        return {
            "method": self.method,
            "kept": list(self.kept),
            "scores": {c: s if math.isfinite(s) else None for c, s in self.scores.items()},
            "k": self.k,
            "threshold": self.threshold,
            "task": self.task,
            "task_reason": self.task_reason,
            "note": self.note,
        }


def keep_all(features: pd.DataFrame) -> FeatureSelection:
    """The selection that keeps every column."""
    return FeatureSelection(method="all", kept=[str(c) for c in features.columns])


def scoring_task(label: pd.Series, given: TaskChoice | None = None) -> TaskChoice:
    """The task label-based selection scores for: ``given`` (what training will use), else
    the rule of ``core.tasks`` read off ``label``; forecasting scores as a regression, and a
    clustering (which ignores the label) leaves the label to decide."""
    if given is not None and given.task in ("classification", "regression"):
        return given
    if given is not None and given.task == "forecasting":
        return TaskChoice("regression", given.reason)
    name = str(label.name) if label.name is not None else "label"
    return label_task(pa.Array.from_pandas(label), name)


def select_features(
    features: pd.DataFrame,
    label: pd.Series | None,
    spec: SelectSpec,
    *,
    task: TaskChoice | None = None,
) -> FeatureSelection:
    """Score the columns of ``features`` by ``spec.method`` and keep the best; a label-based
    method scores for ``task`` (see ``scoring_task``).

    ``ConfigError`` when the method needs a label and there is none, or for chi2 on a
    regression (naming ``train.task``); ``DataError`` when a column is not numeric or (for
    chi2, mutual_info) has missing values, naming it.
    """
    candidates = [str(c) for c in features.columns]
    if spec.method == "list":
        listed = spec.columns or []
        missing = [c for c in listed if c not in candidates]
        if missing:
            raise DataError(
                f"select 'list' names column {missing[0]!r}, which is not a feature; "
                f"features: {', '.join(candidates)}",
                column=missing[0],
            )
        kept = [c for c in candidates if c in set(listed)]
        return FeatureSelection(method="list", kept=kept, note="kept as listed")
    matrix = _numeric(features, allow_missing=spec.method in ("variance", "model"))
    choice: TaskChoice | None = None
    note = ""
    if spec.method == "variance":
        scores = _variance(matrix)
    else:
        if label is None:
            raise ConfigError(f"select method {spec.method!r} needs a label; set 'label'")
        labelled = label.notna().to_numpy()
        if not labelled.any():
            raise DataError("every row's label is missing; selection needs labelled rows")
        choice = scoring_task(label, task)
        matrix, target = matrix[labelled], label[labelled].to_numpy()
        scores, note = _supervised(spec.method, matrix, target, choice)
    kept = _keep(candidates, scores, spec)
    if not kept:
        raise DataError(
            f"select {spec.method!r} kept none of the {len(candidates)} features; "
            "lower 'threshold' or use 'k'"
        )
    return FeatureSelection(
        method=spec.method,
        kept=kept,
        scores=dict(zip(candidates, (float(s) for s in scores), strict=True)),
        k=spec.k,
        threshold=spec.threshold,
        task=None if choice is None else choice.task,
        note=note,
        task_reason=None if choice is None else choice.reason,
    )


def _numeric(features: pd.DataFrame, *, allow_missing: bool) -> np.ndarray[Any, Any]:
    for column in features.columns:
        values = features[column]
        if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            raise DataError(
                f"selection scores numbers, but feature {column!r} holds {values.dtype} values; "
                "encode it first (one_hot, ordinal) or drop it",
                column=str(column),
            )
        if not allow_missing and values.isna().any():
            raise DataError(
                f"feature {column!r} has missing values; impute it before selection",
                column=str(column),
            )
    matrix: np.ndarray[Any, Any] = features.to_numpy(dtype=np.float64)
    return matrix


def _variance(matrix: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(
        feature_selection.VarianceThreshold(threshold=0.0).fit(matrix).variances_, dtype=np.float64
    )


def _supervised(
    method: str, matrix: np.ndarray[Any, Any], target: np.ndarray[Any, Any], choice: TaskChoice
) -> tuple[np.ndarray[Any, Any], str]:
    classes = choice.task == "classification"
    if method == "chi2":
        if not classes:
            raise ConfigError(
                f"select method 'chi2' scores features against classes, but the task is "
                f"{choice.task} ({choice.reason}); use method mutual_info or model for a "
                "quantity, or set train.task: classification if the label holds classes"
            )
        view = preprocessing.MinMaxScaler().fit_transform(matrix)
        scores, _ = feature_selection.chi2(view, target)
        return np.asarray(scores, dtype=np.float64), "chi2 scored on a min-max scaled view"
    if method == "mutual_info":
        score = (
            feature_selection.mutual_info_classif
            if classes
            else feature_selection.mutual_info_regression
        )
        values = score(matrix, target, random_state=SEED)
        return np.asarray(values, dtype=np.float64), f"{score.__name__}, seed {SEED}"
    forest_type = RandomForestClassifier if classes else RandomForestRegressor
    forest = forest_type(n_estimators=100, random_state=SEED, n_jobs=1).fit(matrix, target)
    note = f"{forest_type.__name__}, 100 trees, seed {SEED}"
    return np.asarray(forest.feature_importances_, dtype=np.float64), note


def _keep(candidates: list[str], scores: np.ndarray[Any, Any], spec: SelectSpec) -> list[str]:
    ranked = np.where(np.isnan(scores), -np.inf, scores)
    eligible = list(range(len(candidates)))
    if spec.method == "variance":
        threshold = spec.threshold or 0.0
        eligible = [i for i in eligible if ranked[i] > threshold]
    elif spec.threshold is not None:
        eligible = [i for i in eligible if ranked[i] >= spec.threshold]
    if spec.k is not None:
        # A stable sort on the negated score keeps the earlier column among equals.
        eligible = sorted(eligible, key=lambda i: -ranked[i])[: spec.k]
    chosen = set(eligible)
    return [c for i, c in enumerate(candidates) if i in chosen]
