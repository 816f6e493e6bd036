"""Per-column statistics, checked against pandas on real datasets and against known values."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pytest

from gristmill.features.validation import QUANTILES, compute_statistics
from gristmill.features.validation.statistics import quantile_key


@pytest.mark.parametrize("dataset", ["wine", "diabetes", "breast_cancer"])
def test_numeric_statistics_equal_pandas(dataset: str, request: pytest.FixtureRequest) -> None:
    table = request.getfixturevalue(dataset)
    frame = table.to_pandas()
    statistics = compute_statistics(table)
    assert statistics.row_count == len(frame)
    assert [c.name for c in statistics.columns] == list(frame.columns)
    for column in statistics.columns:
        series = frame[column.name]
        assert column.kind == "numeric"
        assert (column.count, column.missing, column.missing_share) == (len(frame), 0, 0.0)
        assert column.min == series.min()
        assert column.max == series.max()
        assert column.mean == pytest.approx(series.mean(), rel=1e-12)
        assert column.std == pytest.approx(series.std(), rel=1e-9)
        assert column.distinct == series.nunique()
        expected = series.quantile(list(QUANTILES)).to_numpy()
        got = [column.quantiles[quantile_key(q)] for q in QUANTILES]
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_penguins_missing_values_and_categories(penguins: pa.Table) -> None:
    frame = penguins.to_pandas()
    statistics = compute_statistics(penguins)
    for name in ("bill_length_mm", "sex"):
        column = statistics.column(name)
        assert column.missing == frame[name].isna().sum() > 0
        assert column.missing_share == pytest.approx(frame[name].isna().mean())
    species = statistics.column("species")
    assert species.kind == "categorical"
    assert species.distinct == 3
    assert species.top == list(frame["species"].value_counts().items())
    assert species.mean is None
    assert species.quantiles == {}
    sex = statistics.column("sex")
    assert sum(count for _, count in sex.top) == len(frame) - sex.missing
    body = statistics.column("body_mass_g")
    assert body.mean == pytest.approx(frame["body_mass_g"].mean())
    assert body.count == 344
    assert statistics.column("year").min == 2007
    assert isinstance(statistics.column("year").min, int)


def test_nan_counts_as_missing_and_integers_stay_exact() -> None:
    table = pa.table(
        {
            "x": pa.array([1.0, float("nan"), None, 4.0, float("nan")]),
            "big": pa.array([2**60 + 1, None, 2**60 + 3, 5, 7], pa.int64()),
        }
    )
    x, big = compute_statistics(table).columns
    assert (x.missing, x.missing_share, x.min, x.max, x.mean, x.distinct) == (3, 0.6, 1, 4, 2.5, 2)
    assert (big.missing, big.min, big.max, big.distinct) == (1, 5, 2**60 + 3, 4)


def test_chunked_columns_give_the_same_statistics(
    customers: Callable[..., pa.Table], with_missing: Callable[..., pa.Table]
) -> None:
    table = with_missing(customers(3000, seed=4), "age", 0.1)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=700))
    assert chunked.column("age").num_chunks > 1
    assert compute_statistics(chunked) == compute_statistics(table)


def test_strings_get_top_twenty_and_many_distinct_values_are_text() -> None:
    rng = np.random.default_rng(0)
    letters = np.array([f"c{i:02d}" for i in range(30)])
    weights = np.arange(30, 0, -1) / np.arange(30, 0, -1).sum()
    table = pa.table(
        {
            "category": letters[rng.choice(30, 5000, p=weights)],
            "label": pa.array(["x", "y", None, "x"] * 1250).dictionary_encode(),
            "id": [f"id-{i}" for i in range(5000)],
        }
    )
    category, label, ids = compute_statistics(table).columns
    assert category.kind == "categorical"
    assert category.distinct == 30
    assert len(category.top) == 20
    expected = table.column("category").to_pandas().value_counts()
    assert [count for _, count in category.top] == expected.to_list()[:20]
    assert all(expected[value] == count for value, count in category.top)
    assert (label.kind, label.distinct, label.missing, label.top) == (
        "categorical",
        2,
        1250,
        [("x", 2500), ("y", 1250)],
    )
    assert (ids.kind, ids.distinct, len(ids.top)) == ("text", 5000, 20)


def test_booleans_and_temporals() -> None:
    table = pa.table(
        {
            "ok": pa.array([True, False, None, True, True]),
            "at": pa.array(
                [datetime(2024, 1, 2, 3, tzinfo=UTC), None, datetime(2023, 5, 6, tzinfo=UTC)] * 2,
                pa.timestamp("us", "UTC"),
            )[:5],
            "day": pa.array([date(2024, 2, 1), date(2024, 1, 1), None, None, date(2024, 3, 1)]),
        }
    )
    ok, at, day = compute_statistics(table).columns
    assert (ok.kind, ok.missing, ok.distinct, ok.top) == ("boolean", 1, 2, [(True, 3), (False, 1)])
    assert at.kind == "temporal"
    assert at.to_dict()["min"] == "2023-05-06T00:00:00+00:00"
    assert at.to_dict()["max"] == "2024-01-02T03:00:00+00:00"
    assert (day.missing, day.to_dict()["min"], day.to_dict()["max"]) == (
        2,
        "2024-01-01",
        "2024-03-01",
    )


def test_degenerate_columns_are_json_without_nan() -> None:
    table = pa.table(
        {
            "empty": pa.array([None, None, None], pa.float64()),
            "nulls": pa.array([None, None, None]),
            "one": pa.array([None, 2.5, None]),
            "inf": pa.array([1.0, float("inf"), 3.0]),
            "nested": pa.array([[1], [2, 3], None]),
        }
    )
    statistics = compute_statistics(table)
    text = json.dumps(statistics.to_dict(), allow_nan=False)
    columns = {c["name"]: c for c in json.loads(text)["columns"]}
    assert columns["empty"]["missing_share"] == 1.0
    assert columns["empty"]["mean"] is None
    assert (columns["nulls"]["kind"], columns["nulls"]["missing"]) == ("other", 3)
    assert (columns["one"]["mean"], columns["one"]["std"], columns["one"]["distinct"]) == (
        2.5,
        None,
        1,
    )
    assert columns["inf"]["max"] is None  # JSON has no infinity
    assert math.isinf(statistics.column("inf").max)
    assert (columns["nested"]["kind"], columns["nested"]["missing"]) == ("other", 1)


def test_an_empty_table_has_statistics(customers: Callable[..., pa.Table]) -> None:
    statistics = compute_statistics(customers(0))
    assert statistics.row_count == 0
    assert all(c.count == 0 and c.missing_share == 0.0 for c in statistics.columns)
    json.dumps(statistics.to_dict(), allow_nan=False)


def test_unknown_column_names_the_known_ones(wine: pa.Table) -> None:
    with pytest.raises(KeyError, match=r"no column 'nope'.*alcohol"):
        compute_statistics(wine).column("nope")
