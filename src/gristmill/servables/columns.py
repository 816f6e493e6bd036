"""Request columns to the arrays a servable computes on, with errors that name the column.

A column arrives as any 1-D array (or list) of one row per value. Numbers become float64
(``None`` becomes NaN, booleans 0/1); text becomes an object array of ``str`` in which a
missing value (``None``, NaN) is ``MISSING_TEXT``. A column declared not nullable refuses a
missing value with a ``DataError`` naming the column and the row. Already-typed numpy
arrays pass without a copy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gristmill.errors import DataError
from gristmill.servables.port import InputColumn

_minimum = np.minimum.reduce

MISSING_TEXT = "\x00gristmill:missing"
"""What a missing text value is inside a graph (ONNX string tensors hold no null)."""


def column(columns: Mapping[str, Any], name: str, needed: Sequence[InputColumn]) -> Any:
    """``columns[name]``; ``DataError`` naming it (and what is needed) when it is absent."""
    try:
        return columns[name]
    except KeyError:
        names = ", ".join(c.name for c in needed)
        raise DataError(
            f"column {name!r} is missing; the model needs the columns: {names}", column=name
        ) from None


def numbers(values: Any, name: str, nullable: bool) -> np.ndarray:
    """``values`` as float64; ``DataError`` naming ``name`` for a value that is not a number."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        row = _first_bad(values)
        where = "" if row is None else f" (row {row}: {_shown(values, row)})"
        raise DataError(
            f"column {name!r} needs numbers; it holds a value that is not one{where}",
            column=name,
            row=row,
        ) from exc
    if array.ndim != 1:
        array = _flat(array, name)
    # The minimum is NaN exactly when a value is (NaN propagates; one C call, no mask):
    # a third of the cost of a mask and its reduction on the one-row path.
    if not nullable and math.isnan(_minimum(array, initial=0.0)):
        gaps = np.isnan(array)
        if gaps.any():
            row = int(np.argmax(gaps))
            raise DataError(
                f"column {name!r} may not be missing (row {row} is); the model has no value "
                "to put in its place",
                column=name,
                row=row,
            )
    return array


def texts(values: Any, name: str, nullable: bool) -> np.ndarray:
    """``values`` as an object array of text, a missing value as ``MISSING_TEXT``."""
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        array = _flat(array, name)
    out = np.empty(len(array), dtype=object)
    for index, value in enumerate(array):
        if is_missing(value):
            if not nullable:
                raise DataError(
                    f"column {name!r} may not be missing (row {index} is)",
                    column=name,
                    row=index,
                )
            out[index] = MISSING_TEXT
        elif isinstance(value, str):
            out[index] = value
        else:
            out[index] = str(value)
    return out


def is_missing(value: Any) -> bool:
    """``None``, or a float NaN (pandas' and numpy's missing value)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def same_length(name: str, length: int, expected: int) -> None:
    if length != expected:
        raise DataError(
            f"column {name!r} has {length} row(s), the others {expected}; give every column "
            "one value per row",
            column=name,
        )


def _flat(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim == 0:
        return array.reshape(1)
    raise DataError(
        f"column {name!r} must be one value per row; it has shape {array.shape}", column=name
    )


def _first_bad(values: Any) -> int | None:
    try:
        items = list(values)
    except TypeError:
        return None
    for index, value in enumerate(items):
        try:
            float(value if value is not None else "nan")
        except (ValueError, TypeError):
            return index
    return None


def _shown(values: Any, row: int) -> str:
    text = repr(list(values)[row])
    return text if len(text) <= 40 else text[:37] + "..."
