"""Split strategies: each assigns the rows of a table to train / validation / test.

Sizes are counted in *units* — rows, or groups for ``group``. A share (a float) is rounded
half up: ``test = round(test_size · units)``, ``validation = round(validation_size ·
units)``; a count (an int) is taken as it is (at most the units there are); train gets the
rest. (Rounding, not ceiling, so a fixed ratio can leave a small table's subset empty,
which the split then reports.) Every seeded strategy draws from ``numpy.random.default_rng``
or scikit-learn with the same seed, so one seed always gives one assignment.

* ``sequential``: the first rows train, then validation, the last rows test (source order).
* ``shuffled``: a seeded permutation cut into subsets; rows come in permuted order.
* ``random``: the same assignment as ``shuffled`` with that seed, rows in source order.
* ``stratified``: like ``random``, with each class of the label in every subset in the
  proportion it has in the table (scikit-learn's ``train_test_split(stratify=)``).
* ``time``: ordered by ``column`` (a stable sort), the earliest rows train, the latest test.
* ``group``: whole groups of ``column`` (a null is a group) go to one subset; source order.
* ``custom``: a function of the table returns each row's subset name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.model_selection import train_test_split

from gristmill.core.imports import import_object, split_import_path
from gristmill.errors import ConfigError, DataError
from gristmill.segregation.result import SUBSETS, Rows, Subset

CustomSplit = Callable[[pa.Table], Any]
"""A function of the table returning one subset name per row (a sequence or an array)."""

Assignment = dict[Subset, Rows]
SEEDED = frozenset({"random", "shuffled", "stratified", "group"})
NEEDS_COLUMN = frozenset({"time", "group"})


@dataclass(frozen=True)
class Plan:
    """A checked split request: what ``assign`` needs besides the table."""

    strategy: str
    test_size: float | int
    validation_size: float | int | None
    seed: int | None = None
    column: str | None = None
    label: str | None = None
    custom: CustomSplit | None = None
    custom_name: str | None = None


def subset_sizes(units: int, plan: Plan) -> tuple[int, int, int]:
    """``(train, validation, test)`` units for ``units`` rows or groups."""
    test = min(units, _units(plan.test_size, units))
    wanted = 0 if plan.validation_size is None else _units(plan.validation_size, units)
    validation = min(units - test, wanted)
    return units - test - validation, validation, test


def assign(table: pa.Table, plan: Plan) -> Assignment:
    """Each subset's row indices, in the subset's order; validation only if asked for."""
    return _STRATEGIES[plan.strategy](table, plan)


def known_strategies() -> list[str]:
    return sorted(_STRATEGIES)


def class_codes(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """An integer code per row and the class each code stands for (null is a class, last)."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    encoded = pc.dictionary_encode(array)
    classes: list[Any] = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(classes))
        classes.append(None)
    codes: npt.NDArray[np.int64] = np.asarray(indices.to_numpy(), dtype=np.int64)
    return codes, classes


def resolve_custom(custom: CustomSplit | str) -> tuple[CustomSplit, str]:
    """The function and its import name (``module:qualname``) for the manifest."""
    if not isinstance(custom, str):
        module = getattr(custom, "__module__", None) or "?"
        name = getattr(custom, "__qualname__", None) or type(custom).__qualname__
        return custom, f"{module}:{name}"
    found = import_object(
        custom,
        what="custom split",
        kind="function",
        hint="name a function of the table returning each row's subset name",
    )
    if not callable(found):
        raise ConfigError(f"custom split {custom!r} is not a function but {type(found).__name__}")
    # One spelling per function (module:qualname), so the dotted form names the same split.
    parsed = split_import_path(custom)
    return found, custom if parsed is None else f"{parsed[0]}:{'.'.join(parsed[1])}"


def _sequential(table: pa.Table, plan: Plan) -> Assignment:
    return _cut(np.arange(table.num_rows, dtype=np.int64), plan)


def _shuffled(table: pa.Table, plan: Plan) -> Assignment:
    rng = np.random.default_rng(plan.seed)
    return _cut(rng.permutation(table.num_rows).astype(np.int64), plan)


def _random(table: pa.Table, plan: Plan) -> Assignment:
    return {name: np.sort(rows) for name, rows in _shuffled(table, plan).items()}


def _time(table: pa.Table, plan: Plan) -> Assignment:
    column = _column(table, plan)
    if column.null_count:
        raise DataError(
            f"split column {plan.column!r} has {column.null_count} rows without a time; "
            "fill or drop them before a time split"
        )
    if not _orderable(column.type):
        raise DataError(
            f"split column {plan.column!r} is {column.type}, which a time split cannot order; "
            "use a timestamp, date, number or ISO 8601 string column"
        )
    order = pc.sort_indices(table.select([plan.column]), [(str(plan.column), "ascending")])
    return _cut(np.asarray(order.to_numpy(), dtype=np.int64), plan)


