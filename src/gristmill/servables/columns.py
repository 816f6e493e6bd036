"""Request columns to the arrays a servable computes on, with errors that name the column.

A column arrives as any 1-D array (or list) of one row per value. Typing is strict, the
same for every protocol and for Python callers: a number column takes numbers (``None`` or
NaN for a missing value; a boolean, a text — even ``"41.2"`` —, an object or a list, and
an infinity are refused), a ``bool`` column true/false (or 0/1); a text column takes
strings (``None`` or NaN missing), never a number, boolean, object or list (JSON gives no
way to tell a category ``5`` from a typo; a typed numpy array, a file's column that Arrow
read as numbers, is written as text); a date read from a file (Arrow's ``date32``, which
pandas holds as text-typed objects) passes as it is, as it did when the model was fitted.
Numbers become float64; text becomes an object array of ``str`` in which a missing value is
``MISSING_TEXT``. A column declared not nullable refuses a missing value. Every refusal is
a ``DataError`` naming the column, the row and what was expected. Already-typed numpy
arrays pass without a copy.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gristmill.errors import DataError
from gristmill.servables.port import InputColumn

MISSING_TEXT = "\x00gristmill:missing"
"""What a missing text value is inside a graph (ONNX string tensors hold no null)."""


_DOT_MOST = 4_096


def all_finite(array: np.ndarray) -> bool:
    """Whether no value of the float ``array`` is NaN or infinite. A small array's dot
    product with itself is finite exactly when so (barring an overflow of huge values, which
    callers look at again): one BLAS call, a third of a ufunc reduction's fixed cost on the
    one-row path. ``np.vdot``, not ``ndarray.dot``: the latter checks the floating-point
    flags after the call and warns of the overflow (``1.5e308`` squared) in the server's
    log, for a value that is valid; ``vdot`` does not look (it costs ~0.1 µs more than
    ``dot``, an ``errstate`` around ``dot`` 1.5 µs). Above ``_DOT_MOST`` values BLAS may
    split the product over threads, whose start costs more on a busy machine than the mask
    (20,000 values: ~0.15-0.5 ms vs 6 µs)."""
    if array.size <= _DOT_MOST:
        flat = array.reshape(-1)  # a view: a matrix's dot product would be another thing
        return math.isfinite(_vdot(flat, flat))
    return bool(np.isfinite(array).all())


_vdot = np.vdot


def column(columns: Mapping[str, Any], name: str, needed: Sequence[InputColumn]) -> Any:
    """``columns[name]``; ``DataError`` naming it (and what is needed) when it is absent."""
    try:
        return columns[name]
    except KeyError:
        names = ", ".join(c.name for c in needed)
        raise DataError(
            f"column {name!r} is missing; the model needs the columns: {names}", column=name
        ) from None


NUMBER_TYPES = frozenset({float, int, type(None), np.float64, np.float32, np.int64, np.int32})
"""The Python types a number column takes as they are (a bool is an ``int`` to Python but
not to a number column; numpy's other scalar types are checked by ``_is_number_type``)."""


def numbers(values: Any, name: str, nullable: bool, *, booleans: bool = False) -> np.ndarray:
    """``values`` as float64; ``DataError`` naming ``name`` and the row for a value that is
    not a number (``booleans``: a ``bool`` column, which takes true/false too), or an
    infinity."""
    if not isinstance(values, np.ndarray) or values.dtype.kind == "O":
        _only_numbers(values, name, booleans)
    elif values.dtype.kind in "USV" or (values.dtype.kind == "b" and not booleans):
        _refuse(name, "numbers", values, 0 if len(values) else None)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        row = _first_bad(values)
        where = "" if row is None else f" (row {row}: {_shown(values, row)})"
        raise DataError(
            f"column {name!r} needs numbers; it holds a value that is not one{where}",
            column=name,
            row=row,
        ) from exc
    if array.ndim != 1:
        array = _flat(array, name)
    if not all_finite(array):
        _finite(array, name, nullable)
    return array


def _finite(array: np.ndarray, name: str, nullable: bool) -> None:
    infinite = np.isinf(array)
    if infinite.any():
        row = int(np.argmax(infinite))
        raise DataError(
            f"column {name!r} needs finite numbers; row {row} is {array[row]} (send null "
            "for a missing value)",
            column=name,
            row=row,
        )
    gaps = np.isnan(array)
    if not nullable and gaps.any():
        row = int(np.argmax(gaps))
        raise DataError(
            f"column {name!r} may not be missing (row {row} is); the model has no value "
            "to put in its place",
            column=name,
            row=row,
        )


def _only_numbers(values: Any, name: str, booleans: bool) -> None:
    """``DataError`` for the first value that is not a number (nor null): the kinds of
    value are gathered by ``set(map(type, …))`` (a loop in C), and only a column holding
    an unexpected kind is walked, to name its row."""
    try:
        kinds = set(map(type, values))
    except TypeError:
        return  # one value, not a list: numpy names it below
    if kinds <= NUMBER_TYPES:
        return
    for row, value in enumerate(values):
        if not _is_number(value, booleans):
            _refuse(name, "true or false" if booleans else "numbers", values, row)


def _is_number(value: Any, booleans: bool) -> bool:
    if isinstance(value, bool | np.bool_):
        return booleans
    return value is None or isinstance(value, int | float | np.integer | np.floating)


def _refuse(name: str, expected: str, values: Any, row: int | None) -> None:
    where = "" if row is None else f"; row {row} holds {_shown(values, row)}"
    raise DataError(
        f"column {name!r} takes {expected} (null for a missing value){where}",
        column=name,
        row=row,
    )


def text_values(values: Any, name: str, nullable: bool) -> None:
    """``DataError`` naming the row of the first value of a text column that is not a
    string (nor missing where the column may be). A typed numpy array (a file's column
    that Arrow read as numbers: codes, years) is not a JSON value of the wrong kind: it
    passes, and ``texts`` writes its values as text."""
    if not _objects(values):
        return
    try:
        kinds = set(map(type, values))
    except TypeError:
        return
    if kinds <= {str, np.str_, dt.date}:
        return
    for row, value in enumerate(values):
        if is_missing(value):
            if not nullable:
                raise DataError(
                    f"column {name!r} may not be missing (row {row} is)", column=name, row=row
                )
        elif not isinstance(value, str | dt.date):
            _refuse(name, "text (strings)", values, row)


def texts(values: Any, name: str, nullable: bool) -> np.ndarray:
    """``values`` as an object array of text, a missing value as ``MISSING_TEXT``."""
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        array = _flat(array, name)
    if _objects(values):  # a typed array (a file's numbers) is written as text below
        text_values(array, name, nullable)
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


def _objects(values: Any) -> bool:
    """Whether ``values`` hold Python objects (JSON values), not a typed numpy array."""
    return not isinstance(values, np.ndarray) or values.dtype.kind == "O"


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
    value = list(values)[row]
    if isinstance(value, np.generic):  # True, not np.True_
        value = value.item()
    elif isinstance(value, np.ndarray):  # [1], not array([1])
        value = value.tolist()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
