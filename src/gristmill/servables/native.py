"""The native servable: the version's fitted pipeline and learner themselves, for what ONNX
cannot express (a custom step or estimator, a filter, date and text steps, ARIMA).

Columns are checked and typed as numpy arrays first (the same checks as the ONNX servable:
a missing column or value, a number that is not one, named). gristmill's feature steps and
learners are written against pandas, so the arrays then become **one** DataFrame per call,
built without copying them (``copy=False``); the pipeline and learner run on it once (the
features are computed once for both values and probabilities). That frame is the one
piece of pandas per request; it is why a native servable is slower than an ONNX one, and
the manifest's ``reason`` says so.

The inputs are the raw columns the kept features are computed from, as the ONNX form of
the same pipeline asks for (``compiling``): a column the pipeline carries but no feature
reads (the entity key, a timestamp) is not asked for, and is handed to the pipeline as
missing. A row the learner answers with NaN (a custom estimator's arithmetic on a gap the
compile-time check did not see) is a ``DataError`` naming the row and its missing
columns, never an answer: its class would be made up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gristmill.errors import DataError, GristmillError
from gristmill.servables.columns import (
    column,
    is_missing,
    numbers,
    same_length,
    text_values,
)
from gristmill.servables.onnx_servable import empty_predictions
from gristmill.servables.port import InputColumn, Predictions, ServableManifest
from gristmill.training.bundle import Scorer


class NativeServable:
    """A version served by its fitted objects (see the module docstring)."""

    def __init__(self, manifest: ServableManifest, scorer: Scorer) -> None:
        self._manifest = manifest
        self._scorer = scorer
        self._proba = manifest.output == "probabilities"
        pipeline = scorer.pipeline
        asked = {c.name for c in manifest.inputs}
        carried = () if pipeline is None else pipeline.inputs
        self._unread = tuple(c for c in carried if c not in asked)  # given as missing

    @property
    def manifest(self) -> ServableManifest:
        return self._manifest

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    def predict(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        frame = _frame(columns, self._manifest.inputs, self._unread)
        if len(frame) == 0:
            return empty_predictions(self._manifest)
        features = _guarded(lambda: self._scorer.features(frame))
        return self._answer(features, frame)

    def predict_features(self, columns: Mapping[str, np.ndarray]) -> Predictions:
        frame = _frame(columns, self._manifest.features)
        if len(frame) == 0:
            return empty_predictions(self._manifest)
        return self._answer(frame, frame)

    def _answer(self, features: pd.DataFrame, given: pd.DataFrame) -> Predictions:
        learner = self._scorer.learner
        rows = len(given)
        values = _guarded(lambda: learner.predict(features)).to_numpy()
        probabilities = (
            # a frame's block is column-major: answers are written row by row (orjson
            # refuses an array that is not C-contiguous)
            np.ascontiguousarray(
                _guarded(lambda: learner.predict_proba(features)).to_numpy(dtype=np.float64)
            )
            if self._proba
            else None
        )
        _answered(values, probabilities, features.index, given, self._manifest)
        if len(features) == rows:
            return Predictions(values, probabilities)
        # A filter step rejected some rows: they keep their place, without a prediction.
        positions = features.index.to_numpy()
        rejected = np.ones(rows, dtype=bool)
        rejected[positions] = False
        full = np.full(rows, None, dtype=object)
        full[positions] = values
        proba = None
        if probabilities is not None:
            proba = np.full((rows, probabilities.shape[1]), np.nan)
            proba[positions] = probabilities
        return Predictions(full, proba, rejected)


def _answered(
    values: np.ndarray,
    probabilities: np.ndarray | None,
    positions: pd.Index,
    given: pd.DataFrame,
    manifest: ServableManifest,
) -> None:
    """``DataError`` for the first row answered with NaN (a class or probabilities made of
    a gap), naming the row and the columns missing in it."""
    gaps = pd.isna(values) if values.dtype.kind in "fcO" else np.zeros(len(values), dtype=bool)
    if probabilities is not None and probabilities.size:
        gaps = gaps | np.isnan(probabilities).any(axis=1)
    if not gaps.any():
        return
    row = int(positions[int(np.argmax(gaps))])
    asked = {c.name for c in (*manifest.inputs, *manifest.features)}
    missing = [str(name) for name, gap in given.iloc[row].isna().items() if gap and name in asked]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise DataError(
            f"row {row} cannot be scored: {manifest.ref} answers it with no number (NaN) "
            f"because column(s) {names} are missing there, which it cannot do without; "
            "send a value",
            column=missing[0],
            row=row,
        )
    raise DataError(
        f"row {row} cannot be scored: {manifest.ref} answers it with no number (NaN); "
        "check its values are in the range the model was trained on",
        row=row,
    )


def _frame(
    columns: Mapping[str, Any], needed: Sequence[InputColumn], unread: Sequence[str] = ()
) -> pd.DataFrame:
    """One frame of the needed columns, typed, without copying them; the pipeline's
    ``unread`` inputs (no feature reads them) as missing."""
    arrays: dict[str, np.ndarray] = {}
    rows = -1
    for spec in needed:
        values = column(columns, spec.name, needed)
        if spec.type in ("float64", "int64", "bool"):
            array = numbers(values, spec.name, spec.nullable, booleans=spec.type == "bool")
        else:
            array = np.asarray(values, dtype=object).reshape(-1)
            objects = not isinstance(values, np.ndarray) or values.dtype.kind == "O"
            if spec.type == "string" and objects:  # JSON values: strings only
                text_values(array, spec.name, spec.nullable)
            elif not spec.nullable and any(is_missing(v) for v in array):
                raise DataError(f"column {spec.name!r} may not be missing", column=spec.name)
        if rows < 0:
            rows = len(array)
        same_length(spec.name, len(array), rows)
        arrays[spec.name] = array
    rows = max(rows, 0)
    for name in unread:
        arrays[name] = np.full(rows, None, dtype=object)
    return pd.DataFrame(arrays, copy=False, index=pd.RangeIndex(rows))


def _guarded(action: Any) -> Any:
    try:
        return action()
    except GristmillError:
        raise
    except Exception as exc:  # an estimator's complaint about the rows
        raise DataError(f"the model could not score these rows: {exc}") from exc
