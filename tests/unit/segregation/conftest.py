"""Real datasets for the split tests, as Arrow tables (all bundled with their packages)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from gristmill.testing.data import wine_table


def _arrow(frame: Any) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)


@pytest.fixture(scope="session")
def breast_cancer() -> pa.Table:
    """569 rows, 30 numeric features, ``target`` 0 (212 rows) / 1 (357 rows)."""
    from sklearn.datasets import load_breast_cancer

    return _arrow(load_breast_cancer(as_frame=True).frame)


@pytest.fixture(scope="session")
def wine() -> pa.Table:
    """178 rows sorted by ``target`` (59, 71, 48 rows of classes 0, 1, 2)."""
    return wine_table()


@pytest.fixture(scope="session")
def diabetes() -> pa.Table:
    """442 rows, 10 numeric features, a numeric ``target`` (regression)."""
    from sklearn.datasets import load_diabetes

    return _arrow(load_diabetes(as_frame=True).frame)


@pytest.fixture(scope="session")
def penguins() -> pa.Table:
    """344 penguins: species, island, sex (with nulls), measurements (with nulls), year."""
    palmerpenguins = pytest.importorskip(
        "palmerpenguins", reason="the penguins dataset comes with gristmill[ml]"
    )
    return _arrow(palmerpenguins.load_penguins())


@pytest.fixture(scope="session")
def macro() -> pa.Table:
    """statsmodels' US macro data, 203 quarters (1959-2009) with a ``quarter_start`` date,
    rows shuffled so that order and time differ."""
    import numpy as np
    from statsmodels.datasets import macrodata

    frame = macrodata.load_pandas().data
    frame["quarter_start"] = [
        f"{int(year)}-{3 * int(quarter) - 2:02d}-01"
        for year, quarter in zip(frame["year"], frame["quarter"], strict=True)
    ]
    table = _arrow(frame)
    dates = table.column("quarter_start").cast(pa.timestamp("s")).cast(pa.date32())
    table = table.set_column(table.schema.get_field_index("quarter_start"), "quarter_start", dates)
    return table.take(np.random.default_rng(0).permutation(table.num_rows))
