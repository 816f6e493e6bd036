"""Open Inference Protocol tensors: typed numpy columns from JSON or binary data, and back.

A model's inputs are its manifest's raw columns, one tensor each, of shape ``[rows]`` (or
``[rows, 1]``). A column's OIP datatype follows its manifest type (``DATATYPES``); a client
may send a narrower number type (``FP32`` for an ``FP64`` column, ``INT32`` for ``INT64``),
which is widened, but never text for a number or a number for text.

Binary tensor data (the extension ``tritonclient`` speaks) is little-endian, row-major; a
``BOOL`` element is one byte, a ``BYTES`` element a 4-byte little-endian length then its
bytes (UTF-8 text here). A missing value is ``null`` in JSON, NaN in a number tensor and an
empty string in a ``BYTES`` tensor (binary data has no null; an empty field of a CSV file is
missing the same way); a column declared not nullable refuses it later, in the servable.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn

import numpy as np
import orjson

from gristmill.servables import InputColumn, Predictions, ServableManifest
from gristmill.servables.columns import all_finite
from gristmill.servables.port import ColumnType
from gristmill.server.protocols.errors import RequestError

DATATYPES: dict[ColumnType, str] = {
    "float64": "FP64",
    "int64": "INT64",
    "bool": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
}
"""The OIP datatype of each manifest column type (a date-time travels as ISO 8601 text)."""

NUMERIC: dict[str, str] = {
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
INTEGERS = frozenset(k for k in NUMERIC if "INT" in k)

ACCEPTED: dict[ColumnType, frozenset[str]] = {
    "float64": frozenset(NUMERIC),
    "int64": frozenset(INTEGERS),
    "bool": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
    "datetime": frozenset({"BYTES"}),
}
"""The datatypes a column of each manifest type takes from a client."""

PREDICT = "predict"
PROBA = "predict_proba"
REJECTED = "rejected"
LENGTH = struct.Struct("<I")


class Tensor(NamedTuple):
    """One ``$request_input``: its data is in ``data`` (JSON) or ``binary_size`` bytes of
    the body after the JSON header. (A named tuple: one is made per column per request.)"""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Any = None
    binary_size: int | None = None

    @property
    def rows(self) -> int:
        return self.shape[0]


def parse_tensor(value: Any, index: int) -> Tensor:
    """The ``index``-th entry of ``inputs``, checked for the fields every input has."""
    if type(value) is not dict:
        raise RequestError(f"inputs[{index}] must be a JSON object (name, datatype, shape, data)")
    name = value.get("name")
    datatype = value.get("datatype")
    shape: Any = value.get("shape")
    if type(name) is not str or not name:
        raise RequestError(f"inputs[{index}] has no 'name'", field=f"inputs[{index}]")
    if type(datatype) is not str:
        raise RequestError(f"input {name!r} has no 'datatype' (e.g. FP64, BYTES)", field=name)
    if not _column_shape(shape):
        _refuse_shape(name, shape)
    parameters = value.get("parameters")
    size = None
    if parameters:
        if type(parameters) is not dict:
            raise RequestError(f"input {name!r}: 'parameters' must be a JSON object", field=name)
        size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise RequestError(f"input {name!r}: binary_data_size must be a byte count", field=name)
        if "data" in value:
            raise RequestError(
                f"input {name!r} has both 'data' and binary_data_size; send one", field=name
            )
        return Tensor(name, datatype.upper(), tuple(shape), None, size)
    if "data" not in value:
        raise RequestError(
            f"input {name!r} has no 'data' (nor binary_data_size for binary data)", field=name
        )
    return Tensor(name, datatype.upper(), tuple(shape), value["data"])


def _column_shape(shape: Any) -> bool:
    """``[rows]`` or ``[rows, 1]``, sizes being whole numbers, not booleans."""
    if type(shape) is not list or not shape or type(shape[0]) is not int or shape[0] < 0:
        return False
    return len(shape) == 1 or (len(shape) == 2 and type(shape[1]) is int and shape[1] == 1)


def _refuse_shape(name: str, shape: Any) -> NoReturn:
    if not isinstance(shape, list) or not all(
        type(d) is int and d >= 0
        for d in shape  # a bool is no size
    ):
        raise RequestError(
            f"input {name!r} needs a 'shape', a list of sizes such as [3] or [3, 1]", field=name
        )
    raise RequestError(
        f"input {name!r} has shape {shape}; a column is one value per row: shape [rows] "
        "or [rows, 1]",
        field=name,
    )


def check_datatype(tensor: Tensor, column: InputColumn) -> None:
    """``RequestError`` naming the tensor when its datatype cannot be the column's type."""
    if tensor.datatype not in ACCEPTED[column.type]:
        wanted = DATATYPES[column.type]
        raise RequestError(
            f"input {tensor.name!r} has datatype {tensor.datatype}; the model takes it as "
            f"{wanted} ({column.type})",
            field=tensor.name,
        )


