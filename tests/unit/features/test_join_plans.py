"""Joins of an event table to an hourly second source, checked against pandas baselines:
keys of other names, several keys, the columns taken and their prefix, a staleness limit."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest
from pydantic import ValidationError

from gristmill.config.features import FeatureSetSpec
from gristmill.errors import ConfigError, DataError
from gristmill.features.identity import definition_digest
from gristmill.features.join import join_described
from gristmill.features.prepare import combine, combine_described
from gristmill.testing.event_tables import departures, hourly_weather


def flights() -> pd.DataFrame:
    return departures()


def weather() -> pd.DataFrame:
    return hourly_weather()


def spec(join: dict[str, object]) -> FeatureSetSpec:
    return FeatureSetSpec.model_validate({"from": ["flights", "weather"], "join": join})


def tables() -> dict[str, pa.Table]:
    return {
        "flights": pa.Table.from_pandas(flights(), preserve_index=False),
        "weather": pa.Table.from_pandas(weather(), preserve_index=False),
    }


def asof_baseline(tolerance: timedelta | None) -> pd.DataFrame:
    left, right = flights(), weather()
    ordered = left.sort_values("dep_time", kind="stable")
    merged = pd.merge_asof(
        ordered,
        right.sort_values("hour")[["station", "hour", "temp"]],
        left_on="dep_time",
        right_on="hour",
        left_by="origin",
        right_by="station",
        tolerance=tolerance,
        direction="backward",
    )
    merged.index = ordered.index
    return merged.sort_index()


@pytest.mark.parametrize("tolerance", [None, "3h"])
def test_asof_on_keys_of_other_names_with_a_staleness_limit(tolerance: str | None) -> None:
    join = {
        "left_on": "origin",
        "right_on": "station",
        "timestamp": "dep_time",
        "inputs": {"weather": {"timestamp": "hour", "columns": ["temp"], "prefix": "wx_"}},
    }
    if tolerance:
        join["tolerance"] = tolerance
    joined = combine(spec(join), tables(), "fl")
    assert joined.column_names == ["flight", "origin", "dep_time", "dep_hour", "delay", "wx_temp"]
    expected = asof_baseline(timedelta(hours=3) if tolerance else None)
    got = joined.column("wx_temp").to_pandas()
    pd.testing.assert_series_equal(got, expected["temp"].reset_index(drop=True), check_names=False)
    if tolerance:  # the gaps make some readings older than 3 hours: they join as missing
        loose = asof_baseline(None)["temp"]
        assert got.isna().sum() > loose.isna().sum()


def test_several_keys_exact_site_and_hour() -> None:
    join = {
        "how": "exact",
        "left_on": ["origin", "dep_hour"],
        "right_on": ["station", "hour"],
        "columns": ["temp", "wind"],
    }
    joined = combine(spec(join), tables(), "fl")
    left, right = flights(), weather()
    expected = left.merge(
        right[["station", "hour", "temp", "wind"]],
        how="left",
        left_on=["origin", "dep_hour"],
        right_on=["station", "hour"],
    )
    for column in ("temp", "wind"):
        pd.testing.assert_series_equal(
            joined.column(column).to_pandas(), expected[column], check_names=False
        )
    assert joined.column("flight").to_pylist() == left["flight"].tolist()  # spine order


def test_key_list_of_the_same_names_and_default_columns() -> None:
    left = flights().rename(columns={"origin": "site", "dep_hour": "hour"})
    right = weather().rename(columns={"station": "site"})
    inputs = {
        "flights": pa.Table.from_pandas(left, preserve_index=False),
        "weather": pa.Table.from_pandas(right, preserve_index=False),
    }
    joined, schema = combine_described(
        spec({"key": ["site", "hour"], "how": "exact"}), inputs, "fl"
    )
    # every column of weather but its keys; its clashing `delay` is renamed
    assert joined.column_names[-3:] == ["temp", "wind", "weather__delay"]
    renamed = {"name": "weather__delay", "type": "double", "from": "weather", "column": "delay"}
    assert renamed in schema
    assert {"name": "site", "type": "string", "from": "flights"} in schema
    expected = left.merge(right, how="left", on=["site", "hour"], suffixes=("", "_w"))
    pd.testing.assert_series_equal(
        joined.column("temp").to_pandas(), expected["temp"], check_names=False
    )


def test_the_simple_form_still_joins_as_before() -> None:
    simple = spec({"on": "origin", "timestamp": "dep_time"})
    inputs = tables()
    renamed = ["origin", "dep_time", "temp", "wind", "d"]
    inputs["weather"] = inputs["weather"].rename_columns(renamed)
    joined = combine(simple, inputs, "fl")
    assert joined.column_names[-3:] == ["temp", "wind", "d"]


def test_a_missing_key_names_the_spec_path() -> None:
    bad = spec({"left_on": "origin", "right_on": "site", "timestamp": "dep_time"})
    named = r"features\.fl\.join: input 'weather' has no column 'site'"
    with pytest.raises(DataError, match=named):
        combine(bad, tables(), "fl")
    wrong = spec({"on": "origin", "timestamp": "dep_time", "columns": ["tmp"]})
    with pytest.raises(DataError, match="input 'weather' has no column 'origin' to join on"):
        combine(wrong, tables(), "fl")


def test_a_column_to_take_that_is_not_there_is_named() -> None:
    join = {
        "left_on": "origin",
        "right_on": "station",
        "timestamp": "dep_time",
        "inputs": {"weather": {"timestamp": "hour", "columns": ["tmp"]}},
    }
    with pytest.raises(DataError, match=r"features\.fl\.join: .*no column 'tmp' to take"):
        combine(spec(join), tables(), "fl")


def test_a_prefix_that_clashes_is_refused() -> None:
    join = {"left_on": "origin", "right_on": "station", "how": "exact", "prefix": "de"}
    inputs = tables()
    inputs["weather"] = inputs["weather"].rename_columns(["station", "hour", "temp", "lay", "x"])
    with pytest.raises(ConfigError, match="column 'delay' of input 'weather'"):
        join_described(inputs, plans=[spec(join).join.plan("weather")])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("join", "message"),
    [
        ({"timestamp": "t"}, "no key to join input 'weather'"),
        ({"on": "a", "left_on": "b", "right_on": "c"}, "give 'on'"),
        ({"left_on": ["a", "b"], "right_on": "c"}, "names 2 column"),
        ({"on": "a", "how": "exact", "tolerance": "1h"}, "join.tolerance: a tolerance needs"),
        ({"on": "a", "tolerance": "soon"}, "not a duration"),
        ({"on": "a", "inputs": {"wether": {}}}, "join.inputs.wether: not a joined input"),
    ],
)
def test_join_sections_are_checked(join: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(join)


def test_a_simple_join_keeps_its_feature_set_digest() -> None:
    """New keys at their defaults leave what a section digests unchanged (ids stay)."""
    simple = spec({"key": "id", "timestamp": "ts"})
    assert simple.join is not None
    assert simple.join.model_dump(mode="json") == {"on": "id", "timestamp": "ts", "how": "asof"}
    with_more = spec({"key": "id", "timestamp": "ts", "tolerance": "3h"})
    assert definition_digest(with_more) != definition_digest(simple)
