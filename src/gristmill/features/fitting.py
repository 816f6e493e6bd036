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

A pipeline with series steps (lags, rolling windows, gap filling: a row's features read
other rows) computes each subset on its own (ADR 27): a training row's lag never reads a
test row, nor a test row's a training row — as a batch at serving is computed from its own
rows. So the split must keep a series' rows together in time: ``sequential``, ``time``,
``group`` (series by group) or ``custom``; one that scatters them is refused.

Rows whose label is missing (after any step filling it) are in no subset: ``label.missing:
drop`` leaves them out and counts them, ``error`` refuses the set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.features import FeatureSetSpec
from gristmill.core.tasks import TaskChoice, label_task
from gristmill.errors import ConfigError, DataError
from gristmill.features.labels import unlabelled
from gristmill.features.pipeline import FeaturePipeline, FittedFeaturePipeline
from gristmill.features.rows import (
    keyed_frame,
    keyed_table,
    name_added_rows,
    transform_keyed,
    without_row_id,
)

SERIES_SPLITS = ("sequential", "time", "group", "custom")
"""Split strategies that keep a series' rows together in time (series steps need one)."""


@dataclass(frozen=True)
class FitPlan:
    """The rows to fit on (``train``: the training subset, every column, key included),
    ``subsets`` (each subset's positions in the table split, in the subset's order) and
    ``record``, called with the computed feature rows (and, when they were computed subset
    by subset, each subset's positions among them): it records the split by key and
    returns what the feature set keeps of it (its ``fitted_on``)."""

    train: pa.Table
    record: Callable[[pa.Table, Mapping[str, Any] | None], dict[str, Any]]
    subsets: Mapping[str, Any] = field(default_factory=dict)


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
    label = spec.label_column
    if task is None and pipeline.selects_by_label and label and label in table.column_names:
        task = label_task(table.column(label), label)
    if split is not None and pipeline.reads_rows:
        check_series_split(name, str(split.identity.get("strategy")))
    plan = None if split is None else split.decide(feature_set_id, table, keys)
    rows = table if plan is None else plan.train
    try:
        fitted = pipeline.fit_table(without_row_id(rows), task=task)
    except ValueError as exc:  # e.g. selection on too few rows: the data, not a glitch
        raise DataError(
            f"feature set {name!r} cannot be fitted on {rows.num_rows} row(s): {exc}"
        ) from exc
    parts = None
    gaps: dict[str, int] | None = {} if pipeline.reads_rows else None
    if plan is not None and pipeline.reads_rows and plan.subsets:
        features, parts = _by_subset(fitted, table, plan.subsets, gaps)
    else:
        features = transform_keyed(fitted, table, gaps)
    features = name_added_rows(features)
    if features.num_rows == 0:
        raise DataError(f"feature set {name!r}: every row was filtered out; check its filters")
    labels = _label_count(spec, features)
    if plan is None:
        fitted_on = {"subset": "all", "rows": rows.num_rows, "key": keys}
    else:
        fitted_on = {**plan.record(features, parts), "key": keys}
    return fitted, features, {**fitted_on, **labels, **_series_gaps(gaps, features)}


def check_series_split(name: str, strategy: str) -> None:
    """``ConfigError`` when feature set ``name``, whose pipeline has series steps, is split
    by a ``strategy`` that scatters a series' rows between the subsets."""
    if strategy in SERIES_SPLITS:
        return
    raise ConfigError(
        f"features.{name}: its fill_gaps, lag or rolling steps read the rows before each row, "
        f"but split.strategy {strategy!r} scatters a series' rows between train and test; use "
        "sequential or time (or group, one series per group; each subset is computed on its "
        "own, so nothing crosses the split)"
    )


def _series_gaps(gaps: dict[str, int] | None, features: pa.Table) -> dict[str, Any]:
    """``{"series_gaps": …}`` for ``fitted_on``: per column a lag or window made, the rows it
    had no value for (``made``: the first rows of each series, and rows after a gap) and how
    many of them the feature set still holds missing (``missing``: none once a later step
    imputed them; a column selection dropped is left out)."""
    made = {name: count for name, count in (gaps or {}).items() if count}
    if not made:
        return {}
    missing = {
        name: features.column(name).null_count
        + (
            int(pc.sum(pc.is_nan(features.column(name))).as_py() or 0)
            if pa.types.is_floating(features.column(name).type)
            else 0
        )
        for name in made
        if name in features.column_names
    }
    return {"series_gaps": {"made": made, "missing": missing}}


def _by_subset(
    fitted: FittedFeaturePipeline,
    table: pa.Table,
    subsets: Mapping[str, Any],
    gaps: dict[str, int] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """The features of each subset computed from its own rows, one subset after another
    (in subset order), and each subset's positions among them."""
    frames, parts, start = [], {}, 0
    for subset, positions in subsets.items():
        if len(positions) == 0:
            continue
        frame = keyed_frame(fitted, table.take(pa.array(positions, pa.int64())), gaps)
        frames.append(frame)
        parts[subset] = np.arange(start, start + len(frame), dtype=np.int64)
        start += len(frame)
    joined = pd.concat(frames, ignore_index=True) if frames else keyed_frame(fitted, table, gaps)
    return keyed_table(joined), parts


def _label_count(spec: FeatureSetSpec, features: pa.Table) -> dict[str, Any]:
    """``{"label": …}`` for the feature set's ``fitted_on``: the rows without a label, left
    out of the subsets; ``DataError`` when there are some and ``label.missing`` is error."""
    rule = spec.label_rule()
    if rule is None:
        return {}
    missing = unlabelled(features, rule.name)
    if missing and rule.missing == "error":
        raise DataError(
            f"{missing:,} of {features.num_rows:,} rows have no label "
            f"{rule.name!r} (label.missing is error); fill or filter them, or set "
            "label.missing: drop to leave them out of training and evaluation",
            column=rule.name,
        )
    described = {"name": rule.name, "missing": rule.missing, "unlabelled": missing}
    if rule.expr is not None:
        described["expr"] = rule.expr
    return {"label": described}
