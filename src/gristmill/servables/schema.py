"""A servable's input schema: the raw columns, their types, and which may be missing.

Types come from the dtypes the fitted pipeline recorded for its inputs (the ingested
schema). Whether a column may be missing is *asked of the model itself*: one held-out row
with that column blanked is scored natively; if the pipeline and learner refuse it (no
imputation before a learner that takes no NaN, a bucketing learned without gaps), or
answer it with NaN (a custom estimator whose arithmetic lets the gap through: its class
would be made up), the column is not nullable, and both kinds of servable refuse a missing
value there with an error naming it, where an ONNX graph would otherwise compute a silent
NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import pandas as pd

from gristmill.learners import FittedLearner
from gristmill.servables.port import ColumnType, InputColumn
from gristmill.training.bundle import Scorer


def column_type(dtype: str) -> ColumnType:
    """The manifest type of a pandas dtype name."""
    text = dtype.lower()
    if text.startswith("float"):
        return "float64"
    if text.startswith(("int", "uint")):
        return "int64"
    if text in ("bool", "boolean"):
        return "bool"
    if text.startswith("datetime"):
        return "datetime"
    return "string"


def raw_types(scorer: Scorer) -> dict[str, ColumnType]:
    """Every raw input of the version (a column a ``drop`` step removes unread aside)."""
    pipeline = scorer.pipeline
    if pipeline is None:
        return dict.fromkeys(scorer.feature_names, "float64")
    dropped = set(pipeline.dropped_inputs)
    return {c: column_type(d) for c, d in pipeline.inputs.items() if c not in dropped}


def nullable(scorer: Scorer, rows: pd.DataFrame, names: Iterable[str]) -> dict[str, bool]:
    """For each column of ``names``, whether the model scores a row where it is missing."""
    sample = rows.head(1).reset_index(drop=True)
    found: dict[str, bool] = {}
    for name in names:
        if name not in sample.columns:
            found[name] = True
            continue
        blank = sample.copy()
        blank[name] = None
        found[name] = _scores(scorer.learner, scorer.features, blank)
    return found


def blanked(rows: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Copies of the first row, each with one of ``names`` missing (for the parity check)."""
    sample = rows.head(1).reset_index(drop=True)
    copies = []
    for name in names:
        if name in sample.columns:
            blank = sample.copy()
            blank[name] = None
            copies.append(blank)
    return pd.concat(copies, ignore_index=True) if copies else sample.head(0)


def features_nullable(scorer: Scorer, features: pd.DataFrame) -> dict[str, bool]:
    """For each feature, whether the learner scores a row where it is missing."""
    sample = features.head(1).reset_index(drop=True)
    found: dict[str, bool] = {}
    for name in scorer.feature_names:
        blank = sample.copy()
        blank[name] = float("nan")
        found[name] = _scores(scorer.learner, lambda frame: frame, blank)
    return found


def _scores(
    learner: FittedLearner, features: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame
) -> bool:
    """Whether ``learner`` answers ``frame`` (its ``features``): without raising, and with
    no NaN among its predictions and probabilities."""
    try:
        computed = features(frame)
        answers = [learner.predict(computed)]
        if "proba" in learner.capabilities:
            answers.append(learner.predict_proba(computed))
    except Exception:  # any refusal (the learner's own ValueError too) means: not nullable
        return False
    return not any(bool(pd.isna(answer).to_numpy().any()) for answer in answers)


def columns(
    types: Mapping[str, ColumnType], nulls: Mapping[str, bool], *, online: bool = False
) -> tuple[InputColumn, ...]:
    return tuple(
        InputColumn(name, kind, nulls.get(name, True), online) for name, kind in types.items()
    )