def from_json(tensor: Tensor, column: InputColumn) -> np.ndarray:
    """The column of a tensor whose data came as JSON (flat, or nested as its shape)."""
    check_datatype(tensor, column)
    data = tensor.data
    if type(data) is np.ndarray and tensor.datatype in ("BYTES", "BOOL"):
        data = data.tolist()  # numbers read as a block (json_numbers): refused value by value
    try:
        array = np.asarray(data)
    except (ValueError, TypeError):
        raise RequestError(
            f"input {tensor.name!r}: 'data' is not a list of shape {list(tensor.shape)}",
            field=tensor.name,
        ) from None
    if array.ndim != 1:
        array = array.reshape(-1)
    _count(tensor, array.size)
    if tensor.datatype == "BYTES":
        return _texts(array, tensor)
    if tensor.datatype == "BOOL":
        return _bools(array, tensor)
    if array.dtype.kind in "fiu" and type(data) is list and _booleans_in(data):
        _not_numbers(tensor)  # numpy would have read true as 1.0
    return _numbers(array, tensor, column)


def _booleans_in(data: list[Any]) -> bool:
    """Whether JSON ``data`` (nested as its shape) holds a boolean: kinds gathered in C."""
    kinds = set(map(type, data))
    if bool in kinds:
        return True
    return list in kinds and any(_booleans_in(v) for v in data if type(v) is list)


def from_binary(tensor: Tensor, raw: memoryview, column: InputColumn) -> np.ndarray:
    """The column of a tensor whose data came as ``raw`` binary bytes."""
    check_datatype(tensor, column)
    count = tensor.shape[0]
    if tensor.datatype == "BYTES":
        return _unpack_texts(raw, count, tensor.name)
    if tensor.datatype == "BOOL":
        itemsize, dtype = 1, np.dtype(np.uint8)
    else:
        dtype = np.dtype(NUMERIC[tensor.datatype])
        itemsize = dtype.itemsize
    if len(raw) != count * itemsize:
        raise RequestError(
            f"input {tensor.name!r} has {len(raw)} bytes of binary data; shape "
            f"{list(tensor.shape)} of {tensor.datatype} takes {count * itemsize}",
            field=tensor.name,
        )
    array = np.frombuffer(raw, dtype=dtype)
    if tensor.datatype == "BOOL":
        return np.not_equal(array, 0)
    return _widened(array, column)


def _count(tensor: Tensor, size: int) -> None:
    expected = tensor.shape[0]  # [rows] or [rows, 1]
    if size != expected:
        raise RequestError(
            f"input {tensor.name!r} has {size} value(s); its shape {list(tensor.shape)} "
            f"says {expected}",
            field=tensor.name,
        )


def _numbers(array: np.ndarray, tensor: Tensor, column: InputColumn) -> np.ndarray:
    kind = array.dtype.kind
    if kind in "iu":
        return _widened(array, column)
    if array.size == 0:
        return _widened(np.zeros(0), column)
    if kind == "f":
        numbers = array.astype(np.float64, copy=False)
    elif kind == "O" and all(_number_or_none(v) for v in array.flat):
        numbers = array.astype(np.float64)  # None becomes NaN
    else:
        _not_numbers(tensor)
    if tensor.datatype in INTEGERS:
        _integral(numbers, tensor)
    return _finite(numbers, tensor.name)


