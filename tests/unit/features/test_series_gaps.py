"""Lags and rolling windows have no value for the first rows of each series: preparation
counts those rows per column, and says how many are still missing in the set."""

from __future__ import annotations

import pyarrow as pa

from gristmill.config.features import FeatureSetSpec
from gristmill.features.fitting import fit_features
from gristmill.stores.features import series_gaps_line

SHOPS = pa.table(
    {
        "shop": ["a"] * 5 + ["b"] * 4,
        "week": [1, 2, 3, 4, 5, 1, 2, 3, 4],
        "sales": [10.0, 11, 12, 13, 14, 20, 21, 22, 23],
    }
)


def fitted_on(steps: list[dict[str, object]]) -> dict[str, object]:
    spec = FeatureSetSpec.model_validate({"from": ["s"], "timestamp": "week", "steps": steps})
    _, _, described = fit_features("sales", spec, SHOPS, ["shop", "week"], feature_set_id="fs_x")
    return described


LAGS: list[dict[str, object]] = [
    {"lag": {"columns": ["sales"], "periods": [1, 2], "time": "week", "by": ["shop"]}},
    {"rolling": {"columns": ["sales"], "window": 3, "time": "week", "by": ["shop"]}},
]


def test_the_rows_a_lag_or_window_leaves_without_a_value_are_counted() -> None:
    # before: nothing recorded them, and no summary said so
    gaps = fitted_on(LAGS)["series_gaps"]
    made = {"sales_lag1": 2, "sales_lag2": 4, "sales_rolling3_mean": 6}  # 2 series
    assert gaps == {"made": made, "missing": made}
    line = series_gaps_line("sales", gaps)
    assert line is not None
    assert line.startswith(
        "sales: lags/rolling windows have no value for the first rows of each series (rows: "
        "sales_lag1 2, sales_lag2 4, sales_rolling3_mean 6); 12 value(s) are left missing"
    )


def test_values_imputed_after_the_lags_are_counted_as_made_not_missing() -> None:
    impute = {"impute": {"columns": ["sales_lag1", "sales_lag2", "sales_rolling3_mean"]}}
    gaps = fitted_on([*LAGS, impute])["series_gaps"]
    assert gaps["made"]["sales_lag2"] == 4 and set(gaps["missing"].values()) == {0}
    assert (series_gaps_line("sales", gaps) or "").endswith("all imputed by later steps")
    assert "series_gaps" not in fitted_on([])
