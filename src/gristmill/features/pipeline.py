"""The feature pipeline: the spec's steps fitted once, then applied to a batch or to one row.

``FeaturePipeline`` is the definition (immutable step templates); ``fit`` clones and fits
them into a ``FittedFeaturePipeline``, which computes features offline (``transform``, a
batch) and online (``transform_one``, one request) through the very same fitted objects, so
the two agree on every row.

The roles of columns:

* ``label`` — kept out of the steps; it is the ``y`` of selection and is passed through.
  Only series steps that name it (``fill_gaps``, ``lag``, ``rolling``) read it: then the
  label's *past* values are an input (a request carries them, its own rows left empty),
  a filled label is what the output carries, and no other step ever sees it.
* the columns a derived label reads (``label: {expr: …}``) — they hold the answer: never
  features, never inputs (unless ``label.inputs: keep``).
* ``entity`` and ``timestamp`` — steps may read them (``date_parts`` on the timestamp), but
  they are never features: the output carries their original values, untouched.
* every other column is input to the steps; what the last step leaves, selection narrows.

Rows: a ``filter`` step removes rows; ``fill_gaps`` with ``freq`` adds rows for the times a
series skips. Added rows get negative index labels (-1, -2, …); ``transform`` leaves them
out unless asked (``keep_added``): an answer has one row per row given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import clone

from gristmill.config.features import FeatureSetSpec, SelectSpec
from gristmill.core.tasks import TaskChoice
from gristmill.errors import ConfigError, DataError, EmptyInputError
from gristmill.features.labels import apply_step, check_label_use, label_inputs
from gristmill.features.selection import (
    LABEL_METHODS,
    FeatureSelection,
    keep_all,
    select_features,
)
from gristmill.features.steps import FeatureStep, make_step
from gristmill.features.steps.base import jsonable


@dataclass(frozen=True)
class FeaturePipeline:
    """The unfitted pipeline: step templates and the roles of the label, entity and time."""

    steps: tuple[FeatureStep, ...] = ()
    label: str | None = None
    entity: str | None = None
    timestamp: str | None = None
    select: SelectSpec | None = None
    where: str = ""
    label_inputs: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: FeatureSetSpec, *, where: str = "") -> FeaturePipeline:
        """The pipeline a ``features.<name>`` section describes; ``ConfigError`` names the step
        by its key path, ``where`` (``features.<name>``) first when given. A ``derive`` step
        named as the label is the label's expression (``features.labels``), not a step."""
        steps: list[FeatureStep] = []
        prefix = f"{where}." if where else ""
        label = spec.label_column
        lifted = spec.label_step()
        for index, entry in enumerate(spec.steps):
            if index == lifted:
                continue
            ((name, options),) = entry.items()
            try:
                step = make_step(name, options)
                check_label_use(step, label, steps)
            except ConfigError as exc:
                raise ConfigError(f"{prefix}steps[{index}] ({name}): {exc}") from exc
            steps.append(step)
        if spec.select is not None and spec.select.method in LABEL_METHODS and not label:
            raise ConfigError(
                f"{where}{': ' if where else ''}select method {spec.select.method!r} scores "
                "features against the label; "
                "set 'label' or choose method variance or list"
            )
        inputs = label_inputs(spec, prefix)
        return cls(tuple(steps), label, spec.entity, spec.timestamp, spec.select, where, inputs)

    @property
    def selects_by_label(self) -> bool:
        """Whether selection scores features against the label (so depends on the task)."""
        return self.select is not None and self.select.method in LABEL_METHODS

    @property
    def reads_rows(self) -> bool:
        """Whether a row's features depend on other rows (a series step)."""
        return any(step.reads_rows for step in self.steps)

    def fit(self, frame: pd.DataFrame, *, task: TaskChoice | None = None) -> FittedFeaturePipeline:
        """Fit every step in order on ``frame`` (each on what the previous one left), then select.

        Rows without a label are fitted on by no step and by no selection: they are left
        out once the last series step has run (it may fill the label), before the others.

        Label-based selection scores for ``task``, the task training uses; without it, for
        the task the label's type and cardinality give (``core.tasks``, training's rule).
        ``EmptyInputError`` for no rows; ``DataError`` for a missing role column, a step
        failing on the data, or a filter that leaves no row; ``ConfigError`` (naming the
        spec's ``select``) for a method that does not fit the task.
        """
        _check_frame(frame, "fit")
        roles = [r for r in (self.label, self.entity, self.timestamp) if r]
        _require(frame, roles, "its label, entity and timestamp columns")
        frame = frame.reset_index(drop=True)
        label = frame[self.label] if self.label else None
        hidden = [c for c in (self.label, *self.label_inputs) if c and c in frame.columns]
        data = frame.drop(columns=hidden) if hidden else frame
        inputs = {str(c): str(dtype) for c, dtype in data.dtypes.items()}
        if label is not None and any(step.reads_label(self.label) for step in self.steps):
            inputs[str(self.label)] = str(label.dtype)  # its past values are an input
        fitted: list[FeatureStep] = []
        # Rows without a label are fitted on by no step: they leave once the last series
        # step (which may fill the label, and reads the rows around each row) has run;
        # the steps after it work row by row, so the other rows' values do not change.
        last_series = max((i for i, s in enumerate(self.steps) if s.reads_rows), default=-1)
        if last_series < 0:
            data, label = _labelled(data, label, self.label, len(frame))
        for index, template in enumerate(self.steps):
            step = clone(template)
            try:
                data, label = apply_step(step, data, label, self.label, fit=True)
            except DataError as exc:
                raise self._label_input_read(index, step, exc) from exc
            fitted.append(step)
            if len(data) == 0:
                raise DataError(f"steps[{index}] ({step.display_name}) left no row to fit on")
            if index == last_series:
                data, label = _labelled(data, label, self.label, len(frame))
        features = data.drop(columns=[r for r in roles if r in data.columns])
        if self.label in features.columns:
            raise DataError(f"a step made a column named like the label {self.label!r}")
        selection = (
            keep_all(features)
            if self.select is None
            else self._select(self.select, features, label, task)
        )
        return FittedFeaturePipeline(
            steps=tuple(fitted),
            inputs=inputs,
            selection=selection,
            label=self.label,
            entity=self.entity,
            timestamp=self.timestamp,
            rows=(len(frame), len(data)),
        )

    def fit_table(
        self, table: pa.Table, *, task: TaskChoice | None = None
    ) -> FittedFeaturePipeline:
        """``fit`` on an Arrow table."""
        return self.fit(table.to_pandas(), task=task)

    def _label_input_read(self, index: int, step: FeatureStep, exc: DataError) -> DataError:
        """``exc``, explained when the step read a column the label is derived from."""
        column = getattr(exc, "column", None)
        if column is None or column not in self.label_inputs:
            return exc
        return DataError(
            f"steps[{index}] ({step.display_name}) reads column {column!r}, which the label "
            f"{self.label!r} is derived from: it holds the answer, so it is no feature; leave "
            "it out of the steps, or set label.inputs: keep to use it anyway",
            column=column,
        )

    def _select(
        self,
        select: SelectSpec,
        features: pd.DataFrame,
        label: pd.Series | None,
        task: TaskChoice | None,
    ) -> FeatureSelection:
        target = None if label is None else label.reindex(features.index)
        if target is not None and target.isna().any():  # rows without a label score nothing
            known = target.notna().to_numpy()
            features, target = features[known], target[known].infer_objects()
        try:
            return select_features(features, target, select, task=task)
        except ConfigError as exc:
            where = f"{self.where}.select" if self.where else "select"
            raise ConfigError(f"{where}: {exc}") from exc


