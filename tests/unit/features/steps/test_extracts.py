"""Extract steps: date parts, text statistics, tf-idf, and restricted expressions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gristmill.errors import ConfigError, DataError
from gristmill.features.steps import make_step


def fit_transform(step: str, frame: pd.DataFrame, /, **options: object) -> pd.DataFrame:
    return make_step(step, options).fit(frame).transform(frame)


@pytest.fixture
def events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "at": ["2024-03-01T08:30:00", "2024-12-31T23:05:00", None],
            "note": ["Hello World 42!", "no digits here", None],
            "n": [1.0, 2.0, 3.0],
        }
    )


def test_date_parts_from_iso_text(events: pd.DataFrame) -> None:
    out = fit_transform("date_parts", events, columns=["at"])
    assert "at" not in out.columns
    assert out[["at_year", "at_month", "at_day", "at_weekday", "at_hour"]].iloc[0].tolist() == [
        2024.0, 3.0, 1.0, 4.0, 8.0,
    ]  # fmt: skip
    assert out.filter(like="at_").iloc[2].isna().all()


def test_date_parts_from_datetimes_keeping_the_column() -> None:
    frame = pd.DataFrame({"ts": pd.date_range("2021-01-01", periods=3, freq="100D")})
    step = make_step("date_parts", {"columns": ["ts"], "parts": ["quarter", "dayofyear"]})
    out = step.fit(frame).transform(frame.assign(keep=1))
    assert out["ts_quarter"].tolist() == [1.0, 2.0, 3.0]
    assert out["ts_dayofyear"].tolist() == [1.0, 101.0, 201.0]
    kept = make_step("date_parts", {"columns": ["ts"], "keep": True}).fit(frame).transform(frame)
    assert "ts" in kept.columns


def test_date_parts_with_a_format_and_a_bad_date() -> None:
    frame = pd.DataFrame({"d": ["31/12/2024", "01/02/2024"]})
    out = fit_transform("date_parts", frame, columns=["d"], parts=["month"], format="%d/%m/%Y")
    assert out["d_month"].tolist() == [12.0, 2.0]
    with pytest.raises(DataError, match=r"step 'date_parts' failed on column 'd'"):
        fit_transform("date_parts", frame.assign(d=["2024-01-01", "yesterday"]), columns=["d"])


def test_date_parts_refuses_unknown_parts() -> None:
    with pytest.raises(ConfigError, match="'century'; choose from year, month"):
        make_step("date_parts", {"columns": ["d"], "parts": ["year", "century"]})


def test_text_stats(events: pd.DataFrame) -> None:
    stats = ["length", "words", "digits", "upper", "punctuation"]
    out = fit_transform("text_stats", events, columns=["note"], stats=stats)
    assert out[[f"note_{s}" for s in stats]].iloc[0].tolist() == [15.0, 3.0, 2.0, 2.0, 1.0]
    assert out[[f"note_{s}" for s in stats]].iloc[1].tolist() == [14.0, 3.0, 0.0, 0.0, 0.0]
    assert out.filter(like="note_").iloc[2].isna().all()


def test_tfidf_learns_a_vocabulary_and_ignores_new_words(events: pd.DataFrame) -> None:
    step = make_step("tfidf", {"columns": ["note"], "max_features": 3}).fit(events)
    vocabulary = step.describe()["learned"]["vocabulary"]["note"]
    assert len(vocabulary) == 3
    out = step.transform(events.assign(note=["zebra", "hello", None]))
    weights = out[[f"note__{t}" for t in vocabulary]]
    assert weights.iloc[0].sum() == 0.0 and weights.iloc[2].sum() == 0.0
    assert "note" not in out.columns


def test_tfidf_on_no_words_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"column 'text'.*vocabulary"):
        fit_transform("tfidf", pd.DataFrame({"text": ["", None]}), columns=["text"])


def test_derive_adds_a_named_column(penguins: pd.DataFrame) -> None:
    out = fit_transform(
        "derive", penguins, name="bill_ratio", expr="bill_length_mm / bill_depth_mm"
    )
    expected = penguins["bill_length_mm"] / penguins["bill_depth_mm"]
    pd.testing.assert_series_equal(out["bill_ratio"], expected, check_names=False)
    assert list(out.columns) == [*penguins.columns, "bill_ratio"]


def test_derive_with_functions_backticks_and_booleans(wine: pd.DataFrame) -> None:
    out = fit_transform(
        "derive", wine, name="x", expr="log1p(proline) + `od280/od315_of_diluted_wines` * 2"
    )
    expected = np.log1p(wine["proline"]) + wine["od280/od315_of_diluted_wines"] * 2
    np.testing.assert_allclose(out["x"], expected, rtol=0, atol=0)
    flags = fit_transform("derive", wine, name="strong", expr="alcohol > 13 and hue < 1")
    assert flags["strong"].dtype == bool
    constant = fit_transform("derive", wine, name="one", expr="1")
    assert (constant["one"] == 1).all()


def test_derive_will_not_overwrite_unless_told(wine: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="'alcohol', which exists already"):
        fit_transform("derive", wine, name="alcohol", expr="alcohol * 2")
    out = fit_transform("derive", wine, name="alcohol", expr="alcohol * 2", replace=True)
    assert list(out.columns) == list(wine.columns)
    assert out["alcohol"].iloc[0] == wine["alcohol"].iloc[0] * 2


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("__import__('os').system('true')", "calls"),
        ("alcohol.__class__", "Attribute"),
        ("alcohol[0]", "Subscript"),
        ("@threshold < alcohol", "'@' variables"),
        ("(lambda: 1)()", "calls 'lambda"),
        ("[a for a in alcohol]", "ListComp"),
        ("exp(alcohol, out=alcohol)", "keyword"),
        ("alcohol +", "not valid"),
        ("", "non-empty"),
    ],
)
def test_expressions_allow_no_python(expr: str, why: str) -> None:
    with pytest.raises(ConfigError, match=f"step 'derive' option 'expr'.*{why}"):
        make_step("derive", {"name": "x", "expr": expr})


def test_an_expression_over_a_missing_column_lists_the_columns(wine: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"reads column 'alcohl'.*available: alcohol, malic"):
        fit_transform("derive", wine, name="x", expr="alcohl * 2")
