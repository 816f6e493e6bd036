"""Select steps: row filters and dropped columns."""

from __future__ import annotations

import pandas as pd
import pytest

from gristmill.errors import DataError
from gristmill.features.steps import make_step


def test_filter_keeps_matching_rows_and_records_counts(penguins: pd.DataFrame) -> None:
    step = make_step("filter", {"expr": "body_mass_g > 4000 and island == 'Biscoe'"})
    out = step.fit(penguins).transform(penguins)
    expected = penguins[(penguins["body_mass_g"] > 4000) & (penguins["island"] == "Biscoe")]
    pd.testing.assert_frame_equal(out, expected)
    assert step.describe()["learned"] == {"rows_in": 344, "rows_out": len(expected)}


def test_filter_treats_a_missing_result_as_false(penguins: pd.DataFrame) -> None:
    out = make_step("filter", {"expr": "sex == 'male'"}).fit(penguins).transform(penguins)
    assert out["sex"].eq("male").all()


def test_filter_must_give_booleans(penguins: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="must be true or false for each row"):
        make_step("filter", {"expr": "body_mass_g * 2"}).fit(penguins)


def test_drop(penguins: pd.DataFrame) -> None:
    out = make_step("drop", {"columns": ["year", "sex"]}).fit(penguins).transform(penguins)
    assert list(out.columns) == [c for c in penguins.columns if c not in ("year", "sex")]
    with pytest.raises(DataError, match=r"needs column 'nope'.*available: species"):
        make_step("drop", {"columns": ["nope"]}).fit(penguins)
    lenient = make_step("drop", {"columns": ["nope", "year"], "missing": "ignore"})
    assert "year" not in lenient.fit(penguins).transform(penguins).columns
