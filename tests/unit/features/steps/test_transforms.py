"""The transform steps against the scikit-learn transformer each one configures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)

from gristmill.errors import ConfigError, DataError
from gristmill.features.steps import make_step

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def fit_transform(step: str, frame: pd.DataFrame, /, **options: object) -> pd.DataFrame:
    return make_step(step, options).fit(frame).transform(frame)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_impute_fills_like_simple_imputer(penguins: pd.DataFrame, strategy: str) -> None:
    out = fit_transform("impute", penguins, columns=NUMBERS, strategy=strategy)
    expected = SimpleImputer(strategy=strategy).fit_transform(penguins[NUMBERS])
    np.testing.assert_array_equal(out[NUMBERS].to_numpy(), expected)
    assert list(out.columns) == list(penguins.columns)  # in place, order kept
    pd.testing.assert_frame_equal(out.drop(columns=NUMBERS), penguins.drop(columns=NUMBERS))


def test_impute_text_and_constant(penguins: pd.DataFrame) -> None:
    step = make_step("impute", {"columns": ["sex"], "strategy": "most_frequent"}).fit(penguins)
    assert step.describe()["learned"] == {"fill": {"sex": "male"}}
    assert step.transform(penguins)["sex"].isna().sum() == 0
    out = fit_transform("impute", penguins, columns="sex", strategy="constant", fill_value="?")
    assert (out["sex"] == "?").sum() == penguins["sex"].isna().sum()


def test_impute_mean_of_text_names_the_column(penguins: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"step 'impute' failed on column 'island'") as info:
        fit_transform("impute", penguins, columns=["bill_length_mm", "island"])
    assert info.value.column == "island"
    assert info.value.__cause__ is not None


def test_standardize_matches_standard_scaler(wine: pd.DataFrame) -> None:
    columns = ["alcohol", "malic_acid", "proline"]
    step = make_step("standardize", {"columns": columns}).fit(wine)
    expected = StandardScaler().fit_transform(wine[columns])
    np.testing.assert_array_equal(step.transform(wine)[columns].to_numpy(), expected)
    learned = step.describe()["learned"]
    assert learned["mean"]["alcohol"] == pytest.approx(wine["alcohol"].mean())
    assert set(learned["scale"]) == set(columns)


@pytest.mark.parametrize(
    ("method", "scaler"), [("minmax", MinMaxScaler()), ("robust", RobustScaler())]
)
def test_scale(wine: pd.DataFrame, method: str, scaler: object) -> None:
    out = fit_transform("scale", wine, columns=["proline", "hue"], method=method)
    expected = scaler.fit_transform(wine[["proline", "hue"]])  # type: ignore[attr-defined]
    np.testing.assert_array_equal(out[["proline", "hue"]].to_numpy(), expected)


def test_scale_feature_range_from_a_yaml_list(wine: pd.DataFrame) -> None:
    out = fit_transform("scale", wine, columns=["proline"], feature_range=[-1, 1])
    assert out["proline"].min() == -1.0
    assert out["proline"].max() == pytest.approx(1.0, abs=1e-12)


def test_one_hot_appends_indicators_and_ignores_unseen(penguins: pd.DataFrame) -> None:
    step = make_step("one_hot", {"columns": ["island", "sex"]}).fit(penguins)
    out = step.transform(penguins)
    assert "island" not in out.columns and "sex" not in out.columns
    assert list(out.columns[-6:]) == [
        "island_Biscoe", "island_Dream", "island_Torgersen", "sex_female", "sex_male", "sex_nan",
    ]  # fmt: skip
    assert step.describe()["learned"]["categories"]["island"] == ["Biscoe", "Dream", "Torgersen"]
    unseen = penguins.head(2).assign(island=["Atlantis", "Dream"])
    encoded = step.transform(unseen)
    assert encoded.filter(like="island_").iloc[0].sum() == 0.0
    assert encoded["island_Dream"].iloc[1] == 1.0


def test_one_hot_can_refuse_unseen(penguins: pd.DataFrame) -> None:
    step = make_step("one_hot", {"columns": ["island"], "handle_unknown": "error"}).fit(penguins)
    with pytest.raises(DataError, match="island"):
        step.transform(penguins.head(1).assign(island="Atlantis"))


def test_ordinal_explicit_order_and_unknowns(penguins: pd.DataFrame) -> None:
    order = {"island": ["Torgersen", "Dream", "Biscoe"]}
    step = make_step("ordinal", {"columns": ["island"], "categories": order}).fit(penguins)
    frame = penguins.head(3).assign(island=["Biscoe", "Atlantis", "Torgersen"])
    assert step.transform(frame)["island"].tolist() == [2.0, -1.0, 0.0]
    with pytest.raises(ConfigError, match="no list for column 'sex'"):
        make_step("ordinal", {"columns": ["island", "sex"], "categories": order})


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_bucketize_learns_bins_like_kbins(wine: pd.DataFrame, strategy: str) -> None:
    out = fit_transform("bucketize", wine, columns=["alcohol"], bins=4, strategy=strategy)
    expected = KBinsDiscretizer(
        n_bins=4, encode="ordinal", strategy=strategy, random_state=0
    ).fit_transform(wine[["alcohol"]])
    np.testing.assert_array_equal(out[["alcohol"]].to_numpy(), expected)


def test_bucketize_with_explicit_edges_keeps_gaps(penguins: pd.DataFrame) -> None:
    step = make_step("bucketize", {"columns": ["body_mass_g"], "edges": [3500, 4500]})
    out = step.fit(penguins).transform(penguins)
    values, buckets = penguins["body_mass_g"], out["body_mass_g"]
    assert (buckets[values < 3500] == 0).all()
    assert (buckets[(values >= 3500) & (values < 4500)] == 1).all()
    assert (buckets[values >= 4500] == 2).all()
    assert buckets[values.isna()].isna().all()
    assert step.describe()["learned"] == {"edges": {"body_mass_g": [3500.0, 4500.0]}}


def test_bucketize_edges_must_increase() -> None:
    with pytest.raises(ConfigError, match="increasing"):
        make_step("bucketize", {"columns": ["x"], "edges": [5, 1]})


def test_learned_bins_need_values(penguins: pd.DataFrame) -> None:
    frame = penguins.assign(bill_depth_mm=penguins["bill_depth_mm"].fillna(17.0))
    with pytest.raises(DataError, match=r"failed on column 'body_mass_g'.*NaN"):
        fit_transform("bucketize", frame, columns=["bill_depth_mm", "body_mass_g"])


def test_log_is_log1p(diabetes: pd.DataFrame) -> None:
    out = fit_transform("log", diabetes, columns=["target"])
    np.testing.assert_array_equal(out["target"].to_numpy(), np.log1p(diabetes["target"]))


def test_log_of_minus_one_or_less_is_refused(diabetes: pd.DataFrame) -> None:
    step = make_step("log", {"columns": ["bmi", "target"]}).fit(diabetes)
    bad = diabetes.head(2).assign(target=[-5.0, 1.0])
    with pytest.raises(DataError, match=r"failed on column 'target'.*-1") as info:
        step.transform(bad)
    assert info.value.column == "target"


def test_power_matches_power_transformer(wine: pd.DataFrame) -> None:
    step = make_step("power", {"columns": ["proline", "magnesium"]}).fit(wine)
    expected = PowerTransformer().fit_transform(wine[["proline", "magnesium"]])
    np.testing.assert_array_equal(step.transform(wine)[["proline", "magnesium"]], expected)
    assert set(step.describe()["learned"]["lambdas"]) == {"proline", "magnesium"}


def test_box_cox_needs_positive_values_and_says_which(diabetes: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"failed on column 'bmi'"):
        fit_transform("power", diabetes, columns=["target", "bmi"], method="box-cox")


def test_a_transform_failure_names_the_column(wine: pd.DataFrame) -> None:
    step = make_step("standardize", {"columns": ["alcohol", "hue"]}).fit(wine)
    bad = wine.head(3).astype({"hue": object}).assign(hue=["x", "y", "z"])
    with pytest.raises(DataError, match=r"failed on column 'hue'") as info:
        step.transform(bad)
    assert info.value.column == "hue"
