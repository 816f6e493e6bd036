"""The parity rule, request columns and model references."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from gristmill.errors import ConfigError, DataError
from gristmill.servables.columns import MISSING_TEXT, all_finite, numbers, texts
from gristmill.servables.loading import parse_ref
from gristmill.servables.parity import compare, describe
from gristmill.servables.port import Parity, Predictions


def _classes(values: list[int], proba: list[list[float]]) -> Predictions:
    return Predictions(np.array(values), np.array(proba))


def test_classes_must_be_equal_and_probabilities_within_the_tolerance() -> None:
    native = _classes([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    close = _classes([0, 1], [[0.90005, 0.09995], [0.2, 0.8]])
    parity = compare(native, close, task="classification", tolerance=1e-4, rows_from="test")
    assert parity.passed and parity.classes_equal and parity.max_abs_diff == pytest.approx(5e-5)
    far = compare(native, close, task="classification", tolerance=1e-5, rows_from="test")
    assert not far.passed and "FAILED" in describe(far)
    flipped = _classes([1, 1], [[0.9, 0.1], [0.2, 0.8]])
    wrong = compare(native, flipped, task="classification", tolerance=1, rows_from="test")
    assert not wrong.passed and wrong.classes_equal is False


def test_numbers_are_compared_relative_to_their_size_above_one() -> None:
    native = Predictions(np.array([0.5, 250_000.0]))
    compiled = Predictions(np.array([0.50001, 250_010.0]))
    parity = compare(native, compiled, task="regression", tolerance=1e-4, rows_from="test")
    assert parity.passed and parity.max_abs_diff == pytest.approx(10.0)
    assert parity.classes_equal is None
    off = Predictions(np.array([0.5002, 250_000.0]))
    assert not compare(native, off, task="regression", tolerance=1e-4, rows_from="t").passed
    gap = Predictions(np.array([np.nan, 250_000.0]))
    assert not compare(native, gap, task="regression", tolerance=1e-4, rows_from="t").passed


def test_request_columns_are_typed_with_errors_naming_column_and_row() -> None:
    assert numbers([1, None, 2.5], "a", True).tolist()[::2] == [1.0, 2.5]
    assert numbers([1, None, True], "a", True, booleans=True).tolist()[::2] == [1.0, 1.0]
    array = np.array([1.5, 2.5])
    assert numbers(array, "a", False) is array  # no copy
    for value in ("x", "41.2", True, [1], {"b": 1}):
        with pytest.raises(DataError, match=r"column 'a' takes numbers.*row 1 holds") as bad:
            numbers([1, value], "a", True)
        assert (bad.value.column, bad.value.row) == ("a", 1)
    for infinite in ([1.0, float("inf")], np.array([1.0, -np.inf])):
        with pytest.raises(DataError, match=r"column 'a' needs finite numbers; row 1") as inf:
            numbers(infinite, "a", True)
        assert inf.value.row == 1
    with pytest.raises(DataError, match=r"takes numbers.*row 0 holds"):
        numbers(np.array([True]), "a", True)
    with pytest.raises(DataError, match="column 'a' may not be missing \\(row 1 is\\)"):
        numbers([1.0, float("nan")], "a", False)
    assert texts(["x", None, float("nan")], "t", True).tolist() == ["x", MISSING_TEXT, MISSING_TEXT]
    for value in (3, 2.5, True, {"a": 1}, ["x"]):
        with pytest.raises(DataError, match=r"column 't' takes text .*row 1 holds") as bad:
            texts(["x", value], "t", True)
        assert (bad.value.column, bad.value.row) == ("t", 1)
    with pytest.raises(DataError, match="column 't' may not be missing"):
        texts(["x", None], "t", False)
    # a file's column Arrow read as numbers (codes, years) is text to a text column
    assert texts(np.array([2007, 2008]), "t", True).tolist() == ["2007", "2008"]


def test_model_references() -> None:
    assert parse_ref("churn") == ("churn", "champion")
    assert parse_ref("churn@challenger") == ("churn", "challenger")
    assert parse_ref("churn/3") == ("churn", 3)
    with pytest.raises(ConfigError, match="<model>/<number>"):
        parse_ref("churn/x")


def test_parity_says_held_out_rows_and_blanked_copies_apart() -> None:
    native = _classes([0, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    parity = replace(
        compare(native, native, task="classification", tolerance=1e-7, rows_from="test rows"),
        blanked=1,
    )
    assert describe(parity).startswith(
        "2 test rows plus 1 blanked copy of one of them (one column missing in each), "
    )
    # as servables compiled before said it: the count of held-out rows right all the same
    old = Parity(
        202, True, 0.0, 1e-7, True, "test rows of split s and 31 of them with one column blanked"
    )
    assert describe(old).startswith(
        "171 test rows of split s plus 31 blanked copies of one of them (one column missing "
        "in each), classes equal"
    )


def test_a_huge_finite_number_is_taken_without_a_warning() -> None:
    """1.5e308 squared overflows: the check that all is finite must not warn of it (the
    server's log) nor refuse the value."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert numbers([1.5e308, 1.0], "a", False).tolist() == [1.5e308, 1.0]
        assert numbers(np.array([1.5e308, -1.5e308]), "a", False).tolist() == [1.5e308, -1.5e308]
        assert not all_finite(np.array([1.0, np.inf])) and not all_finite(np.array([np.nan]))
        all_finite(np.array([[1.5e308, 2.0]]))  # False (callers look again), quietly