def _not_numbers(tensor: Tensor) -> NoReturn:
    _refused(tensor, "numbers (null for a missing value)", _number_or_none)


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _refused(tensor: Tensor, wanted: str, accepted: Callable[[Any], bool]) -> NoReturn:
    """``RequestError``: ``tensor``'s data must be ``wanted``, naming the first element
    that is not (its index in the flat data, as ``element 1 is inf`` of an infinity)."""
    message = f"input {tensor.name!r} is {tensor.datatype}; its data must be {wanted}"
    index = _first_refused(tensor.data, accepted)
    if index is None:
        raise RequestError(message, field=tensor.name)
    value = _flat(tensor.data)[index]
    shown = orjson.dumps(value, default=repr).decode()
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise RequestError(f"{message}; element {index} is {shown}", field=tensor.name, row=index)


def _first_refused(data: Any, accepted: Callable[[Any], bool]) -> int | None:
    if type(data) is not list:
        return None  # read as a block of numbers (json_numbers), or a lone value
    return next((i for i, value in enumerate(_flat(data)) if not accepted(value)), None)


def _flat(data: list[Any]) -> list[Any]:
    """JSON data nested as its shape (``[[1], [2]]``), flat."""
    if list not in set(map(type, data)):
        return data
    return [item for value in data for item in (_flat(value) if type(value) is list else [value])]


def _integral(numbers: np.ndarray, tensor: Tensor) -> None:
    known = numbers[~np.isnan(numbers)]
    if known.size and not np.array_equal(known, np.floor(known)):
        raise RequestError(
            f"input {tensor.name!r} is {tensor.datatype}; its data must be whole numbers",
            field=tensor.name,
        )


def _widened(array: np.ndarray, column: InputColumn) -> np.ndarray:
    if column.type == "int64":
        return array.astype(np.int64, copy=False)
    return _finite(array.astype(np.float64, copy=False), column.name)


def _finite(numbers: np.ndarray, name: str) -> np.ndarray:
    """``numbers``, or a ``RequestError`` naming the first infinite element: an infinity is
    refused however it came (binary ``FP64``, JSON ``Infinity`` or ``1e400``), as in every
    protocol; NaN is a missing value. One dot product when all is finite."""
    if not all_finite(numbers):
        infinite = np.isinf(numbers)
        if infinite.any():
            row = int(np.argmax(infinite))
            raise RequestError(
                f"input {name!r}: element {row} is {numbers[row]}; numbers must be finite "
                "(NaN or null for a missing value)",
                field=name,
            )
    return numbers


def _bools(array: np.ndarray, tensor: Tensor) -> np.ndarray:
    if array.dtype.kind == "b":
        return array
    if array.dtype.kind == "O" and all(v is None or isinstance(v, bool) for v in array.flat):
        # a missing value: NaN in a numeric column, which a non-nullable column refuses
        return np.array([np.nan if v is None else float(v) for v in array.flat])
    if array.size == 0:
        return np.zeros(0, dtype=bool)
    _refused(tensor, "true or false", lambda v: v is None or isinstance(v, bool))


def _texts(array: np.ndarray, tensor: Tensor) -> np.ndarray:
    # numpy writes ["Dream", 5] as two texts: the JSON values' kinds are looked at first
    textual = type(tensor.data) is not list or set(map(type, _flat(tensor.data))) <= TEXT_KINDS
    if array.dtype.kind == "U" and textual:
        return _blank_missing(array.astype(object))
    if array.size == 0:
        return np.empty(0, dtype=object)
    if array.dtype.kind == "O" and all(_text_or_none(v) for v in array.flat):
        return _blank_missing(array)
    _refused(tensor, "strings (null for a missing value)", _text_or_none)


TEXT_KINDS = frozenset({str, type(None)})


def _text_or_none(value: Any) -> bool:
    return type(value) in TEXT_KINDS


def _blank_missing(texts: np.ndarray) -> np.ndarray:
    """An empty text is a missing value (``None``)."""
    texts[texts == ""] = None
    return texts


