"""Series steps on real series (statsmodels' co2, macrodata), each held against pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.datasets import co2, macrodata

from gristmill.errors import ConfigError, DataError
from gristmill.features.steps import make_step
from gristmill.features.steps.base import FeatureStep


@pytest.fixture
def weekly() -> pd.DataFrame:
    """2,284 weeks of Mauna Loa CO2 (1958-2001), 59 of them without a reading."""
    return co2.load_pandas().data.reset_index(names="week")


@pytest.fixture
def quarters() -> pd.DataFrame:
    """US macro data, 203 quarters, in a shuffled order, with a date per quarter."""
    frame = macrodata.load_pandas().data
    pairs = zip(frame.year, frame.quarter, strict=True)
    frame["quarter_start"] = pd.to_datetime([f"{int(y)}-{3 * int(q) - 2:02d}-01" for y, q in pairs])
    return frame.sample(frac=1.0, random_state=0)


def run(name: str, frame: pd.DataFrame, **options: object) -> pd.DataFrame:
    step: FeatureStep = make_step(name, options)
    return step.fit(frame).transform(frame)


# -- fill_gaps ---------------------------------------------------------------------------


def test_interpolate_by_time_fills_as_pandas_does(weekly: pd.DataFrame) -> None:
    out = run("fill_gaps", weekly, columns=["co2"], method="interpolate", time="week")
    expected = (
        weekly.set_index("week")["co2"].interpolate(method="time", limit_area="inside").to_numpy()
    )
    assert np.allclose(out["co2"].to_numpy(), expected)
    assert out["co2"].isna().sum() == 0
    assert list(out.columns) == ["week", "co2"]  # filled in place


def test_a_gap_at_either_end_is_not_interpolated_and_ffill_carries_the_last_value() -> None:
    frame = pd.DataFrame({"x": [np.nan, 1.0, np.nan, 3.0, np.nan]})
    assert run("fill_gaps", frame, columns=["x"])["x"].tolist()[1:4] == [1.0, 2.0, 3.0]
    assert np.isnan(run("fill_gaps", frame, columns=["x"])["x"].iloc[[0, 4]]).all()
    assert run("fill_gaps", frame, columns=["x"], method="ffill")["x"].tolist()[1:] == [1, 1, 3, 3]
    assert run("fill_gaps", frame, columns=["x"], method="bfill")["x"].tolist()[:4] == [1, 1, 3, 3]
    limited = run("fill_gaps", pd.DataFrame({"x": [1.0, None, None, 4.0]}), columns=["x"], limit=1)
    assert limited["x"].tolist()[:2] == [1.0, 2.0] and np.isnan(limited["x"].iloc[2])


def test_freq_adds_the_weeks_a_series_skips(weekly: pd.DataFrame) -> None:
    gappy = weekly.dropna().reset_index(drop=True)  # 59 weeks have no row at all
    step = make_step(
        "fill_gaps", {"columns": ["co2"], "method": "interpolate", "time": "week", "freq": "W-SAT"}
    )
    out = step.fit(gappy).transform(gappy)
    assert len(out) == len(weekly)
    assert out["week"].tolist() == weekly["week"].tolist()  # in time order, every week
    assert (out.index < 0).sum() == 59  # the added rows are on negative labels
    expected = weekly.set_index("week")["co2"].interpolate(method="time", limit_area="inside")
    assert np.allclose(out["co2"].to_numpy(), expected.to_numpy())
    assert step.describe()["learned"] == {"rows_added": 59}


def test_freq_within_groups_and_on_dates_of_the_input_type() -> None:
    days = pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-04", "2024-01-01", "2024-01-04"])
    frame = pd.DataFrame(
        {"shop": ["a", "a", "a", "b", "b"], "day": days.date, "sales": [1.0, 3.0, 4.0, 10.0, 40.0]}
    )
    out = run(
        "fill_gaps", frame, columns=["sales"], time="day", by=["shop"], freq="D", method="ffill"
    )
    assert out[["shop", "sales"]].values.tolist() == [
        ["a", 1.0], ["a", 1.0], ["a", 3.0], ["a", 4.0],
        ["b", 10.0], ["b", 10.0], ["b", 10.0], ["b", 40.0],
    ]  # fmt: skip
    assert {type(d).__name__ for d in out["day"]} == {"date"}  # dates stay dates


def test_freq_refuses_times_off_its_grid_and_duplicates(weekly: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"not on freq 'W-SUN'; the times look like freq 'W-SAT'"):
        run("fill_gaps", weekly, columns=["co2"], time="week", freq="W-SUN")
    twice = pd.concat([weekly.head(3), weekly.head(1)])
    with pytest.raises(DataError, match="two rows share time 1958-03-29"):
        run("fill_gaps", twice, columns=["co2"], time="week", freq="W-SAT")
    named = weekly.assign(week=[f"week {i}" for i in range(len(weekly))])
    with pytest.raises(DataError, match="needs dates or times in column 'week'"):
        run("fill_gaps", named, columns=["co2"], time="week", freq="W-SAT")
    text = weekly.dropna().assign(week=lambda f: f["week"].dt.strftime("%Y-%m-%d"))
    out = run("fill_gaps", text, columns=["co2"], time="week", freq="W-SAT")  # ISO text (JSON)
    assert len(out) == len(weekly) and out["week"].iloc[1] == "1958-04-05"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"columns": ["x"], "method": "mean"}, "option 'method' must be one of interpolate"),
        ({"columns": ["x"], "freq": "W"}, "option 'freq' needs 'time'"),
        ({"columns": ["x"], "freq": "fortnight", "time": "t"}, "'fortnight' is not a frequency"),
        ({"columns": ["x"], "limit": 0}, "option 'limit' must be a whole number of at least 1"),
        ({"columns": ["t"], "time": "t"}, "column 't' is in 'columns' and orders"),
    ],
)
def test_fill_gaps_options_are_checked_when_made(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_step("fill_gaps", options)


# -- lag and rolling ---------------------------------------------------------------------


def test_lags_follow_the_time_column_not_the_row_order(quarters: pd.DataFrame) -> None:
    out = run("lag", quarters, columns=["realgdp"], periods=[1, 4], time="quarter_start")
    ordered = quarters.sort_values("quarter_start")
    for period in (1, 4):
        expected = ordered["realgdp"].shift(period).reindex(quarters.index)
        pd.testing.assert_series_equal(out[f"realgdp_lag{period}"], expected, check_names=False)
    assert list(out.index) == list(quarters.index)  # rows keep their order


def test_lags_within_groups(weekly: pd.DataFrame) -> None:
    frame = weekly.assign(decade=weekly["week"].dt.year // 10 * 10)
    out = run("lag", frame, columns=["co2"], periods=[2], time="week", by=["decade"])
    expected = frame.sort_values("week").groupby("decade")["co2"].shift(2)
    expected = expected.reindex(frame.index)
    pd.testing.assert_series_equal(out["co2_lag2"], expected, check_names=False)
    assert out.groupby("decade")["co2_lag2"].apply(lambda s: s.isna().iloc[:2].all()).all()


def test_rolling_windows_read_only_the_rows_before(quarters: pd.DataFrame) -> None:
    out = run(
        "rolling", quarters, columns=["infl"], window=4, stats=["mean", "std", "max"],
        time="quarter_start",
    )  # fmt: skip
    ordered = quarters.sort_values("quarter_start")["infl"]
    past = ordered.shift(1).rolling(4)
    for stat in ("mean", "std", "max"):
        expected = getattr(past, stat)().reindex(quarters.index)
        pd.testing.assert_series_equal(out[f"infl_rolling4_{stat}"], expected, check_names=False)
    # a row's own value never reaches its window: change it, its window stays
    first = ordered.index[10]
    changed = run(
        "rolling", quarters.assign(infl=quarters["infl"].where(quarters.index != first, 1e6)),
        columns=["infl"], window=4, time="quarter_start",
    )  # fmt: skip
    assert changed.loc[first, "infl_rolling4_mean"] == out.loc[first, "infl_rolling4_mean"]


def test_rolling_min_periods_and_by_groups() -> None:
    frame = pd.DataFrame({"g": ["a", "a", "a", "b", "b"], "x": [1.0, 2.0, 3.0, 10.0, 20.0]})
    out = run("rolling", frame, columns=["x"], window=2, min_periods=1, by=["g"])
    assert out["x_rolling2_mean"].tolist()[1:3] == [1.0, 1.5]
    assert np.isnan(out["x_rolling2_mean"].iloc[[0, 3]]).all()
    assert out["x_rolling2_mean"].iloc[4] == 10.0


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("lag", {"columns": ["x"], "periods": [0]}, "periods' must list whole numbers"),
        ("lag", {"columns": ["x"], "periods": [-1]}, "a lag reads the past only"),
        ("rolling", {"columns": ["x"], "window": 0}, "option 'window' must be a whole number"),
        ("rolling", {"columns": ["x"], "stats": ["mode"]}, "'stats' has 'mode'; choose from mean"),
        ("rolling", {"columns": ["x"], "window": 3, "min_periods": 4}, "from 1 to the window"),
    ],
)
def test_lag_and_rolling_options_are_checked(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_step(name, options)


def test_a_window_of_text_is_a_data_error_naming_the_column() -> None:
    frame = pd.DataFrame({"x": ["a", "b", "c"]})
    with pytest.raises(DataError, match="step 'rolling' takes numbers; column 'x' holds"):
        run("rolling", frame, columns=["x"])
    with pytest.raises(DataError, match="with method interpolate takes numbers"):
        run("fill_gaps", frame, columns=["x"])
    assert run("fill_gaps", frame.assign(x=["a", None, "c"]), columns=["x"], method="ffill")[
        "x"
    ].tolist() == ["a", "a", "c"]
