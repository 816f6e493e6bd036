"""The label of a feature set's input rows: a column as ingested, or derived by an expression.

A derived label (``label: {name: late, expr: "delay > 15"}``, or a ``derive`` step whose
``name`` is the label) is computed here, from the combined and keyed input rows, before the
split and before any step: so a ``stratified`` split can use it, every stage that labels
rows (preparation, the gate re-scoring a champion on raw test rows) labels them the same
way, and nothing at serving needs it. The expression is the one ``derive`` and ``filter``
use (``features.steps.expressions``). A row missing any column the expression reads has no
label, rather than the value a comparison with a missing value would give (``False``).

In the pipeline (``features.pipeline``) the label goes along the steps beside the rows:
``apply_step`` hands it to the series steps that name it (which may fill it) and to no
other; ``check_label_use`` refuses a step that names it otherwise, and a lag of it after a
fill that reads later values; ``label_inputs`` are the columns a derived label reads, which
are no features.

Rows without a label stay in the feature set (their features serve online and score like
any); ``label.missing`` decides whether they are left out of the split's subsets
(``drop``: counted in the feature set's ``fitted_on.label``) or refuse the set (``error``).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError, DataError
from gristmill.features.steps.base import FeatureStep
from gristmill.features.steps.expressions import Expression
from gristmill.features.steps.gaps import LOOKS_AHEAD


def label_rows(spec: FeatureSetSpec, table: pa.Table, *, where: str = "") -> pa.Table:
    """``table`` with the derived label computed (as a column named like it, replacing an
    input column of that name); unchanged when the label is a column as ingested.

    ``ConfigError`` for an expression that is not allowed, ``DataError`` (naming the
    column) when it reads a column the rows do not have or fails on their values.
    """
    rule = spec.label_rule()
    if rule is None or rule.expr is None:
        return table
    source = f"{where}.{spec.label_source()}" if where else spec.label_source()
    try:
        expression = Expression.parse(rule.expr, step="label", option="expr")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    absent = [c for c in expression.columns if c not in table.column_names]
    if absent:
        raise DataError(
            f"{source}: the label {rule.name!r} is derived from column {absent[0]!r}, which the "
            f"input rows do not have (a label is computed from the rows as ingested, before "
            f"any step); columns: {', '.join(table.column_names)}",
            column=absent[0],
        )
    frame = table.select(list(expression.columns)).to_pandas()
    if not len(expression.columns):
        frame = pd.DataFrame(index=pd.RangeIndex(table.num_rows))
    try:
        values = expression.evaluate(frame, step="label")
    except DataError as exc:
        raise DataError(f"{source}: {exc}", column=exc.column) from exc
    unknown = frame.isna().any(axis=1).to_numpy() if len(expression.columns) else None
    array = pa.array(values.astype(object).where(~unknown, None) if unknown is not None else values)
    if rule.name in table.column_names:
        return table.set_column(table.schema.get_field_index(rule.name), rule.name, array)
    return table.append_column(rule.name, array)


def unlabelled(table: pa.Table, label: str | None) -> int:
    """How many rows of ``table`` have no value of ``label`` (null, or NaN)."""
    if label is None or label not in table.column_names:
        return 0
    column = table.column(label)
    kind = column.type
    if pa.types.is_floating(kind):
        return int(pc.sum(pc.is_null(column, nan_is_null=True)).as_py() or 0)
    return int(column.null_count)


def labelled_mask(table: pa.Table, label: str) -> pa.ChunkedArray:
    """True for each row of ``table`` that has a value of ``label``."""
    return pc.invert(pc.is_null(table.column(label), nan_is_null=True))


def apply_step(
    step: FeatureStep,
    data: pd.DataFrame,
    label: pd.Series | None,
    name: str | None,
    *,
    fit: bool,
) -> tuple[pd.DataFrame, pd.Series | None]:
    """``step`` (fitted first when ``fit``) applied to ``data``; the label goes along: to a
    step that reads it (which may fill it), else realigned to the rows the step left."""
    if label is not None and name is not None and step.reads_label(name):
        frame = data.assign(**{name: label.reindex(data.index)})
        if fit:
            step.fit(frame, frame[name])
        out = step.transform(frame)
        return out.drop(columns=[name]), out[name]
    if fit:
        step.fit(data, label)  # on ``data``'s rows: realigned after every step
    out = step.transform(data)
    if label is None or out.index is data.index:  # most steps keep the rows (and the index)
        return out, label
    return out, label.reindex(out.index)


def check_label_use(step: FeatureStep, label: str | None, before: list[FeatureStep]) -> None:
    """``ConfigError`` for a step that names the label but may not read it, and for a lag
    or window of the label after a fill that reads later values (a row's own label would
    reach its features)."""
    if label is None:
        return
    columns = getattr(step, "columns", None) or []
    if label in columns and not step.reads_label(label):
        raise ConfigError(
            f"it names the label {label!r}, which is kept out of the steps (only fill_gaps, "
            "lag and rolling may read it; a label made from other columns is label.expr)"
        )
    if step.reads_label(label) and step.step_name in ("lag", "rolling"):
        ahead = [
            s for s in before if s.reads_label(label) and getattr(s, "method", "") in LOOKS_AHEAD
        ]
        if ahead:
            raise ConfigError(
                f"it reads the label {label!r} after a fill_gaps with method "
                f"{getattr(ahead[0], 'method', '')!r}, which fills a gap from later values: "
                "a row's own label would reach its features; fill the label with ffill, or "
                "put the lag before the fill"
            )


def label_inputs(spec: FeatureSetSpec, prefix: str) -> tuple[str, ...]:
    """The columns a derived label reads, which are no features (``label.inputs: drop``)."""
    rule = spec.label_rule()
    if rule is None or rule.expr is None:
        return ()
    try:
        expression = Expression.parse(rule.expr, step="label", option="expr")
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{spec.label_source()}: {exc}") from exc
    if rule.inputs == "keep":
        return ()
    roles = {rule.name, spec.entity, spec.timestamp}
    return tuple(c for c in expression.columns if c not in roles)
