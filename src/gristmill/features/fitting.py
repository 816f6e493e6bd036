"""Fitting a feature pipeline on the rows it may learn from, then computing every row.

Whatever a pipeline learns (imputation statistics, scaling, vocabularies, label-based
selection) must not see the rows a model is later tested on. So when a feature set is the
one training uses, the split is decided *before* fitting (ADR 8): a ``FitSplit`` (made by
the training layer, which knows the split spec) takes the combined, keyed input rows and
says which of them are the training subset; the pipeline is fitted on those rows only and
then transforms all of them; the split is recorded by row key once the feature rows are
known (a row a ``filter`` step removed is in no subset). A feature set no model trains on
has no test rows: it is fitted on all its rows.

Label-based selection scores for the task training uses: the one the spec sets (given as
``task``: ``train.task``, or forecasting), else the one ``core.tasks``'s rule (training's)
reads off the label of *every* input row, as training reads it off every feature row, not
off the training subset the pipeline sees.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.core.tasks import TaskChoice, label_task
from gristmill.errors import DataError
from gristmill.features.pipeline import FeaturePipeline, FittedFeaturePipeline
from gristmill.features.rows import transform_keyed, without_row_id


@dataclass(frozen=True)
class FitPlan:
    """The rows to fit on (``train``: the training subset, every column, key included) and
    ``record``, called with the computed feature rows: it records the split by key and
    returns what the feature set keeps of it (its ``fitted_on``)."""

    train: pa.Table
    record: Callable[[pa.Table], dict[str, Any]]


class FitSplit(Protocol):
    """Decides, before anything is fitted, which rows of a feature set the pipeline learns from.

    ``identity`` (JSON-able) is part of the feature set's id: another split means other
    fitted state, so another feature set. ``decide`` may raise ``ConfigError`` (a split
    that cannot work) or ``DataError`` (data that does not fit it).
    """

    @property
    def identity(self) -> Mapping[str, Any]: ...

    def decide(self, feature_set_id: str, table: pa.Table, keys: list[str]) -> FitPlan: ...


def fit_features(
    name: str,
    spec: FeatureSetSpec,
    table: pa.Table,
    keys: list[str],
    *,
    feature_set_id: str,
    split: FitSplit | None = None,
    task: TaskChoice | None = None,
) -> tuple[FittedFeaturePipeline, pa.Table, dict[str, Any]]:
    """Fit ``spec``'s pipeline on the training rows of keyed ``table`` (all rows without a
    ``split``), compute the features of every row (key kept) and say what it was fitted on.
    Label-based selection scores for ``task`` when given (see the module docstring).

    ``DataError`` for data the steps cannot be fitted on, or when every row was filtered out;
    ``ConfigError`` for a selection that does not fit the task.
    """
    pipeline = FeaturePipeline.from_spec(spec, where=f"features.{name}")
    label = spec.label
    if task is None and pipeline.selects_by_label and label and label in table.column_names:
        task = label_task(table.column(label), label)
    plan = None if split is None else split.decide(feature_set_id, table, keys)
    rows = table if plan is None else plan.train
    try:
        fitted = pipeline.fit_table(without_row_id(rows), task=task)
    except ValueError as exc:  # e.g. selection on too few rows: the data, not a glitch
        raise DataError(
            f"feature set {name!r} cannot be fitted on {rows.num_rows} row(s): {exc}"
        ) from exc
    features = transform_keyed(fitted, table)
    if features.num_rows == 0:
        raise DataError(f"feature set {name!r}: every row was filtered out; check its filters")
    if plan is None:
        return fitted, features, {"subset": "all", "rows": rows.num_rows, "key": keys}
    return fitted, features, {**plan.record(features), "key": keys}
