"""A split's membership by row key: recorded for one table, found again in another."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gristmill.errors import DataError
from gristmill.segregation import keyed_membership, membership_keys, positions_by_key


def test_membership_by_key_finds_the_rows_whatever_their_order_and_string_type() -> None:
    table = pa.table({"id": ["r0", "r1", "r2", "r3", "r4"], "x": [0, 1, 2, 3, 4]})
    rows = {"train": np.array([0, 2, 4]), "test": np.array([1, 3])}
    membership = keyed_membership(table, rows, ["id"])
    assert membership_keys(membership) == ["id"]
    assert membership.column("subset").type == pa.dictionary(pa.int8(), pa.string())

    # the same rows read back reversed, one of them gone (a filter), as large_string
    other = pa.table(
        {"id": pa.array(["r4", "r3", "r1", "r0"], pa.large_string()), "x": [4, 3, 1, 0]}
    )
    parts = positions_by_key(other, membership)
    assert other.take(parts["train"]).column("x").to_pylist() == [4, 0]
    assert other.take(parts["test"]).column("x").to_pylist() == [3, 1]
    assert "validation" not in parts


def test_a_composite_key_and_rows_in_no_subset() -> None:
    table = pa.table({"shop": ["a", "a", "b"], "day": [1, 2, 1], "x": [5, 6, 7]})
    membership = keyed_membership(table, {"test": np.array([1])}, ["shop", "day"])
    assert membership.num_rows == 1  # rows in no subset are left out
    assert positions_by_key(table, membership)["test"].tolist() == [1]


def test_rows_without_the_key_are_refused_naming_it() -> None:
    membership = keyed_membership(pa.table({"id": ["a"]}), {"train": np.array([0])}, ["id"])
    with pytest.raises(DataError, match="no key column 'id'"):
        positions_by_key(pa.table({"x": [1]}), membership)
