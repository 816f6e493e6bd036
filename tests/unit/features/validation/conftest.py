"""Data of the validation tests: scikit-learn's and palmerpenguins' bundled datasets, and
generated tables whose distributions, missing values and categories the tests control.

The builders are handed out as fixtures (tests run with ``--import-mode=importlib``, so a
test module cannot import a sibling helper module).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn import datasets

from gristmill.testing.data import wine_table


def arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


PLANS = ("basic", "plus", "pro")
PLAN_SHARES = (0.6, 0.3, 0.1)


def make_customers(
    rows: int,
    *,
    seed: int = 0,
    age_shift: float = 0.0,
    plan_shares: tuple[float, ...] = PLAN_SHARES,
    plans: tuple[str, ...] = PLANS,
) -> pa.Table:
    """Generated customers: ``age`` ~ N(40 + age_shift, 10), ``income`` log-normal,
    ``plan`` drawn with ``plan_shares``, ``active`` (30 % true), ``signup`` (hourly),
    ``name`` (unique text), ``visits`` (Poisson integers)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00", "us")
    return pa.table(
        {
            "age": rng.normal(40 + age_shift, 10, rows),
            "income": rng.lognormal(10, 0.5, rows),
            "plan": np.array(plans)[rng.choice(len(plans), rows, p=plan_shares)],
            "active": rng.random(rows) < 0.3,
            "signup": pa.array(start + np.arange(rows).astype("timedelta64[h]")).cast(
                pa.timestamp("us", "UTC")
            ),
            "name": [f"customer-{seed}-{i}" for i in range(rows)],
            "visits": rng.poisson(4, rows),
        }
    )


def replace_column(table: pa.Table, name: str, values: Any) -> pa.Table:
    """``table`` with column ``name`` replaced by ``values``."""
    return table.set_column(table.column_names.index(name), name, pa.array(values))


def add_missing(table: pa.Table, name: str, share: float, *, seed: int = 1) -> pa.Table:
    """``table`` with exactly ``round(share * rows)`` values of ``name`` set to null."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rng.choice(table.num_rows, round(share * table.num_rows), replace=False)] = True
    column = table.column(name)
    nulled = pc.if_else(pa.array(mask), pa.scalar(None, column.type), column)
    return table.set_column(table.column_names.index(name), name, nulled)


@pytest.fixture(scope="session")
def customers() -> Callable[..., pa.Table]:
    return make_customers


@pytest.fixture(scope="session")
def with_missing() -> Callable[..., pa.Table]:
    return add_missing


@pytest.fixture(scope="session")
def with_column() -> Callable[..., pa.Table]:
    return replace_column


@pytest.fixture(scope="session")
def penguins() -> pa.Table:
    from palmerpenguins import load_penguins

    return arrow(load_penguins())


@pytest.fixture(scope="session")
def wine() -> pa.Table:
    return wine_table()


@pytest.fixture(scope="session")
def diabetes() -> pa.Table:
    return arrow(datasets.load_diabetes(as_frame=True).frame)


@pytest.fixture(scope="session")
def breast_cancer() -> pa.Table:
    return arrow(datasets.load_breast_cancer(as_frame=True).frame)
