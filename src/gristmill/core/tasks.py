"""The learning task a label asks for, read off its type and cardinality: one rule for
training (``training.task``) and for the label-based feature selection that runs before it.

The label part of the rule (docs/spec.md, "How the task is chosen"):

* a text, boolean or dictionary label → classification;
* an integer label, or a float label whose values are all whole numbers, with at most
  ``MAX_INFERRED_CLASSES`` distinct values and at most one distinct value for every two
  rows → classification; otherwise → regression;
* any other float label → regression; any other type cannot be told: set ``train.task``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from gristmill.errors import ConfigError

MAX_INFERRED_CLASSES = 20
TASKS = ("classification", "regression", "clustering", "forecasting")


@dataclass(frozen=True)
class TaskChoice:
    """The task, and why: ``reason`` reads ``set by train.task`` or ``inferred: …``."""

    task: str
    reason: str

    def describe(self) -> str:
        """See ``describe_task``."""
        return describe_task(self.task, self.reason)


def describe_task(task: str, reason: str | None) -> str:
    """``regression (inferred: integer label 'price' with 3,412 distinct values, more than
    20; set train.task to override)`` — for summaries and errors."""
    if not reason:
        return task
    override = "; set train.task to override" if reason.startswith("inferred") else ""
    return f"{task} ({reason}{override})"


def label_task(column: pa.ChunkedArray | pa.Array, label: str) -> TaskChoice:
    """The task the rule gives for the values of ``label``; ``ConfigError`` naming
    ``train.task`` when its type cannot tell."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return TaskChoice("classification", f"inferred: text label {label!r}")
    if pa.types.is_boolean(kind):
        return TaskChoice("classification", f"inferred: boolean label {label!r}")
    if pa.types.is_dictionary(kind):
        return TaskChoice("classification", f"inferred: categorical label {label!r}")
    if pa.types.is_integer(kind):
        return _by_count(column, f"integer label {label!r}")
    if pa.types.is_floating(kind):
        if _whole(column):
            return _by_count(column, f"float label {label!r} of whole numbers")
        return TaskChoice("regression", f"inferred: float label {label!r} with fractional values")
    raise ConfigError(
        f"cannot tell the task from label {label!r} of type {kind}; set train.task to one of "
        f"{', '.join(TASKS)}"
    )


def distinct_values(column: pa.ChunkedArray | pa.Array) -> int:
    """How many distinct non-missing values ``column`` holds."""
    return int(pc.count_distinct(column, mode="only_valid").as_py())


def _by_count(column: pa.ChunkedArray | pa.Array, what: str) -> TaskChoice:
    distinct = distinct_values(column)
    values = f"{distinct:,} distinct value{'s' if distinct != 1 else ''}"
    rows = len(column) - column.null_count
    if distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= max(rows, 2):
        return TaskChoice("classification", f"inferred: {what} with {values}")
    if distinct > MAX_INFERRED_CLASSES:
        why = f"more than {MAX_INFERRED_CLASSES}"
    else:
        why = f"more than half of its {rows:,} rows"
    return TaskChoice("regression", f"inferred: {what} with {values}, {why}")


def _whole(column: pa.ChunkedArray | pa.Array) -> bool:
    valid = pc.drop_null(column)
    finite = bool(pc.all(pc.is_finite(valid)).as_py())
    return finite and bool(pc.all(pc.equal(valid, pc.floor(valid))).as_py())
