"""Large JSON bodies of numbers: read as float64 blocks, meaning the same as orjson's reading."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.server.json_numbers import LARGE, LONG, loads


def _padded(value: Any) -> bytes:
    """``value`` as JSON, padded with whitespace past the size ``loads`` reads by blocks."""
    body = orjson.dumps(value)
    return body + b" " * max(0, LARGE - len(body))


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_a_long_column_of_numbers_is_a_float64_block() -> None:
    values = [float(i) / 7 for i in range(1_000)]
    body = _padded({"columns": {"a": values, "b": list(range(1_000))}})
    read = loads(body)
    assert isinstance(read["columns"]["a"], np.ndarray)
    assert read["columns"]["a"].dtype == np.float64
    assert read["columns"]["a"].tolist() == values
    assert read["columns"]["b"].tolist() == [float(i) for i in range(1_000)]


@pytest.mark.parametrize("odd", [True, None, "41.2", [1.0], {"x": 1}])
def test_an_array_holding_anything_but_numbers_stays_a_list(odd: Any) -> None:
    values: list[Any] = [1.5] * 500
    values[317] = odd
    read = loads(_padded({"columns": {"a": values}}))
    assert read["columns"]["a"] == values  # a list, as orjson makes it: typed value by value


def test_arrays_under_listed_keys_keep_their_integers() -> None:
    keys = list(range(10**12, 10**12 + 200))
    read = loads(
        _padded({"entities": keys, "columns": {"a": [0.5] * 200}}), lists=frozenset({"entities"})
    )
    assert read["entities"] == keys
    assert all(type(k) is int for k in read["entities"])


def test_a_body_of_row_objects_is_read_by_orjson_as_it_is() -> None:
    rows = [{"a": float(i), "b": i} for i in range(2_000)]
    body = orjson.dumps({"rows": rows})
    assert len(body) > LARGE
    assert loads(body) == {"rows": rows}


def test_nested_arrays_are_not_flattened() -> None:
    nested = [[float(i), float(i + 1)] for i in range(LONG * 4)]
    read = loads(_padded({"data": nested}))
    assert _plain(read) == {"data": nested}


def test_keys_given_twice_or_holding_nul_read_as_orjson_reads_them() -> None:
    block = b"[" + b", ".join([b"1.5"] * 200) + b"]"
    twice = b'{"a": ' + block + b', "a": 7}' + b" " * LARGE
    assert loads(twice) == {"a": 7}
    nul = b'{"": 1, "\\u0000": false, "b": ' + block + b"}" + b" " * LARGE
    assert _plain(loads(nul)) == orjson.loads(nul)


def test_what_is_not_json_is_refused_as_orjson_refuses_it() -> None:
    broken = b'{"columns": {"a": [' + b"1.5, " * 5_000 + b"]}}"
    with pytest.raises(orjson.JSONDecodeError):
        loads(broken)
    with pytest.raises(orjson.JSONDecodeError):
        loads(b'{"a": [1e400' + b", 1" * 5_000 + b"]}")


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**53), 2**53)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=5), inner, max_size=5)
        | st.lists(
            st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000),
            min_size=LONG,
            max_size=LONG * 3,
        )
    ),
    max_leaves=40,
)


@given(_JSON)
@settings(max_examples=300, deadline=None)
def test_any_json_means_what_orjson_reads(value: Any) -> None:
    body = _padded(value)
    expected = orjson.loads(body)
    read = _plain(loads(body))
    assert read == _plain(_floats_where_blocks(expected, loads(body)))


def _floats_where_blocks(expected: Any, read: Any) -> Any:
    """``expected`` with the integers of arrays read as blocks made floats (a block is float64)."""
    if isinstance(read, np.ndarray):
        return [float(v) for v in expected]
    if isinstance(read, dict):
        return {k: _floats_where_blocks(expected[k], read[k]) for k in read}
    if isinstance(read, list):
        return [_floats_where_blocks(e, r) for e, r in zip(expected, read, strict=True)]
    return expected