def _unpack_texts(raw: memoryview, count: int, name: str) -> np.ndarray:
    out = np.empty(count, dtype=object)
    offset, end = 0, len(raw)
    for index in range(count):
        if offset + 4 > end:
            raise RequestError(
                f"input {name!r}: its binary data ends before element {index} of {count} "
                "(each BYTES element is a 4-byte length then its bytes)",
                field=name,
            )
        (length,) = LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise RequestError(
                f"input {name!r}: element {index} says {length} bytes; fewer are left",
                field=name,
            )
        try:
            out[index] = str(raw[offset : offset + length], "utf-8") if length else None
        except UnicodeDecodeError:
            raise RequestError(
                f"input {name!r}: element {index} is not UTF-8 text", field=name
            ) from None
        offset += length
    if offset != end:
        raise RequestError(
            f"input {name!r}: {end - offset} byte(s) of binary data follow its {count} element(s)",
            field=name,
        )
    return out


# --- outputs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One ``$response_output`` before it is written: name, datatype, shape, typed values."""

    name: str
    datatype: str
    shape: list[int]
    values: np.ndarray


def value_datatype(manifest: ServableManifest) -> str:
    """The datatype of ``predict``: the classes' type for a classifier; INT64 for a cluster
    id; FP64 for a number or forecast."""
    if manifest.classes:
        classes = manifest.classes
        if all(isinstance(c, bool | np.bool_) for c in classes):
            return "BOOL"
        if all(isinstance(c, int | np.integer) for c in classes):
            return "INT64"
        if all(isinstance(c, float | np.floating | int | np.integer) for c in classes):
            return "FP64"
        return "BYTES"
    return "INT64" if manifest.output == "cluster" else "FP64"


def output_names(manifest: ServableManifest) -> list[str]:
    """What the model answers: ``predict``, and ``predict_proba`` for a classifier with
    per-class probabilities."""
    if manifest.output == "probabilities" and manifest.classes:
        return [PREDICT, PROBA]
    return [PREDICT]


def outputs_of(manifest: ServableManifest, predictions: Predictions) -> dict[str, Output]:
    """Every output of ``predictions``; ``rejected`` (BOOL) only when a row was rejected by a
    filter step (its ``predict`` value is then a blank: NaN, 0, false or "")."""
    rows = len(predictions.values)
    datatype = value_datatype(manifest)
    rejected = predictions.rejected
    values = _typed(predictions.values, datatype, rejected)
    found = {PREDICT: Output(PREDICT, datatype, [rows], values)}
    if predictions.probabilities is not None and PROBA in output_names(manifest):
        proba = np.ascontiguousarray(predictions.probabilities, dtype=np.float64)
        found[PROBA] = Output(PROBA, "FP64", [rows, proba.shape[1]], proba)
    if rejected is not None and rejected.any():
        found[REJECTED] = Output(REJECTED, "BOOL", [rows], np.asarray(rejected, dtype=bool))
    return found


def _typed(values: np.ndarray, datatype: str, rejected: np.ndarray | None) -> np.ndarray:
    if rejected is not None and rejected.any():
        blank: Any = {"FP64": np.nan, "INT64": 0, "BOOL": False, "BYTES": ""}[datatype]
        values = np.where(rejected, blank, values)
    if datatype == "BYTES":
        return np.array(["" if v is None else str(v) for v in values], dtype=object)
    if datatype == "FP64":
        return np.ascontiguousarray(values, dtype=np.float64)
    if datatype == "INT64":
        return np.ascontiguousarray(values, dtype=np.int64)
    return np.ascontiguousarray(values, dtype=bool)


def json_data(output: Output) -> Any:
    """The ``data`` of an output in JSON: flat, row-major (orjson writes numpy arrays)."""
    if output.datatype == "BYTES":
        return output.values.tolist()
    return output.values.reshape(-1)


def binary_data(output: Output) -> bytes:
    """The output's binary tensor data."""
    if output.datatype == "BYTES":
        return pack_texts(output.values)
    dtype = {"FP64": "<f8", "INT64": "<i8", "BOOL": "|b1"}[output.datatype]
    return np.ascontiguousarray(output.values, dtype=dtype).tobytes()


def pack_texts(values: Sequence[Any] | np.ndarray) -> bytes:
    """BYTES elements: each a 4-byte little-endian length then its UTF-8 bytes."""
    parts = []
    for value in values:
        encoded = value if isinstance(value, bytes) else str(value).encode()
        parts.append(LENGTH.pack(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)