def _group(table: pa.Table, plan: Plan) -> Assignment:
    codes, groups = class_codes(_column(table, plan))
    rng = np.random.default_rng(plan.seed)
    by_group = _cut(rng.permutation(len(groups)).astype(np.int64), plan)
    subset_of_group = np.empty(len(groups), np.int8)
    for name, chosen in by_group.items():
        subset_of_group[chosen] = SUBSETS.index(name)
    row_subset = subset_of_group[codes]
    return {name: np.flatnonzero(row_subset == SUBSETS.index(name)) for name in by_group}


def _stratified(table: pa.Table, plan: Plan) -> Assignment:
    label = str(plan.label)
    codes, classes = class_codes(table.column(label))
    counts = np.bincount(codes, minlength=len(classes))
    lonely = [repr(classes[code]) for code in np.flatnonzero(counts == 1)]
    if lonely:
        shown = ", ".join(lonely[:5]) + (", …" if len(lonely) > 5 else "")
        raise DataError(
            f"class {shown} of label {label!r} has only 1 row; a stratified split needs at "
            "least 2 rows per class: drop or merge the rare classes, or use strategy random"
        )
    _, validation, test = subset_sizes(table.num_rows, plan)
    rows = np.arange(table.num_rows, dtype=np.int64)
    rest, test_rows = _stratified_take(rows, codes, test, plan, label)
    assignment: Assignment = {"test": test_rows}
    if plan.validation_size is not None:
        rest, assignment["validation"] = _stratified_take(rest, codes, validation, plan, label)
    assignment["train"] = rest
    return {name: np.sort(assignment[name]) for name in SUBSETS if name in assignment}


def _stratified_take(
    rows: Rows, codes: npt.NDArray[np.int64], count: int, plan: Plan, label: str
) -> tuple[Rows, Rows]:
    """``(rest, taken)``: ``count`` of ``rows`` drawn with the classes' proportions."""
    empty = np.empty(0, np.int64)
    if count == 0:
        return rows, empty
    if count >= len(rows):
        return empty, rows
    try:
        rest, taken = train_test_split(
            rows, test_size=count, stratify=codes[rows], random_state=plan.seed
        )
    except ValueError as error:
        raise DataError(f"cannot stratify {len(rows)} rows by label {label!r}: {error}") from error
    return np.asarray(rest, np.int64), np.asarray(taken, np.int64)


def _custom(table: pa.Table, plan: Plan) -> Assignment:
    if plan.custom is None:
        raise ConfigError("the custom split needs a function: pass custom= to split()")
    names = _subset_names(plan.custom(table), table.num_rows)
    assignment: Assignment = {}
    for name in SUBSETS:
        rows = np.flatnonzero(pc.equal(names, name).to_numpy(zero_copy_only=False))
        if name != "validation" or rows.size:
            assignment[name] = rows.astype(np.int64)
    return assignment


def _subset_names(returned: Any, rows: int) -> pa.Array:
    try:
        names = returned if isinstance(returned, pa.Array | pa.ChunkedArray) else pa.array(returned)
        names = names.cast(pa.string())
    except (pa.ArrowException, TypeError) as error:
        raise DataError(
            f"the custom split returned {type(returned).__name__}, not one subset name per row"
        ) from error
    if isinstance(names, pa.ChunkedArray):
        names = names.combine_chunks()
    if len(names) != rows:
        raise DataError(f"the custom split returned {len(names)} subset names for {rows} rows")
    known = pc.fill_null(pc.is_in(names, value_set=pa.array(SUBSETS)), False)
    if not pc.all(known).as_py():
        unknown = pc.unique(names.filter(pc.invert(known))).to_pylist()[:5]
        raise DataError(
            f"the custom split returned subset names {unknown} for some rows; "
            f"known: {', '.join(SUBSETS)}"
        )
    return names


def _cut(order: Rows, plan: Plan) -> Assignment:
    train, validation, _ = subset_sizes(len(order), plan)
    assignment: Assignment = {"train": order[:train]}
    if plan.validation_size is not None:
        assignment["validation"] = order[train : train + validation]
    assignment["test"] = order[train + validation :]
    return assignment


def _column(table: pa.Table, plan: Plan) -> pa.ChunkedArray:
    return table.column(str(plan.column))


def _orderable(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_temporal(data_type)
        or pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
    )


def _units(size: float | int, units: int) -> int:
    """A subset's units: a count as it is, a share of ``units`` rounded half up."""
    return size if isinstance(size, int) else _round(size * units)


def _round(value: float) -> int:
    # Half up; the nudge keeps 0.7 · 5 = 3.4999999999999996 at 4, as written.
    return math.floor(value + 0.5 + 1e-9)


_STRATEGIES: dict[str, Callable[[pa.Table, Plan], Assignment]] = {
    "sequential": _sequential,
    "random": _random,
    "shuffled": _shuffled,
    "stratified": _stratified,
    "time": _time,
    "group": _group,
    "custom": _custom,
}