def _labelled(
    data: pd.DataFrame, label: pd.Series | None, name: str | None, given: int
) -> tuple[pd.DataFrame, pd.Series | None]:
    """The rows of ``data`` that have a label (all of them without one); ``DataError``
    when none has."""
    if label is None:
        return data, label
    known = label.reindex(data.index).notna()
    if bool(known.all()):
        return data, label
    if not bool(known.any()):
        raise DataError(
            f"none of the {given:,} rows has a label {name!r}: there is nothing to fit on; "
            "check the label column (or its expr)",
            column=name,
        )
    kept = label.reindex(data.index)[known.to_numpy()]
    return data[known.to_numpy()], kept.infer_objects()  # a label with gaps was object


@dataclass(frozen=True)
class FittedFeaturePipeline:
    """Fitted steps and selection; computes the same features for a batch and for one row.

    ``inputs`` maps each input column (label excluded) to its dtype at fit: ``transform``
    needs them all and casts values to those dtypes first, so a JSON request computes as
    a typed batch does. ``rows`` is (rows fitted on, rows left after filters).
    """

    steps: tuple[FeatureStep, ...]
    inputs: Mapping[str, str]
    selection: FeatureSelection
    label: str | None = None
    entity: str | None = None
    timestamp: str | None = None
    rows: tuple[int, int] = (0, 0)

    @property
    def feature_names(self) -> list[str]:
        """The feature columns of the output, in order (entity, timestamp, label aside)."""
        return list(self.selection.kept)

    @property
    def label_history(self) -> bool:
        """Whether the label's past values are an input (a series step reads the label)."""
        return self.label is not None and self.label in self.inputs

    def transform(
        self,
        frame: pd.DataFrame,
        *,
        keep_added: bool = False,
        gaps: dict[str, int] | None = None,
    ) -> pd.DataFrame:
        """Features of every row ``frame`` has (a filtered-out row is absent), on its index.

        Columns: entity, timestamp (their values as given, in their dtype at fit), the
        features, and the label when ``frame`` has it (filled, when a step fills it).
        Numeric features are float64, so a batch whose integer column has gaps and a
        request without them agree. Series steps compute from ``frame``'s rows alone.
        ``keep_added``: rows ``fill_gaps`` added are kept (on negative index labels).
        ``gaps``, when given, adds up per column a lag or rolling step makes how many rows it
        left without a value (the first rows of each series), right after that step.
        ``DataError`` for a missing input column or a value of the wrong type.
        """
        _check_frame(frame, "transform")
        original = frame.index
        frame = frame.reset_index(drop=True)
        conformed = data = self._conform(frame)
        label = None
        if self.label_history:
            label, data = conformed[self.label], conformed.drop(columns=[str(self.label)])
        elif self.label and self.label in frame.columns:
            label = frame[self.label]
        for step in self.steps:
            data, label = apply_step(step, data, label, self.label, fit=False)
            if len(data) == 0:
                break
            if gaps is not None:
                for name in getattr(step, "produced", ()):
                    if name in data.columns:
                        gaps[name] = gaps.get(name, 0) + int(data[name].isna().sum())
        if not keep_added and len(data) and data.index.min() < 0:
            data = data[data.index >= 0]
        rows = data.index
        parts: dict[str, Any] = {}
        for role in (self.entity, self.timestamp):
            if role:
                parts[role] = _role(conformed, data, role)
        for name in self.feature_names:
            parts[name] = _feature(data[name]) if len(data) else pd.Series([], dtype=np.float64)
        if label is not None and self.label in frame.columns:
            parts[str(self.label)] = label.reindex(rows)
        result = pd.DataFrame(parts, index=rows, copy=False)  # no 2-D block copy of every column
        result.index = _original_index(original, rows)
        return result

    def transform_one(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The features of one request, as ``transform`` gives them for that row: entity,
        timestamp and the features, never the label (it is no input at scoring time; a
        record that carries it, such as a training row, has it left out — and a series step
        reading the label has no earlier row to read in a single record).

        ``None`` when a ``filter`` step rejects the row (the batch result has no such row).
        Missing values may be given as ``None``.
        """
        inputs = {k: v for k, v in record.items() if k != self.label}
        if self.label_history:
            inputs[str(self.label)] = None
        result = self.transform(pd.DataFrame([inputs]))
        if len(result) == 0:
            return None
        row: dict[str, Any] = result.to_dict(orient="records")[0]
        row.pop(str(self.label), None)
        return row

    def transform_table(self, table: pa.Table) -> pa.Table:
        """``transform`` on an Arrow table, to an Arrow table."""
        result = self.transform(table.to_pandas())
        return pa.Table.from_pandas(result, preserve_index=False)

    def describe(self) -> dict[str, Any]:
        """What was learned, as JSON-able data: per step, the selection, the features."""
        return {
            "label": self.label,
            "entity": self.entity,
            "timestamp": self.timestamp,
            "inputs": dict(self.inputs),
            "rows": {"fitted": self.rows[0], "after_steps": self.rows[1]},
            "steps": [{"index": index, **step.describe()} for index, step in enumerate(self.steps)],
            "features": self.feature_names,
            "selection": jsonable(self.selection.to_dict()),
        }

    @property
    def dropped_inputs(self) -> list[str]:
        """Input columns a ``drop`` step removes before any step could read them: rows to
        transform may leave them out (a request need not carry an id the model never sees).

        Conservative: the scan stops at the first step that does not name its columns (it
        may read any of them: a filter, a derived expression, a step over every column).
        """
        dropped: list[str] = []
        read: set[str] = set()
        for step in self.steps:
            columns = getattr(step, "read_columns", getattr(step, "columns", None))
            if columns is None:
                break
            if step.step_name == "drop":
                dropped += [c for c in columns if c in self.inputs and c not in read]
            else:
                read.update(columns)
        return dropped

    def _conform(self, frame: pd.DataFrame) -> pd.DataFrame:
        absent = [c for c in self.dropped_inputs if c not in frame.columns]
        if absent:  # removed by a drop step before anything reads them: any value will do
            frame = frame.assign(**dict.fromkeys(absent))
        if self.label_history and self.label not in frame.columns:
            raise DataError(
                f"the feature pipeline needs column {self.label!r}, the label's past values: "
                "its fill_gaps, lag or rolling steps read them (give the rows before those to "
                "predict, with their label; a row's own label is never read)",
                column=self.label,
            )
        _require(frame, self.inputs, "the columns it was fitted on")
        data = frame[list(self.inputs)]
        changed = {
            column: _cast(data[column], dtype, column)
            for column, dtype in self.inputs.items()
            if str(data[column].dtype) != dtype and column not in absent
        }
        return data.assign(**changed) if changed else data


def _role(conformed: pd.DataFrame, data: pd.DataFrame, role: str) -> pd.Series:
    """A role column's values for the rows ``data`` holds: as given, or (rows a step added)
    as the step wrote them."""
    rows = data.index
    values = conformed[role].reindex(rows)
    added = rows < 0
    if added.any() and role in data.columns:
        values[added] = data[role][added]
    return values


def _original_index(original: pd.Index, rows: pd.Index) -> pd.Index:
    """The caller's index of each row; an added row keeps its negative label."""
    if not len(rows) or rows.min() >= 0:
        return original[rows]
    return pd.Index([original[r] if r >= 0 else r for r in rows])


def _check_frame(frame: object, action: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"the feature pipeline can {action} a pandas DataFrame only")
    if len(frame) == 0:
        raise EmptyInputError(f"no rows to {action} the feature pipeline on")
    named = [c for c in frame.columns if not isinstance(c, str)]
    if named:
        raise DataError(f"column names must be text; got {named[0]!r}")


def _require(frame: pd.DataFrame, columns: Any, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"the feature pipeline needs column {missing[0]!r} ({what}); the data has: "
            f"{', '.join(map(str, frame.columns))}",
            column=missing[0],
        )


def _feature(values: pd.Series) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    return values.astype(np.float64) if numeric and values.dtype != np.float64 else values


def _cast(values: pd.Series, dtype: str, column: str) -> pd.Series:
    """``values`` as ``dtype``; an integer or boolean column with gaps becomes float/object."""
    target: Any = pd.api.types.pandas_dtype(dtype)
    if getattr(target, "kind", "") in ("b", "i", "u") and values.isna().any():
        target = np.float64 if target.kind != "b" else object
    try:
        return values.astype(target)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"column {column!r} holds a value that is not {dtype}: {exc}", column=column
        ) from exc
